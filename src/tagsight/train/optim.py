"""Optimisers and schedules: SGD with Nesterov momentum (WSL recipe) or AdamW, linear LR scaling,
linear warm-up, then cosine or step decay; their settings are ``OptimConfig`` (``tagsight.train.settings``)."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from tagsight.train.settings import OptimConfig


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
