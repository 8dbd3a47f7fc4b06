"""Hashtag-prediction metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tagsight.metrics import (
    average_precision,
    chance_map,
    hashtag_metrics,
    per_label_average_precision,
    top_k_mask,
)


def test_ap_positives_at_ranks_one_and_three():
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)


def test_ap_does_not_depend_on_sample_order():
    scores, pos = np.array([0.3, 0.9, 0.1, 0.7]), np.array([True, False, False, True])
    perm = np.array([2, 0, 3, 1])
    assert average_precision(scores[perm], pos[perm]) == pytest.approx(average_precision(scores, pos))


def test_ap_counts_a_tie_group_together():
    # positive tied with two negatives at the top: precision at the group's end is 1/3 for it,
    # whatever the order inside the tie; the second positive ranks 4th with 2 TPs above -> 2/4.
    assert average_precision([1, 1, 1, 0.5], [0, 1, 0, 1]) == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert average_precision([1, 1, 1, 0.5], [1, 0, 0, 1]) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_ap_without_positives_is_an_error():
    with pytest.raises(ValueError, match="without positives"):
        average_precision([0.1, 0.2], [0, 0])


def test_perfect_ranking_scores_one_everywhere():
    targets = np.array([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    m = hashtag_metrics(targets * 10, targets)
    assert m["mAP"] == 1.0
    assert m["precision@1"] == 1.0
    assert m["recall@5"] == 1.0
    assert m["precision@5"] == pytest.approx((2 / 5 + 1 / 5 + 1 / 5) / 3)
    assert (m["n_samples"], m["n_labels_scored"]) == (3, 4)


def test_labels_and_samples_without_positives_are_ignored():
    targets = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    scores = np.array([[0.9, 0.0, 5.0], [9.0, 9.0, 9.0], [0.1, 0.2, 5.0], [0.3, 0.8, 5.0]])
    ap = per_label_average_precision(scores, targets)
    # label 0 ranks: 9.0 (neg), 0.9 (pos), 0.3 (neg), 0.1 (pos) -> (1/2 + 2/4) / 2
    assert ap[0] == pytest.approx(0.5)
    assert ap[1] == pytest.approx(1 / 2)  # 9.0 (neg) above 0.8 (pos)
    assert math.isnan(ap[2])
    m = hashtag_metrics(scores, targets)
    assert m["mAP"] == pytest.approx(0.5)
    assert (m["n_samples"], m["n_labels_scored"]) == (3, 2)
    assert m["precision@1"] == 0.0  # label 2 (no positives anywhere) tops every row


def test_precision_and_recall_at_5_by_hand():
    targets = np.zeros((1, 8))
    targets[0, [0, 6, 7]] = 1 / 3
    scores = np.array([[8, 7, 6, 5, 4, 3, 2, 1]], dtype=float)  # top-5 holds label 0 only
    m = hashtag_metrics(scores, targets)
    assert m["precision@1"] == 1.0
    assert m["precision@5"] == pytest.approx(1 / 5)
    assert m["recall@5"] == pytest.approx(1 / 3)


def test_top_k_breaks_ties_towards_lower_label_index():
    mask = top_k_mask(np.array([[0.0, 1.0, 1.0, 1.0, 0.5]]), 2)
    assert mask.tolist() == [[False, True, True, False, False]]
    assert top_k_mask(np.zeros((3, 4)), 9).all()


def test_no_positives_gives_nan_not_a_crash():
    m = hashtag_metrics(np.ones((2, 3)), np.zeros((2, 3)))
    assert math.isnan(m["mAP"]) and math.isnan(m["precision@1"])
    assert (m["n_samples"], m["n_labels_scored"]) == (0, 0)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"\[N, L\]"):
        hashtag_metrics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        hashtag_metrics(np.array([[np.nan, 0.0]]), np.array([[1.0, 0.0]]))


def test_chance_map_is_deterministic_and_below_a_good_ranking():
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 20)) < 0.1).astype(float)
    assert chance_map(targets, seed=3) == chance_map(targets, seed=3)
    assert chance_map(targets, seed=3) < 0.3 < hashtag_metrics(targets + 0.1 * rng.random(targets.shape), targets)["mAP"]
