"""The pretraining config: one dataclass tree, the single source of defaults, YAML presets, dotted overrides."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tagsight.data.multicrop import MultiCropConfig
from tagsight.data.views import SELECTIONS
from tagsight.generate.config import DiffusionConfig
from tagsight.models.pretrained import check_init
from tagsight.objectives.dino import DinoConfig
from tagsight.objectives.swav import SwavConfig
from tagsight.train.loop import LoopConfig
from tagsight.train.optim import OptimConfig

SAMPLINGS = ("sqrt", "inverse", "none")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet18"
    img_size: int = 64
    init: str = "random"        # or "efficientnet-lite0": start from the packaged ImageNet weights (tagsight.models.pretrained)

    def __post_init__(self) -> None:
        if self.img_size < 16:
            raise ValueError(f"model.img_size must be >= 16, got {self.img_size}")
        check_init(self.name, self.init)


@dataclass(frozen=True)
class ObjectiveConfig:
    name: str = "hashtag"
    loss: str = "softmax"                                   # hashtag only
    swav: SwavConfig = field(default_factory=SwavConfig)    # swav only
    dino: DinoConfig = field(default_factory=DinoConfig)    # dino only
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)   # diffusion only (the generator)


@dataclass(frozen=True)
class DataSettings:
    epoch_length: int = 2048        # samples drawn per epoch, over all ranks
    batch_size: int = 64            # per rank, per micro-batch
    sampling: str = "sqrt"
    holdout_fraction: float = 0.1
    workers: int = 2
    select: str = "all"             # label-free objectives: "all" posts of the split, or "labelled" ones only
    multicrop: MultiCropConfig = field(default_factory=MultiCropConfig)   # swav and dino only

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise ValueError(f"data.select must be one of {SELECTIONS}, got {self.select!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"data.sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"data.holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.epoch_length < 1 or self.batch_size < 1 or self.workers < 0:
            raise ValueError("data.epoch_length and data.batch_size must be >= 1, data.workers >= 0")


class YamlConfig:
    """Dict / YAML round trip with dotted overrides for a (nested) frozen dataclass config."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        return _build(cls, d, "")

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: list[str] = ()):
        data = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
        for item in overrides:
            _set(data, item)
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


@dataclass(frozen=True)
class PretrainConfig(YamlConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0


def _build(cls, d: dict[str, Any], prefix: str):
    if not isinstance(d, dict):
        raise ValueError(f"{prefix or 'config'} must be a mapping, got {d!r}")
    fields = typing.get_type_hints(cls)
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown config keys {[prefix + k for k in unknown]}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in d.items():
        ftype = fields[name]
        kwargs[name] = _build(ftype, value, f"{prefix}{name}.") if dataclasses.is_dataclass(ftype) else value
    return cls(**kwargs)


def _set(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override (value parsed as YAML)."""
    if "=" not in item:
        raise ValueError(f"override {item!r} is not key=value")
    key, raw = item.split("=", 1)
    node = data
    *parents, leaf = key.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)
