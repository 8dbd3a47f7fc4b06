"""Sampling weights: sqrt (WSL), inverse, none; and the label distribution they produce."""

from __future__ import annotations

import numpy as np
import pytest

from tagsight.tags.sampling import effective_distribution, effective_distribution_for_mode, label_weights, post_weights


def zipf_corpus(num_labels: int = 40, top: int = 2000) -> tuple[list[list[int]], np.ndarray]:
    """Single-label posts; label c has round(top / (c + 1)) posts (Zipf, exponent 1)."""
    counts = np.array([max(1, round(top / (c + 1))) for c in range(num_labels)])
    label_lists = [[c] for c in range(num_labels) for _ in range(counts[c])]
    return label_lists, counts.astype(float)


def test_sqrt_law_on_a_zipf_corpus() -> None:
    label_lists, freqs = zipf_corpus()
    effective = effective_distribution_for_mode(label_lists, freqs, "sqrt")
    expected = np.sqrt(freqs) / np.sqrt(freqs).sum()
    np.testing.assert_allclose(effective, expected, rtol=1e-9)
    original = freqs / freqs.sum()
    assert effective[0] < original[0] and effective[-1] > original[-1]     # head damped, tail lifted


def test_sqrt_law_holds_when_actually_resampling() -> None:
    label_lists, freqs = zipf_corpus()
    weights = post_weights(label_lists, freqs, "sqrt")
    rng = np.random.default_rng(0)
    drawn = rng.choice(len(label_lists), size=200_000, p=weights / weights.sum())
    observed = np.bincount(np.array([label_lists[i][0] for i in drawn]), minlength=len(freqs)) / len(drawn)
    expected = np.sqrt(freqs) / np.sqrt(freqs).sum()
    np.testing.assert_allclose(observed[:10], expected[:10], rtol=0.05)


def test_inverse_is_flat_and_none_is_the_corpus() -> None:
    label_lists, freqs = zipf_corpus(10, 500)
    inverse = effective_distribution_for_mode(label_lists, freqs, "inverse")
    np.testing.assert_allclose(inverse, np.full(10, 0.1))
    none = effective_distribution_for_mode(label_lists, freqs, "none")
    np.testing.assert_allclose(none, freqs / freqs.sum())


def test_post_weight_is_the_mean_over_distinct_labels() -> None:
    freqs = np.array([4.0, 1.0])
    w = post_weights([[0], [1], [0, 1], [1, 1], []], freqs, "sqrt")
    np.testing.assert_allclose(w, [0.5, 1.0, 0.75, 1.0, 0.0])


def test_counts_weigh_distinct_label_sets() -> None:
    freqs = np.array([3.0, 1.0])
    expanded = effective_distribution_for_mode([[0], [0], [0], [1]], freqs, "sqrt")
    grouped = effective_distribution_for_mode([[0], [1]], freqs, "sqrt", counts=[3, 1])
    np.testing.assert_allclose(grouped, expanded)


def test_label_with_zero_frequency_gets_zero_weight() -> None:
    np.testing.assert_allclose(label_weights([4, 0], "inverse"), [0.25, 0.0])


def test_errors() -> None:
    with pytest.raises(ValueError, match="not one of"):
        label_weights([1.0], "log")
    with pytest.raises(ValueError, match="label ids must be in"):
        post_weights([[2]], [1.0, 1.0], "sqrt")
    with pytest.raises(ValueError, match="2 weights for 1 posts"):
        effective_distribution([[0]], [1.0, 1.0], 1)
