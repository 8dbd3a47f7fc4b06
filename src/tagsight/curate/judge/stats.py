"""The small statistics of a before/after study: a paired bootstrap interval, Wilson's interval, the sign test,
Fleiss' kappa of several raters and a cluster-bootstrap interval of a pooled win rate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054


def bootstrap_mean_ci(values: Sequence[float], resamples: int = 10_000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling ``values`` with replacement); nan for no values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (resamples, v.size))].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (``successes`` may be fractional: ties counted as half); nan for n=0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the probability, under a fair coin, of a split at least this uneven
    (ties are left out before calling). 1.0 when there are no decisive votes."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    p: float = 2 * tail / 2 ** n   # exact int division: no float overflow for large n
    return min(1.0, p)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float:
    """Fleiss' kappa of items each rated by the same number (>= 2) of raters; ``ratings[i]`` are item i's
    categories. nan when there is no item or chance agreement is perfect (every rating in one category)."""
    if not ratings:
        return float("nan")
    n = len(ratings[0])
    if n < 2 or any(len(r) != n for r in ratings):
        raise ValueError(f"Fleiss' kappa needs the same number (>= 2) of ratings per item, got "
                         f"{sorted({len(r) for r in ratings})}")
    categories = sorted({c for r in ratings for c in r})
    counts = np.array([[list(r).count(c) for c in categories] for r in ratings], dtype=np.float64)
    observed = ((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))).mean()
    expected = float(((counts.sum(axis=0) / counts.sum()) ** 2).sum())
    return float("nan") if expected >= 1.0 else float((observed - expected) / (1.0 - expected))


def cluster_bootstrap_ratio(wins: Sequence[float], decisive: Sequence[float], resamples: int = 10_000,
                            seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``sum(wins) / sum(decisive)`` resampling clusters (e.g. pairs judged by several
    raters, whose votes are not independent); nan without decisive votes."""
    w, d = np.asarray(wins, dtype=np.float64), np.asarray(decisive, dtype=np.float64)
    if w.size == 0 or d.sum() == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, w.size, (resamples, w.size))
    den = d[idx].sum(axis=1)
    ratios = w[idx].sum(axis=1)[den > 0] / den[den > 0]
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return (float(lo), float(hi))
