"""The open-set guard: fitted on photos of nothing in the vocabulary, measured on others."""

import json

import numpy as np
import pytest

from tagsight.apps.calibration import CalibrationConfig, Rows, calibrate_run, concepts_said, open_world_concepts
from tagsight.apps.openset import BANK_FILE, OpenSetGuard, fit_guard, guard_from_dict, knn_scores, open_set_scores
from tagsight.datasets.synthetic import UNSEEN_KINDS, render_unseen, write_unseen
from tagsight.fsio import ReasonError


def test_scores_are_the_largest_output_or_its_logsumexp():
    z = np.array([[0.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
    assert open_set_scores(z, "max_logit").tolist() == [2.0, 5.0]
    assert open_set_scores(z, "energy") == pytest.approx([np.log(1 + np.e ** 2 + np.e), 5 + np.log(3)])
    for name in ("entropy", "knn"):   # knn scores features, not logits
        with pytest.raises(ValueError, match="unknown logit open-set score"):
            open_set_scores(z, name)


def test_fit_guard_lets_through_at_most_the_allowed_share_of_unseen_photos():
    unseen = np.arange(100, dtype=float)            # scores 0..99
    guard = fit_guard(unseen, 0.05)
    assert guard.familiar(unseen[:, None]).sum() == 5 and guard.threshold > 94
    strict = fit_guard(unseen, 0.0)
    assert not strict.familiar(unseen[:, None]).any()
    assert guard_from_dict(guard.to_dict()) == guard and guard_from_dict(None) is None
    with pytest.raises(ReasonError, match="no_unseen|none of the vocabulary"):
        fit_guard(np.array([]), 0.05)
    with pytest.raises(ValueError):
        OpenSetGuard("max_logit", 0.0, 1.0)


def test_unseen_rows_are_negatives_and_the_guard_keeps_them_out_of_alt_text():
    class Labels:  # the part of a Vocabulary that choose_concepts reads
        labels = [type("L", (), {"label": "dog.n.01"})(), type("L", (), {"label": "cat.n.01"})()]

    rng = np.random.default_rng(0)
    n_in, n_out = 200, 200
    # in-vocabulary photos: the true label has a high logit; unseen photos: both logits middling but one high-ish
    truth = rng.integers(0, 2, n_in)
    logits_in = rng.normal(0, 0.5, (n_in, 2)) + 4 * np.eye(2)[truth]
    logits_out = rng.normal(2.0, 0.5, (n_out, 2))
    logits = np.concatenate([logits_in, logits_out])
    probs = 1 / (1 + np.exp(-(logits - 2.5)))
    positives = np.concatenate([np.eye(2, dtype=bool)[truth], np.zeros((n_out, 2), bool)])
    check = rng.random(len(logits)) < 0.5
    unseen = np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)]
    cfg = CalibrationConfig(min_support=5, z=1.645, max_unseen_rate=0.025, open_set_score="max_logit")
    concepts, record, _ = open_world_concepts(Rows(probs, logits, None, positives, check, unseen), Labels(), cfg)
    assert all(c["alt_text"] for c in concepts)
    assert record["fit"]["unseen_familiar"]["rate"] <= 0.025
    assert record["check"]["unseen_with_a_concept"]["rate"] <= 0.05
    assert record["check"]["in_vocabulary_with_a_concept"]["rate"] > 0.8
    effective = np.where(OpenSetGuard(record["score"], record["threshold"], 0.025).familiar(logits)[:, None], probs, -1)
    said = concepts_said(effective, concepts)
    assert said[check & unseen].sum() == record["check"]["unseen_with_a_concept"]["passing"]


def test_knn_scores_leave_a_bank_photo_out_of_its_own_neighbours():
    bank = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert knn_scores(np.array([[1.0, 0.0]]), bank, k=1).tolist() == [1.0]
    # the same photo as bank row 0: its best neighbour is then row 2 (cosine 0.707), not itself
    assert knn_scores(np.array([[1.0, 0.0]]), bank, k=1, self_column=np.array([0])) == pytest.approx([2 ** -0.5])
    with pytest.raises(ValueError, match="bank"):
        OpenSetGuard("knn", 0.5, 0.05)


def test_the_knn_guard_separates_features_near_the_bank_from_features_far_from_it():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16))
    labels = rng.integers(0, 3, 300)
    features = np.concatenate([centres[labels] + rng.normal(0, 0.3, (300, 16)), rng.normal(0, 1, (200, 16))])
    positives = np.concatenate([np.eye(3, dtype=bool)[labels], np.zeros((200, 3), bool)])
    unseen = np.r_[np.zeros(300, bool), np.ones(200, bool)]
    check = rng.random(500) < 0.5
    logits = np.zeros((500, 3))   # the head says nothing useful: only features can tell
    probs = np.where(positives, 0.9, 0.1)

    class Labels:
        labels = [type("L", (), {"label": f"c{i}.n.01"})() for i in range(3)]

    concepts, record, guard = open_world_concepts(Rows(probs, logits, features, positives, check, unseen), Labels(),
                                                  CalibrationConfig(min_support=5))
    assert record["score"] == "knn" and record["bank"] == BANK_FILE and len(guard.bank) == (~check[:300]).sum()
    assert record["check"]["unseen_familiar"]["rate"] <= 0.05
    assert record["check"]["in_vocabulary_familiar"]["rate"] > 0.9


@pytest.mark.parametrize("kind", UNSEEN_KINDS)
def test_rendered_unseen_pictures_are_deterministic_rgb(kind):
    a = render_unseen(kind, (48, 32), np.random.default_rng(1))
    b = render_unseen(kind, (48, 32), np.random.default_rng(1))
    assert a.mode == "RGB" and a.size == (48, 32) and np.array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(a).std() > 1  # not a blank canvas
    with pytest.raises(ValueError):
        render_unseen("cat", (48, 32), np.random.default_rng(1))


def test_calibrating_with_unseen_photos_writes_a_guard_and_measures_it(tiny_run, tmp_path):
    _, _, run = tiny_run
    folder = tmp_path / "unseen"
    write_unseen(folder, 12, size=40, seed=3)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = CalibrationConfig(target_precision=0.3, min_support=1, z=0.0, unseen=(str(folder),), rendered_unseen=20)
    result = calibrate_run(run, tmp_path / "bundle", cfg)
    held = result["heldout"]
    assert held["unseen"] == 32 == held["unseen_fit"] + held["unseen_check"] and held["unseen_unreadable"] == 1
    guard = result["open_set"]
    assert guard["score"] == "knn" and guard["fit"]["unseen_familiar"]["photos"] == held["unseen_fit"]
    assert (tmp_path / "bundle" / BANK_FILE).is_file()
    # at most floor(0.025 * n) unseen fit photos pass the guard
    assert guard["fit"]["unseen_familiar"]["passing"] <= int(0.025 * held["unseen_fit"])
    saved = json.loads((tmp_path / "bundle" / "calibration.json").read_text())
    assert saved["open_set"]["threshold"] == guard["threshold"]
    with pytest.raises(ValueError):
        CalibrationConfig(unseen="photos/")


def test_apps_calibrate_cli_takes_unseen_photos_and_prints_the_guard(tiny_run, tmp_path, capsys):
    from tagsight.cli import main

    _, _, run = tiny_run
    folder = tmp_path / "unseen"
    write_unseen(folder, 6, size=40, seed=4)
    code = main(["apps", "calibrate", str(run), "--bundle", str(tmp_path / "b"), "--unseen", str(folder),
                 "--rendered-unseen", "10", "--max-unseen-rate", "0.1", "--open-set-score", "max_logit",
                 "--target-precision", "0.3", "--min-support", "1", "--z", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "open-set guard: max_logit >= " in out and "unseen photos with a concept" in out
    saved = json.loads((tmp_path / "b" / "calibration.json").read_text())
    assert saved["heldout"]["unseen"] == 16 and saved["open_set"]["max_unseen_rate"] == 0.1
    assert main(["apps", "calibrate", str(run), "--bundle", str(tmp_path / "c"), "--unseen",
                 str(tmp_path / "missing")]) == 2
