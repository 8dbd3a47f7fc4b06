"""Optimisers and schedules: SGD with Nesterov momentum (WSL recipe) or AdamW, linear LR scaling,
linear warm-up, then cosine or step decay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"
    base_lr: float = 0.1          # learning rate per `reference_batch` images (Goyal et al. 2017 linear scaling)
    reference_batch: int = 256
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    schedule: str = "cosine"
    step_milestones: tuple[float, ...] = (0.5, 0.75, 0.9)   # fractions of training, for "step"
    step_gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.base_lr <= 0 or self.reference_batch < 1:
            raise ValueError("optim.base_lr must be > 0 and optim.reference_batch >= 1")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"optim.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        object.__setattr__(self, "step_milestones", tuple(self.step_milestones))

    def scaled_lr(self, global_batch: int) -> float:
        """Peak learning rate for a global batch: base_lr x global_batch / reference_batch."""
        return self.base_lr * global_batch / self.reference_batch


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    lr = cfg.scaled_lr(global_batch)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak LR at ``step`` (0-based) of ``total``: linear warm-up, then cosine or steps."""
    warmup = int(cfg.warmup_fraction * total)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.step_gamma ** sum(step >= m * total for m in cfg.step_milestones)


class Schedule:
    """Sets the optimiser's LR from the step; its state is just the step, so resume is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, peak_lr: float) -> None:
        self.optimizer, self.cfg, self.total, self.peak = optimizer, cfg, total_steps, peak_lr

    def apply(self, step: int) -> float:
        lr = self.peak * lr_factor(step, self.total, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr
