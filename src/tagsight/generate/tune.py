"""Quality-tuning (Emu): fine-tune a generator on a small curated set with small batches, a low lr and early stopping.

``tune(run, curated, out, cfg, env)`` loads ``run``'s weights (its EMA when it keeps one,
``init_from_ema``), resets the EMA to them with the tuning decay ``ema_decay``, and trains on the
curated dataset's training posts with the shared ``Trainer`` (checkpoints, exact resume, progress,
torchrun) in chunks of ``eval_every`` steps. Before the first step and after every chunk it
measures the held-out denoising loss of the curated set's held-out posts with fixed noise and
timesteps (``generate.heldout``; the EMA weights, which sampling uses), so evaluations are
comparable; the best weights so far are ``out/checkpoints/best`` (the base weights themselves when
tuning never helps). It stops after ``patience`` evaluations without an improvement larger than
``min_delta`` (``stopped: early_stopping``) or at the ``max_steps`` budget (``budget``).

``out`` holds ``config.yaml`` (the base run's generator config, with the tuning EMA decay),
``run.json`` (``kind: tune``; the curated dataset's manifest version as ``dataset``, the base run
as ``backbone_run``, and the tuning settings), ``tokens.json`` (the base run's token table),
``tune.json`` (every evaluation, the best step and why it stopped), ``metrics.jsonl`` and
``checkpoints/``. Rerunning the same command resumes; a different base run or curated version is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from tagsight import __version__
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig, make_loader
from tagsight.data.views import SELECTIONS
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.generate.data import TokenStream, image_transform
from tagsight.generate.heldout import heldout_loss
from tagsight.generate.config import FORGET_KIND
from tagsight.generate.method import TOKENS_FILE, build_generator, generator_vae
from tagsight.generate.objective import DiffusionObjective
from tagsight.generate.runs import BEST, GeneratorRun, load_generator
from tagsight.schema.catalog import manifest_version
from tagsight.lineage import read_artifact
from tagsight.privacy.tombstones import load_tombstones
from tagsight.storage import location
from tagsight.config import YamlConfig
from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv
from tagsight.train.loop import Trainer, plan
from tagsight.train.settings import LoopConfig, OptimConfig

log = logging.getLogger(__name__)

TUNE_FILE = "tune.json"


@dataclass(frozen=True)
class TuneData:
    batch_size: int = 16            # per rank
    epoch_length: int = 512         # samples drawn per epoch (uniformly, with replacement) over all ranks
    holdout_fraction: float = 0.1   # the curated posts held out for the early-stopping loss
    workers: int = 1
    select: str = "all"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epoch_length < 1 or self.workers < 0:
            raise ValueError("data.batch_size and data.epoch_length must be >= 1, data.workers >= 0")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"data.holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.select not in SELECTIONS:
            raise ValueError(f"data.select must be one of {SELECTIONS}, got {self.select!r}")


@dataclass(frozen=True)
class TuneConfig(YamlConfig):
    data: TuneData = field(default_factory=TuneData)
    lr: float = 2e-5                # AdamW learning rate (constant after warm-up unless schedule: cosine)
    weight_decay: float = 0.0
    warmup_fraction: float = 0.0
    schedule: str = "cosine"
    max_steps: int = 300            # the step budget
    eval_every: int = 25            # optimiser steps between held-out evaluations
    patience: int = 3               # evaluations without improvement before stopping
    min_delta: float = 0.0          # an improvement must lower the loss by more than this
    eval_repeats: int = 4           # fixed (timestep, noise) draws per held-out sample
    eval_seed: int = 1234
    ema_decay: float = 0.99         # the EMA of the tuned weights (the base run's decay suits long runs)
    init_from_ema: bool = True      # start from the base run's EMA weights when it has them
    checkpoint: str = "auto"        # the base run's checkpoint to start from
    checkpoint_every: int = 25
    log_every: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0 and weight_decay >= 0")
        for name in ("max_steps", "eval_every", "patience", "eval_repeats", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_delta < 0 or not 0 <= self.ema_decay < 1:
            raise ValueError("min_delta must be >= 0 and ema_decay in [0, 1)")
        self.optim(1)  # validates warmup_fraction and schedule

    def optim(self, global_batch: int) -> OptimConfig:
        """AdamW at exactly ``lr`` for this global batch (no linear scaling)."""
        return OptimConfig(name="adamw", base_lr=self.lr, reference_batch=global_batch, weight_decay=self.weight_decay,
                           warmup_fraction=self.warmup_fraction, schedule=self.schedule)


def _tuned_config(base: PretrainConfig, cfg: TuneConfig) -> PretrainConfig:
    diffusion = dataclasses.replace(base.objective.params, ema_decay=cfg.ema_decay)
    return dataclasses.replace(base, objective=dataclasses.replace(base.objective, params=diffusion), seed=cfg.seed)


def tune_lineage(base: GeneratorRun, curated: Path, cfg: TuneConfig, env: DistEnv) -> dict[str, Any]:
    info = json.loads((base.path / "run.json").read_text())
    return {"tagsight_version": __version__, "kind": "tune", "objective": "diffusion", "forget_kind": FORGET_KIND,
            "dataset": {"path": location(curated), "manifest_version": manifest_version(curated),
                        "tombstones_applied": len(load_tombstones(curated))},
            "vocab": info.get("vocab"),
            "backbone_run": {"path": location(base.path), "version": read_artifact(base.path).version,
                             "checkpoint": base.checkpoint.name, "step": base.step, "kind": base.kind},
            "backbone": info.get("backbone"), "generator": info.get("generator"),
            "tune": cfg.to_dict(), "world_size": env.world_size}


def _check_resume(out: Path, info: dict[str, Any]) -> None:
    path = out / "run.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    same = (old.get("dataset", {}).get("manifest_version"), (old.get("backbone_run") or {}).get("version"))
    if same != (info["dataset"]["manifest_version"], info["backbone_run"]["version"]):
        raise ReasonError("tune_lineage_mismatch", f"{out} was tuned from another base run or curated dataset "
                                                   "version; use a new --out")


def _start_objective(base: GeneratorRun, tuned_cfg: PretrainConfig, cfg: TuneConfig) -> DiffusionObjective:
    objective = build_generator(tuned_cfg, generator_vae(tuned_cfg), base.objective.num_tokens - 2)
    objective.load_state_dict(base.objective.state_dict())
    if cfg.init_from_ema and base.objective.ema is not None:
        base.objective.ema.copy_to(objective.denoiser)
    if objective.ema is not None:
        objective.ema.reset(objective.denoiser)
    objective.batches_seen.zero_()
    objective.updates.zero_()
    return objective


def _streams(curated: Path, base: GeneratorRun, objective: DiffusionObjective, cfg: TuneConfig,
             env: DistEnv) -> tuple[TokenStream, TokenStream]:
    index = SampleIndex.build(curated)
    d = objective.cfg
    out = []
    for split in ("train", "heldout"):
        sc = StreamConfig(epoch_length=cfg.data.epoch_length, batch_size=cfg.data.batch_size, seed=cfg.seed,
                          sampling="none", holdout_fraction=cfg.data.holdout_fraction, split=split)
        out.append(TokenStream(index, base.table, image_transform(d, objective.data_config, split), sc,
                               select=cfg.data.select, captions=d.captions, rank=env.rank, world_size=env.world_size))
    return out[0], out[1]


def save_best(out: Path, objective: DiffusionObjective, step: int, loss: float) -> Path:
    """``out/checkpoints/best``: the objective's weights (EMA included) and the step they were taken at."""
    root = out / "checkpoints"
    final, tmp = root / BEST, root / f".tmp-{BEST}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in objective.state_dict().items()}, str(tmp / "model.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "heldout_loss": loss}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


class _Tuner:
    """The early-stopping loop around one Trainer (state in ``tune.json``, so a rerun resumes)."""

    def __init__(self, out: Path, trainer: Trainer, objective: DiffusionObjective, heldout: TokenStream,
                 cfg: TuneConfig, env: DistEnv) -> None:
        self.out, self.trainer, self.heldout, self.cfg, self.env = out, trainer, heldout, cfg, env
        self.objective = objective   # the model the trainer trains (``trainer.model``, typed as a plain module)
        path = out / TUNE_FILE
        self.state = json.loads(path.read_text()) if path.is_file() else {"evaluations": [], "best": None}

    def evaluate(self) -> None:
        objective, step = self.objective, self.trainer.step
        result = heldout_loss(objective, self.heldout, self.env, self.cfg.data.workers, self.cfg.eval_repeats,
                              self.cfg.eval_seed, use_ema=True)
        best = self.state["best"]
        improved = best is None or result["loss"] < best["loss"] - self.cfg.min_delta
        self.state["evaluations"].append({"step": step, **result, "improved": improved})
        if improved:
            self.state["best"] = {"step": step, "loss": result["loss"]}
            if self.env.is_main:
                save_best(self.out, objective, step, result["loss"])
        log.info("tune step %d: held-out denoising loss %.5f%s (best %.5f at step %d)", step, result["loss"],
                 " (improved)" if improved else "", self.state["best"]["loss"], self.state["best"]["step"])
        self._write()

    def stalled(self) -> bool:
        evals = self.state["evaluations"]
        return len(evals) > self.cfg.patience and not any(e["improved"] for e in evals[-self.cfg.patience:])

    def run(self) -> dict[str, Any]:
        evals = self.state["evaluations"]
        if self.state.get("stopped") == "budget" and evals and evals[-1]["step"] < self.cfg.max_steps:
            self.state["stopped"] = None       # rerun with a larger budget: continue
        if not evals:
            self.trainer.resume()
            self.evaluate()
        while self.state.get("stopped") is None:
            last = self.state["evaluations"][-1]["step"]
            if self.stalled() or last >= self.cfg.max_steps:
                self.state["stopped"] = "early_stopping" if self.stalled() else "budget"
                break
            target = min(last + self.cfg.eval_every, self.cfg.max_steps)
            self.trainer.cfg = dataclasses.replace(self.trainer.cfg, max_steps=target)
            self.trainer.fit()
            self.evaluate()
        self._write()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        evals = self.state["evaluations"]
        return {"base_loss": evals[0]["loss"], "best_step": self.state["best"]["step"],
                "best_loss": self.state["best"]["loss"], "stopped": self.state["stopped"],
                "steps_trained": evals[-1]["step"], "evaluations": len(evals),
                "heldout_samples": evals[0]["n_samples"]}

    def _write(self) -> None:
        if self.env.is_main:
            atomic_write_text(self.out / TUNE_FILE, json.dumps({**self.state, "config": self.cfg.to_dict()}, indent=1))


def tune(run_dir: str | Path, curated: str | Path, out: str | Path, cfg: TuneConfig, env: DistEnv) -> dict[str, Any]:
    """Quality-tune ``run_dir`` on ``curated`` into ``out`` (see the module docstring); returns the summary."""
    run_dir, curated, out = Path(run_dir), Path(curated), Path(out)
    base = load_generator(run_dir, cfg.checkpoint, "cpu")
    info = tune_lineage(base, curated, cfg, env)
    _check_resume(out, info)
    tuned_cfg = _tuned_config(base.cfg, cfg)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", tuned_cfg.to_yaml())
        atomic_write_text(out / "run.json", json.dumps(info, indent=1))
        shutil.copyfile(run_dir / TOKENS_FILE, out / TOKENS_FILE)
    objective = _start_objective(base, tuned_cfg, cfg)
    train, heldout = _streams(curated, base, objective, cfg, env)
    per_epoch = plan(cfg.data.epoch_length, cfg.data.batch_size, env, LoopConfig()).steps_per_epoch
    loop = LoopConfig(epochs=math.ceil(cfg.max_steps / per_epoch), log_every=cfg.log_every,
                      checkpoint_every=cfg.checkpoint_every, max_steps=cfg.max_steps)
    trainer = Trainer(objective, train, lambda s: make_loader(s, cfg.data.workers),
                      cfg.optim(cfg.data.batch_size * env.world_size), loop, env, out,
                      cfg.data.epoch_length, cfg.data.batch_size, progress_desc="tune")
    result = _Tuner(out, trainer, objective, heldout, cfg, env).run()
    log.info("tuned %s on %s: held-out loss %.5f -> %.5f (best at step %d; %s)", run_dir, curated,
             result["base_loss"], result["best_loss"], result["best_step"], result["stopped"])
    return result
