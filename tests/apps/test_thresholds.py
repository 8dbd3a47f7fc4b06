import numpy as np
import pytest

from tagsight.apps.thresholds import operating_point, threshold_for_precision, threshold_for_recall, wilson_lower


def test_precision_threshold_is_the_lowest_meeting_the_target():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    pos = np.array([1, 1, 0, 1, 1, 0, 0], bool)
    # precision at >= 0.9:1, 0.8:1, 0.7:2/3, 0.6:3/4, 0.5:4/5, 0.4:4/6, 0.3:4/7
    chosen = threshold_for_precision(scores, pos, 0.8)
    assert chosen.threshold == 0.5 and chosen.precision == pytest.approx(0.8) and chosen.recall == 1.0
    assert threshold_for_precision(scores, pos, 0.9).threshold == 0.8
    assert threshold_for_precision(scores, pos, 0.8, min_support=6) is None
    assert threshold_for_precision(scores, ~pos & False, 0.5) is None


def test_wilson_bound_is_more_cautious_on_few_samples():
    assert wilson_lower(np.array([2]), np.array([2]), 1.0)[0] < 1.0
    assert wilson_lower(np.array([200]), np.array([200]), 1.0)[0] > wilson_lower(np.array([2]), np.array([2]), 1.0)[0]
    scores = np.r_[np.linspace(1, 0.9, 3), np.linspace(0.8, 0.1, 40)]
    pos = np.r_[np.ones(3, bool), np.arange(40) % 5 != 0]  # 3 sure hits, then 80 % precise
    raw, cautious = threshold_for_precision(scores, pos, 0.75), threshold_for_precision(scores, pos, 0.75, z=1.0)
    assert raw.threshold < cautious.threshold or cautious is None


def test_ties_are_one_decision():
    scores = np.array([0.5, 0.5, 0.5, 0.2])
    pos = np.array([1, 1, 0, 0], bool)
    chosen = threshold_for_precision(scores, pos, 0.6)  # 2 of the 3 tied samples: the tie is not split
    assert chosen.threshold == 0.5 and chosen.predicted == 3


def test_recall_threshold_is_the_highest_meeting_the_target():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    pos = np.array([1, 0, 1, 0, 1], bool)
    chosen = threshold_for_recall(scores, pos, 0.6)
    assert chosen.threshold == 0.7 and chosen.recall == pytest.approx(2 / 3)
    assert threshold_for_recall(scores, pos, 1.0).threshold == 0.5
    assert threshold_for_recall(scores, np.zeros(5, bool), 0.5) is None


def test_random_scores_meet_targets_on_the_data_they_were_chosen_on():
    rng = np.random.default_rng(0)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        pos = rng.random(300) < 0.3
        scores = rng.normal(pos * 1.5, 1.0)
        p = threshold_for_precision(scores, pos, 0.8, min_support=5)
        if p is not None:
            op = operating_point(scores, pos, p.threshold)
            assert op.precision >= 0.8 and op.predicted >= 5
            for lower in scores[scores < p.threshold]:  # no lower threshold meets the target
                below = operating_point(scores, pos, lower)
                assert below.precision < 0.8 or below.predicted < 5
        r = threshold_for_recall(scores, pos, 0.9)
        assert operating_point(scores, pos, r.threshold).recall >= 0.9


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        threshold_for_precision(np.array([0.1]), np.array([True]), 1.5)
    with pytest.raises(ValueError):
        threshold_for_precision(np.array([np.nan]), np.array([True]), 0.5)
    with pytest.raises(ValueError):
        threshold_for_recall(np.array([0.1, 0.2]), np.array([True]), 0.5)
