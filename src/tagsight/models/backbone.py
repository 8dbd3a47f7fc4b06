"""timm backbones as feature extractors, with the input normalisation they expect.

``create_backbone("resnet18", img_size=64)`` builds a randomly initialised timm model without its
classifier (``num_classes=0``, never downloads weights) whose ``forward`` returns pooled features
``[B, num_features]``. ``data_config`` records the mean, std and input size the data pipeline must
use; it is saved beside checkpoints (``to_dict`` / ``from_dict``) so evaluation preprocesses alike.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from collections.abc import Sequence
from typing import Any

import timm
from timm.data.config import resolve_data_config
import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """Input normalisation and size for one backbone (RGB channel order, pixels scaled to [0, 1])."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 channel values, got {self.mean} and {self.std}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be > 0, got {self.std}")
        if int(self.input_size) != self.input_size or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {self.input_size!r}")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        """Inverse of ``to_dict``; unknown keys are an error so a typo is not silently ignored."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown DataConfig keys {sorted(unknown)}")
        values: dict[str, Any] = {k: rgb(v, k) if k in ("mean", "std") else v for k, v in d.items()}
        return cls(**values)


def rgb(values: Sequence[float], what: str = "mean and std") -> tuple[float, float, float]:
    """Three channel values as floats; ValueError for another count."""
    if len(values) != 3:
        raise ValueError(f"{what} need 3 channel values, got {list(values)}")
    return float(values[0]), float(values[1]), float(values[2])


class Backbone(nn.Module):
    """A timm model without classifier; ``forward(x [B,3,H,W]) -> [B, num_features]``."""

    def __init__(self, name: str, model: nn.Module, data_config: DataConfig,
                 timm_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.name = name
        self.model = model
        num_features = getattr(model, "num_features", None)
        if not isinstance(num_features, int):
            raise ValueError(f"{name}: the model has no integer num_features ({num_features!r})")
        self.num_features = num_features
        self.data_config = data_config
        self.timm_kwargs = dict(timm_kwargs or {})   # beyond timm's defaults, to rebuild the same architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.model(x)
        return features


def create_backbone(name: str, *, img_size: int | None = None, **timm_kwargs: Any) -> Backbone:
    """Build timm model ``name`` (random init, no download) as a feature extractor.

    ``img_size`` sets ``data_config.input_size`` and is also passed to models that take it (ViTs,
    whose position embeddings depend on it); convolutional models ignore it. Unknown names raise
    ValueError with the closest timm names.
    """
    if not timm.is_model(name):
        raise ValueError(_unknown_model(name))
    if img_size is not None and (int(img_size) != img_size or img_size < 1):
        raise ValueError(f"img_size must be a positive integer, got {img_size!r}")
    kwargs = {"pretrained": False, "num_classes": 0, **timm_kwargs}
    model = _build(name, kwargs, img_size)
    data_config = _data_config(model, img_size)
    log.debug("backbone %s: %d features, %s", name, model.num_features, data_config)
    return Backbone(name, model, data_config)


def _build(name: str, kwargs: dict[str, Any], img_size: int | None) -> nn.Module:
    if img_size is None or "img_size" in kwargs:
        return timm.create_model(name, **kwargs)
    try:
        return timm.create_model(name, img_size=img_size, **kwargs)
    except TypeError as e:
        if "img_size" not in str(e):
            raise
        return timm.create_model(name, **kwargs)


def _data_config(model: nn.Module, img_size: int | None) -> DataConfig:
    cfg = resolve_data_config({}, model=model)
    return DataConfig(
        mean=rgb(cfg["mean"], "mean"),
        std=rgb(cfg["std"], "std"),
        input_size=int(img_size if img_size is not None else cfg["input_size"][-1]),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
    )


def _unknown_model(name: str) -> str:
    close = difflib.get_close_matches(name, timm.list_models(), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown timm model {name!r}{hint} (see timm.list_models())"


def backbone_fingerprint(backbone: Backbone) -> str:
    """A hash of the backbone's name, data config and every state tensor (dtype, shape, bytes)."""
    h = hashlib.sha256(backbone.name.encode())
    h.update(json.dumps(backbone.data_config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
