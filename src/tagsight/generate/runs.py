"""Load a generator run (``tagsight pretrain --objective diffusion``) or a tuned one (``tagsight generate tune``).

A generator folder holds ``config.yaml`` (the resolved ``PretrainConfig``; ``objective`` holds the
generator's settings), ``run.json`` (lineage; ``kind`` is ``pretrain`` or ``tune``), ``tokens.json``
(the vocabulary used as the token table) and ``checkpoints/``. A tuned folder also holds
``tune.json`` (its evaluations and the early-stopping choice) and ``checkpoints/best``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from tagsight.fsio import ReasonError
from tagsight.generate.conditioning import TokenTable
from tagsight.generate.objective import DiffusionObjective
from tagsight.generate.method import TOKENS_FILE, build_generator, generator_vae
from tagsight.tags.vocab import Vocabulary
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.config import PretrainConfig

BEST = "best"
CHECKPOINT_CHOICES = "auto (best for a tuned run, else latest), latest, best or a folder name such as step-00000100"


@dataclass
class GeneratorRun:
    """A loaded generator: its folder, config, token table, objective (weights loaded), checkpoint step and kind."""

    path: Path
    cfg: PretrainConfig
    table: TokenTable
    objective: DiffusionObjective
    step: int
    kind: str
    checkpoint: Path


def read_generator_config(run_dir: Path) -> tuple[PretrainConfig, dict[str, Any]]:
    """(config, run.json) of a generator folder; ``ReasonError`` when it is not one."""
    if not (run_dir / "run.json").is_file() or not (run_dir / "config.yaml").is_file():
        raise ReasonError("not_a_run", f"{run_dir} has no run.json and config.yaml: not a tagsight run folder")
    info = json.loads((run_dir / "run.json").read_text())
    cfg = PretrainConfig.from_yaml(run_dir / "config.yaml")
    if cfg.objective.name != "diffusion" or not (run_dir / TOKENS_FILE).is_file():
        raise ReasonError("not_a_generator", f"{run_dir} is a {cfg.objective.name!r} run, not a generator "
                                             "(train one with 'tagsight pretrain --objective diffusion')")
    return cfg, info


def choose_checkpoint(run_dir: Path, choice: str, kind: str) -> Path:
    """The checkpoint folder ``choice`` names (see ``CHECKPOINT_CHOICES``)."""
    root = run_dir / "checkpoints"
    if choice == "auto":
        choice = BEST if kind == "tune" and (root / BEST / "model.safetensors").is_file() else "latest"
    found = latest_checkpoint(run_dir) if choice == "latest" else root / choice
    if found is None or not (found / "model.safetensors").is_file():
        have = sorted(p.name for p in root.glob("*") if (p / "model.safetensors").is_file()) if root.is_dir() else []
        raise ReasonError("no_checkpoint", f"{run_dir} has no checkpoint {choice!r} (has: {', '.join(have) or 'none'}; "
                                           f"choose {CHECKPOINT_CHOICES})")
    return found


def load_generator(run_dir: str | Path, checkpoint: str = "auto", device: str = "cpu") -> GeneratorRun:
    """The generator of ``run_dir`` with the weights of ``checkpoint``, in eval mode on ``device``."""
    run_dir = Path(run_dir).resolve()
    cfg, info = read_generator_config(run_dir)
    vocab = Vocabulary.from_dict(json.loads((run_dir / TOKENS_FILE).read_text(encoding="utf-8")))
    kind = str(info.get("kind", "pretrain"))
    found = choose_checkpoint(run_dir, checkpoint, kind)
    objective = build_generator(cfg, generator_vae(cfg), len(vocab))
    objective.load_state_dict(load_file(str(found / "model.safetensors")))
    state = json.loads((found / "state.json").read_text()) if (found / "state.json").is_file() else {}
    table = TokenTable(vocab, cfg.objective.params.max_tokens)
    return GeneratorRun(run_dir, cfg, table, objective.to(device).eval(), int(state.get("step", 0)), kind, found)
