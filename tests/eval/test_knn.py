"""Weighted kNN on constructed features."""

from __future__ import annotations

import numpy as np
import pytest

from tagsight.eval.knn import knn_evaluate, knn_scores, topk_accuracy


def clusters(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(4, 16) * 10
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, 16)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(4), n_per)


def test_separated_clusters_are_classified_perfectly():
    tx, ty = clusters(10, 0)
    vx, vy = clusters(5, 1)
    result = knn_evaluate(tx, ty, vx, vy, num_classes=4, k=5)
    assert result["top1"] == 1.0 and result["top5"] == 1.0 and result["k"] == 5


def test_votes_are_exp_similarity_over_temperature_and_scale_free():
    train = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    scores = knn_scores(train * 7, np.array([0, 1, 1]), np.array([[2.0, 0.0]]), num_classes=2, k=2, temperature=0.5)
    # neighbours: sample 0 (cos 1, class 0) and sample 2 (cos 1/sqrt2, class 1)
    assert scores[0] == pytest.approx([np.exp(1 / 0.5), np.exp(2 ** -0.5 / 0.5)])


def test_ties_go_to_the_lower_index_deterministically():
    train = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    # identical similarity for samples 0 and 1: k=1 takes sample 0 (class 1) every time
    scores = knn_scores(train, np.array([1, 0, 0]), np.array([[1.0, 0.0]]), num_classes=2, k=1)
    assert scores[0, 1] > 0 and scores[0, 0] == 0
    # equal class votes: top-1 is the lower class index
    assert topk_accuracy(np.array([[1.0, 1.0]]), np.array([0]), ks=(1,))["top1"] == 1.0
    assert topk_accuracy(np.array([[1.0, 1.0]]), np.array([1]), ks=(1,))["top1"] == 0.0


def test_chunking_does_not_change_scores():
    tx, ty = clusters(10, 0)
    vx, _ = clusters(7, 2)
    assert np.allclose(knn_scores(tx, ty, vx, 4, chunk=3), knn_scores(tx, ty, vx, 4, chunk=1000))


def test_top5_counts_a_label_ranked_second():
    scores = np.array([[0.1, 0.9, 0.5], [0.9, 0.1, 0.0]])
    acc = topk_accuracy(scores, np.array([2, 0]))
    assert acc == {"top1": 0.5, "top5": 1.0}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="temperature"):
        knn_scores(np.ones((2, 2)), np.zeros(2), np.ones((1, 2)), 1, temperature=0)
    with pytest.raises(ValueError, match="labels"):
        knn_scores(np.ones((2, 2)), np.array([0, 3]), np.ones((1, 2)), 2)
