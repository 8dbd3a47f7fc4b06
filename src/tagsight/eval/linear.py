"""Linear probe on frozen features, with its hyper-parameters chosen without looking at the test set.

Protocol (``linear_probe``):

1. Hold out ``val_fraction`` of the TRAIN features per class (seeded; classes with one sample stay
   in the fit part). The evaluation (test) set is never used to choose anything.
2. For every (learning rate, weight decay) of the sweep: standardise with the fit part's mean and
   std, train a zero-initialised ``nn.Linear`` with cross-entropy for ``epochs`` epochs of shuffled
   mini-batches (SGD with momentum 0.9 and L2 weight decay by default, or AdamW; cosine
   learning-rate decay), and score top-1 on the held-out part.
   The best top-1 wins; ties go to the earlier setting in sweep order.
3. Refit with the chosen setting on ALL train features (standardised with their statistics) and
   report top-1 / top-5 on the test features.

Everything is deterministic for a seed (zero init, shuffles from a seeded ``torch.Generator``).
Defaults measured on EfficientNet-Lite0 features of imagenette-160 at 64 px: SGD, 20 epochs picks
lr 0.01 inside the grid (AdamW picks the grid's lowest lr and its decoupled decay has no effect).
"""

from __future__ import annotations

import logging
from typing import Any
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tagsight.eval.knn import topk_accuracy
from tagsight.models.heads import Standardiser  # noqa: F401  (moved down so serving needs no eval.linear)

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class LinearProbeConfig:
    lrs: tuple[float, ...] = (0.1, 0.01, 0.001)
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-3)
    epochs: int = 20
    batch_size: int = 256           # 0 = full batch
    val_fraction: float = 0.2       # of the train set, for the sweep
    seed: int = 0
    optimizer: str = "sgd"          # "sgd" (momentum 0.9, L2 weight decay) or "adamw" (decoupled decay)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.lrs or not self.weight_decays or any(v <= 0 for v in self.lrs):
            raise ValueError(f"lrs must be non-empty and > 0 and weight_decays non-empty, got {self}")
        if any(w < 0 for w in self.weight_decays):
            raise ValueError(f"weight decays must be >= 0, got {self.weight_decays}")
        if self.epochs < 1 or self.batch_size < 0:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 0, got {self.epochs}, {self.batch_size}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, held-out indices), stratified per class; a class keeps at least one fit sample."""
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_held = min(len(idx) - 1, math.ceil(fraction * len(idx)))
        held.append(idx[:n_held])
        fit.append(idx[n_held:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, lr: float, weight_decay: float,
               cfg: LinearProbeConfig) -> tuple[nn.Linear, Standardiser]:
    """Train a linear classifier on standardised ``x`` (see the module docstring)."""
    scaler = Standardiser.fit(x)
    xs = scaler(x)
    layer = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    batch = cfg.batch_size or len(xs)
    steps = cfg.epochs * math.ceil(len(xs) / batch)
    opt = (torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
           if cfg.optimizer == "sgd" else torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(xs), generator=gen).split(batch):
            loss = nn.functional.cross_entropy(layer(xs[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return layer, scaler


def evaluate(layer: nn.Linear, scaler: Standardiser, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Top-1 / top-5 accuracy of a fitted probe on ``(x, y)``."""
    return topk_accuracy(probe_scores(layer, scaler, x), y.numpy())


def probe_scores(layer: nn.Linear, scaler: Standardiser, x: torch.Tensor) -> np.ndarray:
    """Logits ``[N, C]`` (float64) of a fitted probe."""
    with torch.no_grad():
        logits: np.ndarray = layer(scaler(x)).double().numpy()
    return logits


def select_hyperparameters(x: torch.Tensor, y: torch.Tensor, num_classes: int,
                           cfg: LinearProbeConfig) -> tuple[tuple[float, float], list[dict[str, float]]]:
    """Best (lr, weight decay) on a held-out part of the TRAIN set, and the sweep's scores."""
    fit, held = holdout_split(y.numpy(), cfg.val_fraction, cfg.seed)
    if not len(held):
        raise ValueError("the train set is too small to hold out a validation split (need 2+ samples per class)")
    sweep, best = [], None
    for lr in cfg.lrs:
        for wd in cfg.weight_decays:
            layer, scaler = fit_linear(x[fit], y[fit], num_classes, lr, wd, cfg)
            top1 = evaluate(layer, scaler, x[held], y[held])["top1"]
            sweep.append({"lr": lr, "weight_decay": wd, "val_top1": top1})
            log.debug("linear probe lr=%g wd=%g: held-out top-1 %.4f", lr, wd, top1)
            if best is None or top1 > best[0]:
                best = (top1, lr, wd)
    if best is None:
        raise ValueError("the probe sweep needs at least one learning rate and one weight decay")
    return (best[1], best[2]), sweep


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 num_classes: int, cfg: LinearProbeConfig | None = None) -> dict[str, Any]:
    """Sweep on a train hold-out, refit on all train, and score the test set (top-1, top-5, chosen setting)."""
    return linear_probe_scores(train_x, train_y, test_x, test_y, num_classes, cfg)[0]


def linear_probe_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                        num_classes: int, cfg: LinearProbeConfig | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """``linear_probe``'s result and the probe's test logits ``[N_test, num_classes]``."""
    cfg = cfg or LinearProbeConfig()
    x, y = torch.as_tensor(train_x, dtype=torch.float32), torch.as_tensor(train_y, dtype=torch.int64)
    tx, ty = torch.as_tensor(test_x, dtype=torch.float32), torch.as_tensor(test_y, dtype=torch.int64)
    (lr, wd), sweep = select_hyperparameters(x, y, num_classes, cfg)
    layer, scaler = fit_linear(x, y, num_classes, lr, wd, cfg)
    result = {**evaluate(layer, scaler, tx, ty), "lr": lr, "weight_decay": wd, "epochs": cfg.epochs,
              "val_fraction": cfg.val_fraction, "seed": cfg.seed, "sweep": sweep}
    log.info("linear probe (lr=%g, wd=%g): top-1 %.4f, top-5 %.4f", lr, wd, result["top1"], result["top5"])
    return result, probe_scores(layer, scaler, tx)
