"""Per-post sampling weights from label frequencies, and the label distribution they produce.

Hashtag frequencies are Zipfian: a few labels cover most posts. WSL (Mahajan et al. 2018)
resamples images "by the square root of their hashtags' frequency" so that the tail is seen.
Exact formula used here, for a post p with labels L(p) and label post counts n_c:

    label weight   a_c = n_c ** -1/2   (sqrt)   |   n_c ** -1   (inverse)   |   1   (none)
    post weight    w_p = mean(a_c for c in L(p))          (0 for a post without labels)

Drawing posts with probability proportional to w_p, a single-label post of label c is drawn with
probability proportional to n_c ** -1/2 and there are n_c of them, so label c is seen in
proportion to n_c * n_c ** -1/2 = sqrt(n_c): the head is damped, the tail lifted, the order kept.
``inverse`` makes every label equally frequent (over-fitting the tail); ``none`` keeps the corpus
distribution. The mean (rather than the sum or the max) keeps a post with many labels from being
drawn more often just for having many, and gives a post with one rare and one common label an
intermediate weight.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SAMPLING_MODES = ("sqrt", "inverse", "none")
_EXPONENT = {"sqrt": -0.5, "inverse": -1.0, "none": 0.0}


def label_weights(freqs: Sequence[float] | np.ndarray, mode: str) -> np.ndarray:
    """a_c for each label from its post count; a label with count 0 gets weight 0."""
    if mode not in _EXPONENT:
        raise ValueError(f"sampling mode {mode!r} is not one of {SAMPLING_MODES}")
    f = np.asarray(freqs, dtype=np.float64)
    if (f < 0).any():
        raise ValueError("label frequencies must be >= 0")
    out = np.zeros_like(f)
    positive = f > 0
    out[positive] = f[positive] ** _EXPONENT[mode]
    return out


def post_weights(label_lists: Sequence[Sequence[int]], freqs: Sequence[float] | np.ndarray, mode: str) -> np.ndarray:
    """w_p = mean of the label weights of post p's distinct labels (0 for a post without labels)."""
    a = label_weights(freqs, mode)
    posts, labels = _pairs(label_lists, len(a))
    n = len(label_lists)
    total = np.bincount(posts, weights=a[labels], minlength=n)
    count = np.bincount(posts, minlength=n)
    return np.divide(total, count, out=np.zeros(n), where=count > 0)


def effective_distribution(label_lists: Sequence[Sequence[int]], weights: Sequence[float] | np.ndarray,
                           num_labels: int) -> np.ndarray:
    """Expected share of each label among the labels of posts drawn with probability ∝ ``weights``.

    share_c = sum of w_p over posts p carrying c, divided by the same sum over all labels; with
    uniform weights this is the corpus label distribution. Returns zeros when no post has weight.
    """
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(label_lists):
        raise ValueError(f"{len(w)} weights for {len(label_lists)} posts")
    posts, labels = _pairs(label_lists, num_labels)
    mass = np.bincount(labels, weights=w[posts], minlength=num_labels)
    total = mass.sum()
    return mass / total if total > 0 else mass


def effective_distribution_for_mode(label_lists: Sequence[Sequence[int]], freqs: Sequence[float] | np.ndarray,
                                    mode: str, counts: Sequence[int] | None = None) -> np.ndarray:
    """The effective label distribution when posts are resampled under ``mode``.

    ``counts`` optionally gives how many posts share each label list (a histogram of label sets).
    """
    weights = post_weights(label_lists, freqs, mode)
    if counts is not None:
        weights = weights * np.asarray(counts, dtype=np.float64)
    return effective_distribution(label_lists, weights, len(freqs))


def _pairs(label_lists: Sequence[Sequence[int]], num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (post index, label id) pairs as two int arrays; label ids must be in range."""
    lengths = np.fromiter((len(labels) for labels in label_lists), dtype=np.int64, count=len(label_lists))
    labels = np.fromiter((l for ls in label_lists for l in ls), dtype=np.int64, count=int(lengths.sum()))
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(f"label ids must be in [0, {num_labels})")
    posts = np.repeat(np.arange(len(label_lists), dtype=np.int64), lengths)
    keys = np.unique(posts * max(num_labels, 1) + labels)
    return keys // max(num_labels, 1), keys % max(num_labels, 1)
