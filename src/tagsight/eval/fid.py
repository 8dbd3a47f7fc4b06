"""The Fréchet distance between two sets of image features, with a bootstrap interval.

Each set of features is summarised by a Gaussian (mean ``mu``, covariance ``S``); the Fréchet (2-Wasserstein)
distance between the two Gaussians is::

    d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

(Dowson & Landau 1982). On Inception-v3 pool features it is the FID of Heusel et al. 2017; Inception
weights cannot be downloaded here, so callers name the backbone whose features they pass (tagsight uses
the packaged EfficientNet-Lite0's pooled features: values are comparable only between measurements on
the same backbone, image size and set sizes, never with published FIDs).

Two ways to the same number, both in float64:

- ``frechet_distance(a, b)`` from two ``GaussianStats``: ``tr((S_1 S_2)^(1/2))`` is the sum of the
  square roots of the eigenvalues of ``S_1^(1/2) S_2 S_1^(1/2)`` (symmetric positive semi-definite;
  negative rounding is clipped);
- ``frechet_between(x, y)`` from the feature sets themselves: with the centred sets scaled as
  ``A = (x - mean) / sqrt(n_x - 1)`` (so ``S_1 = A^T A``) and ``B`` likewise, the non-zero eigenvalues
  of ``S_1 S_2`` are the squared singular values of ``A B^T`` (``n_x x n_y``), so the trace term is
  the nuclear norm of ``A B^T``, exactly, and costs a small SVD instead of two ``D x D``
  eigendecompositions: fast enough to bootstrap 1,280-d features on a CPU.

The estimate is biased upwards for small sets (the covariances are noisy); ``bootstrap_frechet``
resamples both sets with replacement to give a percentile interval of that estimate at the sets' own
sizes, and callers should report a real-against-real distance at the same sizes as the floor. A resampled
set repeats some of its rows, which adds to that bias: the percentile interval can lie wholly above the
estimate, so two sets' marginal intervals are a poor test of which set is closer.
``bootstrap_frechet_difference`` answers that question: the difference of two sets' distances to one
reference, every resample drawing the reference once for both and each set on its own, so the bias the
two share (the reference's and that of equal-sized sets) cancels in the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``[D]`` and covariance ``[D, D]`` of a feature set (rows: samples), in float64."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> GaussianStats:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"features must be [N >= 2, D], got shape {x.shape}")
        return cls(x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    root: np.ndarray = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return root


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """The squared Fréchet distance between the Gaussians ``a`` and ``b`` (>= 0)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature sizes differ: {a.mean.shape[0]} and {b.mean.shape[0]}")
    root = _sqrt_psd(a.cov)
    middle = np.linalg.eigvalsh((root @ b.cov @ root + (root @ b.cov @ root).T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(middle, 0.0, None)).sum())
    diff = a.mean - b.mean
    return max(0.0, float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt))


def _scaled_centred(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got shape {x.shape}")
    mean = x.mean(axis=0)
    return mean, (x - mean) / np.sqrt(x.shape[0] - 1)


def frechet_between(x: np.ndarray, y: np.ndarray) -> float:
    """The squared Fréchet distance between the Gaussians fitted to feature sets ``x`` and ``y`` (rows: samples).

    The sample-space form when a set has fewer rows than features (the case of generated samples against
    1,280-d features), the covariance form otherwise; both give the same number.
    """
    (mx, a), (my, b) = _scaled_centred(x), _scaled_centred(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    if min(len(a), len(b)) > a.shape[1]:
        return frechet_distance(GaussianStats.of(x), GaussianStats.of(y))
    trace_sqrt = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    diff = mx - my
    return max(0.0, float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * trace_sqrt))


def bootstrap_frechet(x: np.ndarray, y: np.ndarray, resamples: int = 200, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``frechet_between(x, y)``, resampling both sets with replacement."""
    rng = _generator(resamples, seed)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    values = [frechet_between(_resample(x, rng), _resample(y, rng)) for _ in range(resamples)]
    return _percentiles(values, level)


def bootstrap_frechet_difference(x1: np.ndarray, x2: np.ndarray, y: np.ndarray, resamples: int = 200,
                                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``frechet_between(x2, y) - frechet_between(x1, y)``: each resample draws
    ``y`` once for both distances and ``x1``, ``x2`` each on its own (paired through the reference). An interval
    below 0 says ``x2`` is closer to ``y`` than ``x1``; one that holds 0 says the sets cannot be told apart."""
    rng = _generator(resamples, seed)
    x1, x2, y = (np.asarray(a, dtype=np.float64) for a in (x1, x2, y))
    values = []
    for _ in range(resamples):
        ref = _resample(y, rng)
        values.append(frechet_between(_resample(x2, rng), ref) - frechet_between(_resample(x1, rng), ref))
    return _percentiles(values, level)


def _generator(resamples: int, seed: int) -> np.random.Generator:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    return np.random.default_rng(seed)


def _resample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x[rng.integers(0, len(x), len(x))]


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))
