"""The pretraining config: one dataclass tree, the single source of defaults, YAML presets, dotted overrides
(loaded by tagsight.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tagsight.config import YamlConfig
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


@dataclass(frozen=True)
class PretrainConfig(YamlConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0
