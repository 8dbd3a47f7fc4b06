"""Choosing decision thresholds on held-out scores: for a target precision, or for a target recall.

Both functions take the scores of one concept over held-out samples and which of them are true.
A sample is predicted positive when its score is ``>= threshold``; thresholds are chosen among the
observed scores, so the precision and recall reported are exactly those of the held-out set.

* ``threshold_for_precision``: the LOWEST threshold whose precision is ``>= target`` with at least
  ``min_support`` predicted positives (the most recall the target allows). With ``z > 0`` the
  precision compared to the target is the Wilson lower bound at ``z`` standard deviations instead
  of the raw share, which guards against thresholds that look precise on a handful of samples.
  ``None`` when no threshold reaches the target.
* ``threshold_for_recall``: the HIGHEST threshold whose recall is ``>= target`` (the fewest false
  alarms the target allows); ``None`` without positives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Operating:
    """One operating point: the threshold and what it gives on the samples it was measured on."""

    threshold: float
    precision: float
    recall: float
    predicted: int
    positives: int

    def to_dict(self) -> dict[str, float | int]:
        return {"threshold": self.threshold, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "predicted": self.predicted, "positives": self.positives}


def wilson_lower(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """Wilson score lower bound of a binomial proportion (0 where ``trials`` is 0)."""
    n = np.maximum(trials.astype(np.float64), 1e-12)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.where(trials > 0, (centre - spread) / (1 + z * z / n), 0.0)


def _curve(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with true positives and predictions at or above each."""
    s, pos = _check(scores, positives)
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    tp, n = np.cumsum(pos), np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # the last sample of each run of equal scores
    return s[last], tp[last], n[last]


def operating_point(scores: np.ndarray, positives: np.ndarray, threshold: float) -> Operating:
    """Precision and recall of ``scores >= threshold`` (precision is NaN with no prediction)."""
    s, pos = _check(scores, positives)
    hit = s >= threshold
    predicted, tp, total = int(hit.sum()), int((hit & pos).sum()), int(pos.sum())
    return Operating(float(threshold), tp / predicted if predicted else math.nan,
                     tp / total if total else math.nan, predicted, total)


def threshold_for_precision(scores: np.ndarray, positives: np.ndarray, target: float, min_support: int = 1,
                            z: float = 0.0) -> Operating | None:
    """The lowest threshold meeting ``target`` precision (see the module docstring), or None."""
    _check_target(target)
    if min_support < 1 or z < 0:
        raise ValueError(f"min_support must be >= 1 and z >= 0, got {min_support} and {z}")
    thresholds, tp, n = _curve(scores, positives)
    bound = wilson_lower(tp, n, z) if z > 0 else tp / n
    ok = np.flatnonzero((bound >= target) & (n >= min_support))
    if not len(ok):
        return None
    return operating_point(scores, positives, float(thresholds[ok[-1]]))


def threshold_for_recall(scores: np.ndarray, positives: np.ndarray, target: float) -> Operating | None:
    """The highest threshold meeting ``target`` recall, or None without positives."""
    _check_target(target)
    thresholds, tp, _ = _curve(scores, positives)
    total = tp[-1] if len(tp) else 0
    if total == 0:
        return None
    ok = np.flatnonzero(tp / total >= target)
    return operating_point(scores, positives, float(thresholds[ok[0]]))


def _check_target(target: float) -> None:
    if not 0 < target <= 1:
        raise ValueError(f"a target precision or recall must be in (0, 1], got {target}")


def _check(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, pos = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positives).ravel().astype(bool)
    if s.shape != pos.shape:
        raise ValueError(f"scores and positives differ in length: {s.shape} and {pos.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return s, pos
