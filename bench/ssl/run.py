"""Side by side: tagsight's SwAV and DINO against lightly's, same backbone, crops, optimiser, budget and photos.

    python bench/ssl/run.py --train ../shared/data/imagenette-160/train --val ../shared/data/imagenette-160/val \
        --out runs/bench-ssl [--methods swav,dino] [--impls tagsight,lightly] [--seeds 0,1,2] [--steps 152]
        [--crops tagsight|lightly] [--set KEY=VALUE ...]

For every method, implementation and seed: seed torch, build the timm backbone of the method's preset
(``configs/pretrain_<method>_cpu_small.yaml``, ``--set`` overrides applied), build the arm (bench/ssl/arms.py),
train it for ``--steps`` batches of the preset's batch size on the photos of ``--train`` (labels ignored;
the batch order and every crop depend only on the seed, so the arms of one seed see the same pixels), with
the preset's optimiser and learning-rate schedule over those steps. Then evaluate the backbone (DINO: the
teacher's) the way ``tagsight eval`` does: frozen features of ``--eval-train`` (default ``--train``) and
``--val`` at the model's input size, weighted kNN (k = 20) and a linear probe (``tagsight.eval``), top-1
and top-5. A randomly initialised backbone of each seed is evaluated alike as the floor.

``--crops tagsight`` (default) gives every arm tagsight's seeded multi-crop transform with the preset's
settings; ``--crops lightly`` gives the arms of a method lightly's transform for it (``SwaVTransform`` /
``DINOTransform``, with blur and, for DINO, solarisation) at the same crop sizes, counts and scales.

Writes ``results.json`` (every run, the spec, versions) and ``results.md`` (mean and standard deviation over
seeds) into ``--out`` and prints the table. Needs ``pip install lightly`` (``tagsight[bench]``) for the lightly
arms. Resumable: a finished (method, implementation, seed) keeps its row in ``results.json`` and is not run
again; with ``--checkpoint-every N`` an unfinished arm is saved every N steps under ``OUT/checkpoints`` and a rerun
continues it from there, bit-identical to an uninterrupted run (long budgets can span several sittings).
"""

from __future__ import annotations

import argparse
import json
import math
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from arms import IMPLS, METHODS, build_arm, start_as  # noqa: E402

from tagsight.data.multicrop import MultiCropConfig, multicrop_transform  # noqa: E402
from tagsight.eval.datasets import FolderImages, LabelledImages, SubsetImages  # noqa: E402
from tagsight.eval.features import extract_features  # noqa: E402
from tagsight.eval.knn import knn_evaluate  # noqa: E402
from tagsight.eval.linear import LinearProbeConfig, linear_probe  # noqa: E402
from tagsight.models.backbone import Backbone  # noqa: E402
from tagsight.models.pretrained import run_backbone  # noqa: E402
from tagsight.methods.dino import DinoConfig, DinoSchedule  # noqa: E402
from tagsight.train.config import PretrainConfig  # noqa: E402
from tagsight.train.optim import Schedule, build_optimizer  # noqa: E402

log = logging.getLogger("bench.ssl")


@dataclass(frozen=True)
class Spec:
    train: str
    val: str
    eval_train: str = ""               # default: ``train``
    methods: tuple[str, ...] = METHODS
    impls: tuple[str, ...] = IMPLS
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 0                     # 0: the preset's epochs x batches per epoch
    crops: str = "tagsight"
    overrides: tuple[str, ...] = ()
    eval_limit: int = 0                # at most this many --eval-train photos (a seeded, class-stratified draw); 0 all
    probe_epochs: int = 20
    workers: int = 2
    device: str = "cpu"
    checkpoint_every: int = 0          # save an unfinished arm every N steps so a killed run resumes mid-arm; 0 never
    same_init: bool = False            # lightly's DINO arm starts from the tagsight arm's head weights
    presets: dict[str, str] = field(default_factory=lambda: {m: f"configs/pretrain_{m}_cpu_small.yaml"
                                                             for m in METHODS})

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS] + [i for i in self.impls if i not in IMPLS]
        if bad or not self.methods or not self.impls or not self.seeds:
            raise ValueError(f"methods must come from {METHODS}, impls from {IMPLS}, at least one seed; got {bad}")
        if self.crops not in IMPLS:
            raise ValueError(f"--crops must be one of {IMPLS}, got {self.crops!r}")
        if self.steps < 0 or self.eval_limit < 0 or self.probe_epochs < 1 or self.workers < 0 or \
                self.checkpoint_every < 0:
            raise ValueError("steps, eval_limit and checkpoint_every must be >= 0, probe_epochs >= 1, workers >= 0")
        if self.same_init and self.methods != ("dino",):
            raise ValueError("--same-init applies to DINO only (--methods dino): lightly's SwAV prototypes carry a "
                             "bias ours do not have")

    def config(self, method: str) -> PretrainConfig:
        """The method's preset with the overrides that apply to it (``objective.<other method>.*`` ones skipped)."""
        preset = Path(self.presets[method])
        mine = [o for o in self.overrides if not _for_other_method(o, method)]
        return PretrainConfig.from_yaml(preset if preset.is_absolute() else REPO / preset, mine)


# ------------------------------------------------------------------------------------------------ data


class Crops(Dataset):
    """Multi-crop views of the photos; sample ``i`` of seed ``s`` always gets the same crops."""

    def __init__(self, images: LabelledImages, transform: Any, seed: int, lightly: bool) -> None:
        self.images, self.transform, self.seed, self.lightly = images, transform, seed, lightly

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        position, index = key
        sample_seed = (self.seed * 1_000_003 + position) % 2**63
        img = self.images.load(index).convert("RGB")
        if not self.lightly:
            return self.transform(img, torch.Generator().manual_seed(sample_seed))
        torch.manual_seed(sample_seed)          # lightly's transforms draw from the global RNGs
        random.seed(sample_seed)
        return self.transform(img)


def lightly_transform(method: str, mc: MultiCropConfig, size: int, mean: tuple, std: tuple) -> Any:
    """lightly's multi-crop transform of ``method`` at tagsight's crop settings, returning tagsight's batch keys."""
    from lightly.transforms import DINOTransform, SwaVTransform

    norm, g = {"mean": list(mean), "std": list(std)}, mc.global_size or size
    if method == "swav":
        views = SwaVTransform(crop_sizes=(g, mc.local_size), crop_counts=(mc.n_global, mc.n_local),
                              crop_min_scales=(mc.global_scale[0], mc.local_scale[0]),
                              crop_max_scales=(mc.global_scale[1], mc.local_scale[1]), normalize=norm)
    else:
        if mc.n_global != 2:
            raise ValueError("lightly's DINOTransform makes exactly 2 global crops")
        views = DINOTransform(global_crop_size=g, global_crop_scale=mc.global_scale, local_crop_size=mc.local_size,
                              local_crop_scale=mc.local_scale, n_local_views=mc.n_local, normalize=norm)

    def crops(img: Any) -> dict[str, torch.Tensor]:
        out = views(img)
        local = out[mc.n_global:]
        return {"image": torch.stack(out[:mc.n_global]),
                "local": torch.stack(local) if local else torch.zeros(0, 3, mc.local_size, mc.local_size)}
    return crops


def batch_keys(n: int, batch: int, steps: int, seed: int) -> list[list[tuple[int, int]]]:
    """``steps`` batches of (position, photo index): seeded permutations, epoch after epoch, no partial batch."""
    if n < batch:
        raise ValueError(f"{n} photos are fewer than one batch of {batch}")
    out, position, epoch = [], 0, 0
    while len(out) < steps:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
        for start in range(0, n - batch + 1, batch):
            out.append([(position + j, order[start + j]) for j in range(batch)])
            position += batch
            if len(out) == steps:
                break
        epoch += 1
    return out


def loader(spec: Spec, method: str, cfg: PretrainConfig, backbone: Backbone, photos: LabelledImages, steps: int,
           seed: int, start: int = 0) -> DataLoader:
    """The seed's batches from step ``start`` on (a resumed arm sees exactly the batches it had not yet seen)."""
    dc, mc = backbone.data_config, cfg.data.multicrop
    lightly = spec.crops == "lightly"
    transform = lightly_transform(method, mc, dc.input_size, dc.mean, dc.std) if lightly else \
        multicrop_transform(dc, mc)
    keys = batch_keys(len(photos), cfg.data.batch_size, steps, seed)[start:]
    return DataLoader(Crops(photos, transform, seed, lightly), batch_sampler=keys, num_workers=spec.workers)


# ------------------------------------------------------------------------------------------------ training


def plan(cfg: PretrainConfig, spec: Spec) -> tuple[int, int, DinoSchedule]:
    """(steps, SwAV's frozen steps, DINO's schedule) for the preset at ``spec.steps``."""
    per_epoch = max(1, cfg.data.epoch_length // cfg.data.batch_size)
    steps = spec.steps or per_epoch * cfg.loop.epochs
    p = cfg.objective.params        # the preset's own method's settings (SwavConfig or DinoConfig)
    if isinstance(p, DinoConfig):
        return steps, 0, DinoSchedule(steps, round(p.freeze_last_layer_epochs * per_epoch),
                                      round(p.warmup_teacher_temp_epochs * per_epoch))
    return steps, round(p.freeze_prototypes_epochs * per_epoch), DinoSchedule(steps)


def seeded_backbone(cfg: PretrainConfig, seed: int) -> Backbone:
    torch.manual_seed(seed)
    return run_backbone(cfg.model.name, cfg.model.img_size, cfg.model.init)


@dataclass
class Progress:
    """Where an arm's training stands: the next step, the losses so far, the training seconds so far."""
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged_at: int | None = None      # the step whose loss was not finite: the arm stopped there


class ArmCheckpoint:
    """An unfinished arm saved every ``every`` steps (weights, buffers, optimiser, progress), deleted once it is done.

    The batch order and every crop depend only on (seed, position), so an arm resumed at step k sees exactly the
    batches k.. of an uninterrupted run and ends bit-identical to it.
    """

    def __init__(self, path: Path | None, every: int) -> None:
        self.path, self.every = path, every

    def load(self, arm: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Progress:
        if self.path is None or not self.path.is_file():
            return Progress()
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        arm.load_state_dict(state["arm"])
        optimizer.load_state_dict(state["optimizer"])
        log.info("resuming %s at step %d", self.path.name, state["step"])
        return Progress(state["step"], list(state["losses"]), float(state["seconds"]))

    def maybe_save(self, arm: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: Progress,
                   steps: int) -> None:
        if self.path is None or not self.every or progress.step % self.every or progress.step >= steps:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"arm": arm.state_dict(), "optimizer": optimizer.state_dict(), "step": progress.step,
                    "losses": progress.losses, "seconds": progress.seconds}, tmp)
        tmp.replace(self.path)

    def done(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def train(arm: torch.nn.Module, batches: Callable[[int], Iterator[dict[str, torch.Tensor]]], cfg: PretrainConfig,
          steps: int, device: str, checkpoint: ArmCheckpoint | None = None) -> Progress:
    """The same loop for every arm: the preset's optimiser and lr schedule over ``steps``.

    ``batches(start)`` yields the batches from step ``start`` on; with a checkpoint, an unfinished arm resumes.
    """
    checkpoint = checkpoint or ArmCheckpoint(None, 0)
    arm.to(device).train()
    optimizer = build_optimizer([p for p in arm.parameters() if p.requires_grad], cfg.optim, cfg.data.batch_size)
    schedule = Schedule(optimizer, cfg.optim, steps, cfg.optim.scaled_lr(cfg.data.batch_size))
    progress = checkpoint.load(arm, optimizer)
    began = time.perf_counter() - progress.seconds
    for step, batch in enumerate(batches(progress.step), start=progress.step):
        schedule.apply(step)
        optimizer.zero_grad(set_to_none=True)
        out = arm({k: v.to(device) for k, v in batch.items()}, step)
        if not math.isfinite(loss := float(out["loss"].detach())):
            log.error("step %d/%d loss %s: the arm diverged; it stops here and is not evaluated", step + 1, steps, loss)
            progress.losses.append(loss)
            progress.step, progress.diverged_at = step + 1, step + 1
            break
        out["loss"].backward()
        arm.before_step(step)
        optimizer.step()
        arm.after_step(step)
        progress.losses.append(loss)
        progress.step, progress.seconds = step + 1, time.perf_counter() - began
        if step % 10 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.4f", step + 1, steps, progress.losses[-1])
        checkpoint.maybe_save(arm, optimizer, progress, steps)
    checkpoint.done()
    return progress


# ------------------------------------------------------------------------------------------------ evaluation


def _for_other_method(override: str, method: str) -> bool:
    """True for ``objective.<m>.key=value`` with ``m`` another compared method (one --set serves both presets)."""
    parts = override.split("=", 1)[0].strip().split(".")
    return len(parts) > 2 and parts[0] == "objective" and parts[1] in METHODS and parts[1] != method


def eval_sets(spec: Spec) -> tuple[LabelledImages, LabelledImages]:
    fit, val = FolderImages(spec.eval_train or spec.train), FolderImages(spec.val)
    if spec.eval_limit and spec.eval_limit < len(fit):
        rng = np.random.default_rng(0)
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(fit.labels == c))[: spec.eval_limit //
                                       len(fit.classes)] for c in range(len(fit.classes))]))
        fit = SubsetImages(fit, keep)
    if list(fit.classes) != list(val.classes):
        raise ValueError(f"--eval-train and --val hold different classes: {fit.classes} vs {val.classes}")
    return fit, val


def evaluate(backbone: Backbone, fit: LabelledImages, val: LabelledImages, spec: Spec) -> dict[str, float]:
    backbone = backbone.eval()
    tx, ty = extract_features(backbone, fit, batch_size=128, workers=spec.workers)
    vx, vy = extract_features(backbone, val, batch_size=128, workers=spec.workers)
    k = min(20, len(tx))
    knn = knn_evaluate(tx, ty, vx, vy, len(fit.classes), k=k)
    lin = linear_probe(tx, ty, vx, vy, len(fit.classes), LinearProbeConfig(epochs=spec.probe_epochs))
    return {"knn_top1": knn["top1"], "knn_top5": knn["top5"], "linear_top1": lin["top1"], "linear_top5": lin["top5"]}


# ------------------------------------------------------------------------------------------------ runs


def make_arm(spec: Spec, cfg: PretrainConfig, method: str, impl: str, seed: int, backbone: Backbone) -> torch.nn.Module:
    """The arm on ``backbone`` (``seeded_backbone(cfg, seed)``); with ``--same-init`` lightly's arm starts from the head
    weights of tagsight's arm of the same seed."""
    _, freeze, schedule = plan(cfg, spec)
    settings, n_global = getattr(cfg.objective, method), cfg.data.multicrop.n_global
    arm = build_arm(method, impl, backbone, settings, n_global, freeze, schedule)
    if spec.same_init and impl == "lightly":
        start_as(arm, build_arm(method, "tagsight", seeded_backbone(cfg, seed), settings, n_global, freeze, schedule))
    return arm


def run_one(spec: Spec, method: str, impl: str, seed: int, photos: LabelledImages,
            sets: tuple[LabelledImages, LabelledImages], out: Path | None = None) -> dict[str, Any]:
    cfg = spec.config(method)
    steps = plan(cfg, spec)[0]
    backbone = seeded_backbone(cfg, seed)
    row: dict[str, Any] = {"method": method, "impl": impl, "seed": seed, "steps": steps,
                           "batch": cfg.data.batch_size, "model": cfg.model.name, "size": cfg.model.img_size}
    row["train_s"] = 0.0
    if impl != "random":
        arm = make_arm(spec, cfg, method, impl, seed, backbone)
        if spec.same_init and impl == "lightly":
            row["same_init"] = True
        saved = out / "checkpoints" / f"{method}-{impl}-{seed}-{steps}.pt" if out is not None else None

        def batches(start: int) -> Iterator[dict[str, torch.Tensor]]:
            return iter(loader(spec, method, cfg, backbone, photos, steps, seed, start))

        done = train(arm, batches, cfg, steps, spec.device, ArmCheckpoint(saved, spec.checkpoint_every))
        backbone = arm.backbone_to_evaluate().cpu()
        row.update(first_loss=round(done.losses[0], 4), last_loss=round(statistics.fmean(done.losses[-5:]), 4),
                   train_s=round(done.seconds, 1))
        if done.diverged_at is not None:
            row.update(diverged_at=done.diverged_at, last_loss=None)
            log.info("%s", row)
            return row
    row.update({k: round(v, 4) for k, v in evaluate(backbone, *sets, spec).items()})
    log.info("%s", row)
    return row


def jobs(spec: Spec) -> list[tuple[str, str, int]]:
    """Every (method, implementation, seed), with the random floor once per seed (filed under the first method)."""
    return [(spec.methods[0], "random", s) for s in spec.seeds] + [
        (m, i, s) for s in spec.seeds for m in spec.methods for i in spec.impls]


def run(spec: Spec, out: Path) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    done = json.loads(path.read_text())["runs"] if path.is_file() else []
    photos, sets = FolderImages(spec.train), eval_sets(spec)
    for method, impl, seed in jobs(spec):
        if any((r["method"], r["impl"], r["seed"]) == (method, impl, seed) for r in done):
            continue
        done.append(run_one(spec, method, impl, seed, photos, sets, out))
        path.write_text(json.dumps({"spec": asdict(spec), "versions": versions(), "runs": done}, indent=1))
    (out / "results.md").write_text(table(done, spec))
    return done


def versions() -> dict[str, str]:
    found = {}
    for name in ("tagsight", "lightly", "torch", "timm"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _mean_sd(values: list[float]) -> str:
    pct = [100 * v for v in values]
    sd = statistics.stdev(pct) if len(pct) > 1 else 0.0
    return f"{statistics.fmean(pct):.1f} ± {sd:.1f}"


def table(rows: list[dict[str, Any]], spec: Spec) -> str:
    """Markdown: one line per (method, implementation), mean ± sd over seeds (percent)."""
    header = ("| method | implementation | seeds | kNN top-1 % | kNN top-5 % | linear top-1 % | linear top-5 % | "
              "loss first -> last | train s |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    groups = [("-", "random")] + [(m, i) for m in spec.methods for i in spec.impls]
    for method, impl in groups:
        every = [r for r in rows if r["impl"] == impl and (impl == "random" or r["method"] == method)]
        rs, diverged = [r for r in every if "diverged_at" not in r], [r for r in every if "diverged_at" in r]
        if diverged:
            lines.append(f"| {method} | {impl} | {len(diverged)} | diverged: "
                         + ", ".join(f"seed {r['seed']} at step {r['diverged_at']}" for r in diverged)
                         + " (loss not finite; not evaluated) | | | | | |")
        if not rs:
            continue
        loss = "-" if impl == "random" else \
            f"{statistics.fmean(r['first_loss'] for r in rs):.3f} -> {statistics.fmean(r['last_loss'] for r in rs):.3f}"
        cells = [_mean_sd([r[k] for r in rs]) for k in ("knn_top1", "knn_top5", "linear_top1", "linear_top5")]
        lines.append(f"| {method} | {impl} | {len(rs)} | {' | '.join(cells)} | {loss} | "
                     f"{statistics.fmean(r['train_s'] for r in rs):.0f} |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> tuple[Spec, Path]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="photo folder (root/<class>/*.jpg) to pretrain on, labels ignored")
    p.add_argument("--val", required=True, help="labelled photo folder to evaluate on")
    p.add_argument("--eval-train", default="", help="labelled photos the kNN / probe fit on (default: --train)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=0, help="optimiser steps per run (0: the preset's)")
    p.add_argument("--crops", default="tagsight", choices=IMPLS)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of both presets, e.g. --set model.img_size=32; objective.swav.* and "
                        "objective.dino.* reach only that method's preset")
    p.add_argument("--eval-limit", type=int, default=0)
    p.add_argument("--probe-epochs", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="save an unfinished arm every N steps under OUT/checkpoints, so a killed run resumes there")
    p.add_argument("--same-init", action="store_true",
                   help="DINO only: lightly's arm starts from the tagsight arm's head weights (same seed, same "
                        "backbone), so the two differ only in their code")
    a = p.parse_args(argv)
    spec = Spec(a.train, a.val, a.eval_train, tuple(a.methods.split(",")), tuple(a.impls.split(",")),
                tuple(int(s) for s in a.seeds.split(",")), a.steps, a.crops, tuple(a.overrides), a.eval_limit,
                a.probe_epochs, a.workers, a.device, a.checkpoint_every, same_init=a.same_init)
    return spec, a.out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        spec, out = parse(argv)
        rows = run(spec, out)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        log.error("%s", exc)
        return 2
    sys.stdout.write(table(rows, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
