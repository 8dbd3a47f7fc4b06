"""Hashtag-prediction metrics on held-out posts: mAP, precision@k, recall@k. Pure numpy.

Inputs are ``scores [N, L]`` (any real numbers, higher = more likely; logits or probabilities) and
``targets [N, L]`` where an entry ``> 0`` marks a positive (1/k target rows work as they are).

Average precision of one label (the step-function definition, as ``sklearn.metrics.
average_precision_score``): rank the N samples by descending score; with P positives,

    AP = sum over positives p of precision(p) / P,   precision(p) = TP(s_p) / #{i : s_i >= s_p},

with TP(s) = #{positives i : s_i >= s}. Samples with equal scores form one group that is counted
together, so the result does not depend on the order of tied samples; with no ties this is the
usual mean of precision at the rank of each positive (positives at ranks 1 and 3 -> (1 + 2/3) / 2).

* ``mAP``: unweighted mean of AP over labels with at least one positive (others are undefined and
  skipped; their number is ``L - n_labels_scored``).
* ``precision@k``: mean over samples with at least one positive of |top-k ∩ positives| / k.
* ``recall@k``: mean over the same samples of |top-k ∩ positives| / |positives|.
  Top-k takes the k highest scores of a sample; ties at the k-th score go to the lower label index.
  The denominator stays k even when L < k, so precision@5 of a 3-label vocabulary is at most 3/5.
* ``n_samples``: samples with at least one positive; ``n_labels_scored``: labels with one.
With no positives at all the metric values are NaN.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def hashtag_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float | int]:
    """``mAP``, ``precision@1``, ``precision@5``, ``recall@5``, ``n_samples``, ``n_labels_scored``."""
    s, pos = _check(scores, targets)
    label_ap = per_label_average_precision(s, pos)
    label_ap = label_ap[~np.isnan(label_ap)]
    rows = pos.any(axis=1)
    s, pos = s[rows], pos[rows]
    hits1 = (top_k_mask(s, 1) & pos).sum(axis=1)
    hits5 = (top_k_mask(s, 5) & pos).sum(axis=1)
    if not rows.any():
        log.warning("no sample has a positive label: hashtag metrics are NaN")
    return {
        "mAP": _mean(label_ap),
        "precision@1": _mean(hits1 / 1),
        "precision@5": _mean(hits5 / 5),
        "recall@5": _mean(hits5 / pos.sum(axis=1)),
        "n_samples": int(rows.sum()),
        "n_labels_scored": int(label_ap.size),
    }


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """AP of one label (definition in the module docstring); ValueError without positives."""
    s, pos = _check(np.asarray(scores).reshape(-1, 1), np.asarray(positives).reshape(-1, 1))
    if not pos.any():
        raise ValueError("average precision is undefined without positives")
    return _ap(s[:, 0], pos[:, 0])


def per_label_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of every label ``[L]``; NaN for labels without positives."""
    s, pos = _check(scores, targets)
    s_by_label, pos_by_label = np.ascontiguousarray(s.T), np.ascontiguousarray(pos.T)
    out = np.full(s.shape[1], np.nan)
    for c in np.flatnonzero(pos_by_label.any(axis=1)):
        out[c] = _ap(s_by_label[c], pos_by_label[c])
    return out


def _ap(s: np.ndarray, pos: np.ndarray) -> float:
    """AP of one label with at least one positive: mean over positives of TP(s_p) / #{s >= s_p}."""
    ranked = np.sort(s)
    pos_scores = np.sort(s[pos])
    at_or_above = len(s) - np.searchsorted(ranked, pos_scores, side="left")
    tp_at_or_above = len(pos_scores) - np.searchsorted(pos_scores, pos_scores, side="left")
    return float((tp_at_or_above / at_or_above).mean())


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean ``[N, L]`` marking each row's k highest scores (ties to the lower index)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), scores.shape[1])
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    greater = scores > kth
    equal = scores == kth
    need = k - greater.sum(axis=1, keepdims=True)
    mask: np.ndarray = greater | (equal & (np.cumsum(equal, axis=1) <= need))
    return mask


def chance_map(targets: np.ndarray, seed: int = 0) -> float:
    """mAP of uniformly random scores on ``targets``: the floor an untrained ranking sits near."""
    t = np.asarray(targets)
    rng = np.random.default_rng(seed)
    return float(hashtag_metrics(rng.random(t.shape), t)["mAP"])


def _check(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets)
    if s.ndim != 2 or s.shape != t.shape:
        raise ValueError(f"scores and targets must both be [N, L], got {s.shape} and {t.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return s, t > 0


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def classification_metrics(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Top-1 / top-5 accuracy, per-class accuracy and the confusion matrix of class scores ``[N, C]``.

    ``confusion[i][j]`` counts images of true class i predicted as class j (top-1, ties to the lower
    index); ``per_class`` maps each class name to ``{"accuracy", "count"}`` (accuracy NaN -> None for
    a class without images, so the JSON stays valid).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.ndim != 2 or s.shape != (len(y), len(classes)):
        raise ValueError(f"scores must be [N={len(y)}, C={len(classes)}], got {s.shape}")
    rows = np.arange(len(y))
    top = {f"top{k}": float(top_k_mask(s, k)[rows, y].mean()) if len(y) else float("nan") for k in (1, 5)}
    pred = top_k_mask(s, 1).argmax(axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    counts = confusion.sum(axis=1)
    per_class = {name: {"accuracy": float(confusion[i, i] / counts[i]) if counts[i] else None, "count": int(counts[i])}
                 for i, name in enumerate(classes)}
    return {**top, "per_class": per_class, "confusion": confusion.tolist(), "classes": list(classes)}
