"""Linear probe: separability, hyper-parameter choice on the train hold-out only, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tagsight.eval import linear
from tagsight.eval.linear import LinearProbeConfig, holdout_split, linear_probe

FAST = LinearProbeConfig(lrs=(0.1, 0.01), weight_decays=(0.0, 1e-3), epochs=15, batch_size=16)


def separable(n_per: int, seed: int, offset: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (3 * n_per, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), n_per)
    x[np.arange(len(y)), y] += offset  # class c is shifted along axis c
    return x, y


def test_separable_features_are_learned():
    tx, ty = separable(20, 0, offset=8.0)
    vx, vy = separable(10, 1, offset=8.0)
    result = linear_probe(tx, ty, vx, vy, num_classes=3, cfg=FAST)
    assert result["top1"] == 1.0 and result["top5"] == 1.0
    assert (result["lr"], result["weight_decay"]) in {(s["lr"], s["weight_decay"]) for s in result["sweep"]}
    assert len(result["sweep"]) == 4


def test_hyperparameters_are_chosen_on_the_train_holdout_never_the_test_set(monkeypatch):
    tx, ty = separable(20, 0)
    vx, vy = separable(10, 1)
    train_rows = {tuple(r) for r in tx.tolist()}
    seen: list[str] = []
    real = linear.evaluate

    def spy(layer, scaler, x, y):
        rows = {tuple(r) for r in x.tolist()}
        seen.append("train" if rows <= train_rows else "test" if not rows & train_rows else "mixed")
        return real(layer, scaler, x, y)

    monkeypatch.setattr(linear, "evaluate", spy)
    linear_probe(tx, ty, vx, vy, num_classes=3, cfg=FAST)
    assert seen == ["train"] * 4 + ["test"]  # four sweep scores on train rows, then one final test score


def test_holdout_is_stratified_disjoint_and_keeps_a_fit_sample():
    y = np.array([0] * 10 + [1] * 5 + [2])
    fit, held = holdout_split(y, 0.2, seed=3)
    assert not set(fit) & set(held) and len(fit) + len(held) == len(y)
    assert sorted(np.bincount(y[held], minlength=3)) == [0, 1, 2]
    assert 15 in fit  # the lone class-2 sample is never held out


def test_probe_is_deterministic_for_a_seed():
    tx, ty = separable(15, 0, offset=1.0)
    vx, vy = separable(10, 1, offset=1.0)
    a = linear_probe(tx, ty, vx, vy, 3, FAST)
    torch.manual_seed(123)  # global RNG state must not matter
    b = linear_probe(tx, ty, vx, vy, 3, FAST)
    assert a == b


def test_config_is_validated():
    with pytest.raises(ValueError, match="val_fraction"):
        LinearProbeConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="lrs"):
        LinearProbeConfig(lrs=())
    with pytest.raises(ValueError, match="optimizer"):
        LinearProbeConfig(optimizer="lbfgs")


def test_adamw_also_learns_separable_features():
    tx, ty = separable(20, 0, offset=8.0)
    cfg = LinearProbeConfig(lrs=(0.05,), weight_decays=(0.0,), epochs=10, batch_size=8, optimizer="adamw")
    assert linear_probe(tx, ty, tx, ty, num_classes=3, cfg=cfg)["top1"] == 1.0
