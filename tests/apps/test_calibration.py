import json

import numpy as np
import pytest

from tagsight.apps.calibration import (CALIBRATION_FILE, PlattScaling, TemperatureScaling, calibrator_from_dict,
                                       expected_calibration_error, load_calibration, raw_probabilities, softmax)
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError
from tagsight.privacy.tombstones import Tombstone, add_tombstones
from tagsight.tags.vocab import Vocabulary
from tests.feeds import calibration_dataset


def overconfident(n=2000, labels=8, scale=6.0, seed=0):
    """Logits whose softmax is overconfident by ``scale``, and one-label targets drawn from the true softmax."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.0, (n, labels))
    p = softmax(true_logits)
    y = np.array([rng.choice(labels, p=row) for row in p])
    targets = np.zeros((n, labels))
    targets[np.arange(n), y] = 1
    return true_logits * scale, targets


def test_temperature_scaling_recovers_the_overconfidence_and_lowers_nll_and_ece():
    logits, targets = overconfident()
    cal = TemperatureScaling().fit(logits[:1000], targets[:1000])
    assert cal.temperature == pytest.approx(6.0, rel=0.2)
    scores = cal.evaluate(logits[1000:], targets[1000:])
    assert scores["calibrated"]["nll"] < 0.7 * scores["raw"]["nll"]
    assert scores["calibrated"]["ece"] < 0.5 * scores["raw"]["ece"]


def test_platt_scaling_lowers_binary_nll_and_ece_of_presence():
    logits, targets = overconfident(scale=4.0, seed=1)
    cal = PlattScaling().fit(logits[:1000], targets[:1000])
    scores = cal.evaluate(logits[1000:], targets[1000:])
    assert scores["calibrated"]["nll"] < scores["raw"]["nll"]
    assert scores["calibrated"]["ece"] < scores["raw"]["ece"]
    assert 0 < cal.a < 1  # overconfident inputs are flattened


def test_calibrators_round_trip_through_json():
    logits, targets = overconfident(n=300)
    for cal in (TemperatureScaling().fit(logits, targets), PlattScaling(loss="bce").fit(logits, targets)):
        again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
        assert np.allclose(again.probabilities(logits), cal.probabilities(logits))


def test_ece_of_perfect_calibration_is_small_and_of_a_constant_wrong_guess_large():
    rng = np.random.default_rng(0)
    c = rng.random(20000)
    assert expected_calibration_error(c, rng.random(20000) < c) < 0.02
    assert expected_calibration_error(np.full(100, 0.9), np.zeros(100)) == pytest.approx(0.9)


def test_raw_probabilities_follow_the_training_loss():
    z = np.array([[0.0, 2.0]])
    assert np.allclose(raw_probabilities(z, "softmax").sum(), 1)
    assert np.allclose(raw_probabilities(z, "bce"), 1 / (1 + np.exp(-z)))


def test_calibrate_run_uses_heldout_posts_only_and_thresholds_meet_the_target_on_the_fit_half(tiny_bundle, tiny_run):
    dataset, vocab_path, run = tiny_run
    cal = load_calibration(tiny_bundle)
    counts = cal["heldout"]
    index = SampleIndex.build(dataset)
    held = index.holdout(0.3, 0)
    assert counts["heldout_samples"] == int(held.sum())
    assert counts["used"] + counts.get("no_vocab_label", 0) + counts.get("tombstoned", 0) == counts["heldout_samples"]
    assert counts["fit"] + counts["check"] == counts["used"] and counts["fit"] > 0 and counts["check"] > 0
    vocab = Vocabulary.load(vocab_path)
    assert len(cal["concepts"]) == len(vocab) == len(cal["display"])
    assert all(d.startswith("#") for d in cal["display"])
    for c in cal["concepts"]:
        if c["alt_text"]:
            assert c["fit"]["precision"] >= 0.3 and c["fit"]["predicted"] >= 1
            assert c["check"]["positives"] == c["check_positives"]
        else:
            assert c["reason"] in ("no_positive", "target_not_reached")
    assert cal["summary"]["alt_text_concepts"] == sum(c["alt_text"] for c in cal["concepts"])


def test_tombstoned_heldout_posts_are_left_out_of_calibration(tiny_run, tmp_path):
    import shutil

    from tagsight.apps.calibration import CalibrationConfig, calibrate_run

    dataset, _, run = tiny_run
    index = SampleIndex.build(dataset)
    held_keys = [k for k, h in zip(index.post_keys, index.holdout(0.3, 0)) if h]
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    add_tombstones(copy, [Tombstone("post", held_keys[0])])
    run_copy = tmp_path / "run"
    shutil.copytree(run, run_copy)
    info = json.loads((run_copy / "run.json").read_text())
    info["dataset"]["path"] = str(copy)
    (run_copy / "run.json").write_text(json.dumps(info))
    result = calibrate_run(run_copy, None, CalibrationConfig(min_support=1, z=0.0))
    assert result["heldout"]["tombstoned"] == sum(k == held_keys[0] for k in held_keys)
    assert (run_copy / CALIBRATION_FILE).is_file()


def test_a_separate_calibration_dataset_leaves_out_posts_whose_photos_the_run_trained_on(tiny_run, tmp_path):
    from tagsight.apps.calibration import CalibrationConfig, calibrate_run

    dataset, _, run = tiny_run
    other, dups = calibration_dataset(dataset, tmp_path, duplicates=4)
    index = SampleIndex.build(other)
    assert dups <= set(index.post_keys)
    result = calibrate_run(run, tmp_path / "bundle", CalibrationConfig(min_support=1, z=0.0,
                                                                       heldout_dataset=str(other)))
    counts = result["heldout"]
    assert counts["heldout_samples"] == len(index)            # every post of the other dataset, not a split
    assert counts["in_training_pool"] == len(dups)
    assert counts["used"] + counts.get("no_vocab_label", 0) + counts["in_training_pool"] == len(index)
    assert result["config"]["heldout_dataset"] == str(other)
    assert len(result["display"]) == len(result["concepts"])


def test_the_runs_own_dataset_is_refused_as_a_separate_calibration_dataset(tiny_run):
    from tagsight.apps.calibration import CalibrationConfig, calibrate_run

    dataset, _, run = tiny_run
    with pytest.raises(ReasonError, match="the run's own dataset"):
        calibrate_run(run, None, CalibrationConfig(heldout_dataset=str(dataset)))
