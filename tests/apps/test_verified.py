import json

import numpy as np
import pytest

from tagsight.apps.calibration import CalibrationConfig, calibrate_run, choose_concepts
from tagsight.apps.verified import load_verified
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError
from tagsight.tags.vocab import Vocabulary
from tests.feeds import calibration_dataset


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_verified_labels_map_hashtags_and_labels_and_mark_only_named_concepts(tiny_run, tmp_path):
    _, vocab_path, _ = tiny_run
    vocab = Vocabulary.load(vocab_path)
    first, second = vocab.labels[0], vocab.labels[1]
    tag = next(iter(second.members))
    v = load_verified(_write(tmp_path / "v.jsonl", [{"post_key": "a/1", "labels": [first.label]},
                                                     {"post_key": "a/2", "labels": ["#" + tag]},
                                                     {"post_key": "a/3", "labels": []}]), vocab)
    assert v.concepts.sum() == 2 and v.concepts[first.index] and v.concepts[second.index]
    has, pos = v.positives(["a/2", "zz/9", "a/1"])
    assert has.tolist() == [True, False, True]
    assert pos[0, second.index] and not pos[0, first.index] and not pos[1].any() and pos[2, first.index]


@pytest.mark.parametrize("rows, reason", [([{"post_key": "a/1", "labels": ["#certainly-not-a-tag-xyz"]}],
                                           "unknown_verified_label"),
                                          ([{"labels": []}], "bad_verified"), ([], "bad_verified")])
def test_bad_verified_files_are_refused_with_a_reason(tiny_run, tmp_path, rows, reason):
    _, vocab_path, _ = tiny_run
    with pytest.raises(ReasonError) as err:
        load_verified(_write(tmp_path / "v.jsonl", rows), Vocabulary.load(vocab_path))
    assert err.value.reason == reason


def test_choose_concepts_uses_the_given_positives_and_skips_unverified_labels(tiny_run):
    _, vocab_path, _ = tiny_run
    vocab = Vocabulary.load(vocab_path)
    n, labels = 40, len(vocab)
    rng = np.random.default_rng(0)
    probs = rng.random((n, labels))
    positives = probs > 0.5                      # a perfect score: precise at any threshold above 0.5
    check = np.arange(n) % 2 == 1
    eligible = np.zeros(labels, dtype=bool)
    eligible[0] = True
    cfg = CalibrationConfig(target_precision=0.9, min_support=3, z=0.0)
    records = choose_concepts(probs, positives, check, vocab, cfg, eligible)
    assert records[0]["alt_text"] and records[0]["check"]["precision"] == 1.0
    assert all(r["reason"] == "not_verified" for r in records[1:])


def test_calibrate_with_verified_labels_measures_concepts_on_verified_posts_only(tiny_run, tmp_path):
    dataset, vocab_path, run = tiny_run
    vocab = Vocabulary.load(vocab_path)
    index = SampleIndex.build(dataset)
    held = [i for i, h in enumerate(index.holdout(0.3, 0)) if h]
    verified_rows = [{"post_key": index.post_keys[i], "labels": [vocab.labels[c].label for c in
                                                                  vocab.labels_for(index.hashtags[i])[:1]]}
                     for i in held[: len(held) // 2]]
    path = _write(tmp_path / "v.jsonl", verified_rows)
    cfg = CalibrationConfig(target_precision=0.3, min_support=1, z=0.0, verified=str(path))
    result = calibrate_run(run, tmp_path / "bundle", cfg)
    counts = result["heldout"]
    assert counts["concepts_measured_on"] == "verified labels"
    assert 0 < counts["concept_posts"] <= len(verified_rows) < counts["used"]
    named = {r["labels"][0] for r in verified_rows if r["labels"]}
    for c in result["concepts"]:
        if c["label"] not in named:
            assert not c["alt_text"] and c["reason"] == "not_verified"
        assert c["fit_positives"] + c["check_positives"] <= counts["concept_posts"]


def test_verified_file_with_no_heldout_post_is_refused(tiny_run, tmp_path):
    _, vocab_path, run = tiny_run
    label = Vocabulary.load(vocab_path).labels[0].label
    path = _write(tmp_path / "v.jsonl", [{"post_key": "elsewhere/1", "labels": [label]}])
    with pytest.raises(ReasonError) as err:
        calibrate_run(run, tmp_path / "b", CalibrationConfig(verified=str(path)))
    assert err.value.reason == "no_verified_heldout"


def test_verified_posts_without_a_vocabulary_hashtag_count_for_concepts_not_for_the_calibrator(tiny_run, tmp_path):
    dataset, vocab_path, run = tiny_run
    vocab = Vocabulary.load(vocab_path)
    other, _ = calibration_dataset(dataset, tmp_path, untagged=12)
    index = SampleIndex.build(other)
    unlabelled = [i for i in range(len(index)) if not vocab.labels_for(index.hashtags[i])]
    assert len(unlabelled) >= 12
    rows = [{"post_key": key, "labels": [vocab.labels[0].label]} for key in index.post_keys]
    common = {"target_precision": 0.3, "min_support": 1, "z": 0.0, "heldout_dataset": str(other)}
    cfg = CalibrationConfig(**common, verified=str(_write(tmp_path / "v.jsonl", rows)))
    counts = calibrate_run(run, tmp_path / "bundle", cfg)["heldout"]
    plain = calibrate_run(run, tmp_path / "plain", CalibrationConfig(**common))["heldout"]
    assert counts["concept_posts"] == len(index) == counts["used"] + counts["no_vocab_label"]
    assert counts["no_vocab_label"] == len(unlabelled)
    assert (counts["used"], counts["fit"], counts["check"]) == (plain["used"], plain["fit"], plain["check"])
    assert counts["concept_fit"] + counts["concept_check"] == len(index) > counts["fit"] + counts["check"]
