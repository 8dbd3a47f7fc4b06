"""A pretraining run's model as stored on disk, read without the trainer.

A run folder (``tagsight pretrain``) holds ``config.yaml`` and ``checkpoints/<step>/model.safetensors``
(with a ``checkpoints/latest`` pointer) whose ``backbone.model.*`` tensors are the backbone. Serving,
evaluation and training all read it through these functions: ``RunSettings`` takes the few model fields
from ``config.yaml`` (with ``PretrainConfig``'s defaults), ``checkpoint_weights`` the tensors, and
``backbone_from_weights`` builds the run's backbone and loads them strictly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone
from tagsight.models.pretrained import RANDOM, check_init, run_backbone

log = logging.getLogger(__name__)

WEIGHTS, LATEST, STATE = "model.safetensors", "latest", "state.json"   # tagsight.train.checkpoint's layout
BACKBONE_PREFIX = "backbone.model."


@dataclass(frozen=True)
class RunSettings:
    """The model fields of a run's ``config.yaml``, with ``PretrainConfig``'s defaults for absent fields."""

    model: str = "resnet18"
    img_size: int = 64
    init: str = RANDOM
    loss: str = "softmax"

    def __post_init__(self) -> None:
        if not isinstance(self.img_size, int) or self.img_size < 16:
            raise ValueError(f"model.img_size must be an integer >= 16, got {self.img_size!r}")
        check_init(self.model, self.init)

    @classmethod
    def from_yaml(cls, path: Path) -> RunSettings:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ReasonError("bad_run_config", f"{path} is not valid YAML ({exc})") from None
        model, objective = _section(data, "model", path), _section(data, "objective", path)
        fields = {"model": model.get("name"), "img_size": model.get("img_size"), "init": model.get("init"),
                  "loss": objective.get("loss")}
        try:
            return cls(**{k: v for k, v in fields.items() if v is not None})
        except ValueError as exc:
            raise ReasonError("bad_run_config", f"{path}: {exc}") from None


def _section(data: Any, name: str, path: Path) -> dict[str, Any]:
    section = data.get(name) if isinstance(data, dict) else None
    if section is not None and not isinstance(section, dict):
        raise ReasonError("bad_run_config", f"{path}: '{name}' is not a mapping")
    return section or {}


def run_config_path(path: Path) -> Path:
    """``config.yaml`` of a run folder, or of the run holding checkpoint folder ``path``."""
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / "config.yaml").is_file():
            return candidate / "config.yaml"
    raise ReasonError("not_a_run", f"{path} has no config.yaml (nor its run folder): not a tagsight run")


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint folder ``checkpoints/latest`` names, when it is complete (has its state); else None."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / STATE).is_file() else None


def checkpoint_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint folder, or of a run folder's latest checkpoint (FileNotFoundError: none)."""
    path = Path(path)
    if not (path / WEIGHTS).is_file():
        found = latest_checkpoint(path)
        if found is None or not (found / WEIGHTS).is_file():
            raise FileNotFoundError(f"{path} holds no checkpoint")
        path = found
    return load_file(str(path / WEIGHTS))


def backbone_from_weights(tensors: dict[str, torch.Tensor], settings: RunSettings, origin: Path,
                          img_size: int | None = None) -> Backbone:
    """The run's backbone with the checkpoint's ``backbone.model.*`` tensors loaded strictly."""
    with torch.random.fork_rng(devices=[]):   # the checkpoint overwrites every tensor; keep the caller's RNG
        backbone = run_backbone(settings.model, img_size or settings.img_size, settings.init, load_weights=False)
    weights = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items() if k.startswith(BACKBONE_PREFIX)}
    if not weights:
        raise ReasonError("no_backbone_weights", f"{origin}: the checkpoint holds no '{BACKBONE_PREFIX}*' tensors")
    load_strict(backbone.model, weights, str(origin))
    log.info("loaded %s backbone (%d tensors) from %s", settings.model, len(weights), origin)
    return backbone


def load_strict(model: nn.Module, tensors: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``tensors`` into ``model``; ReasonError ``weights_mismatch`` naming what does not fit."""
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or extra or wrong:
        raise ReasonError("weights_mismatch", f"{origin} does not fit the model: missing {missing[:5]}, "
                                              f"unexpected {extra[:5]}, wrong shape {wrong[:5]}")
    model.load_state_dict(tensors, strict=True)
