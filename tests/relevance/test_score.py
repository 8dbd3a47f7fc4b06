import json

import numpy as np
import pytest

from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError
from tagsight.relevance.score import (
    ScoreConfig,
    cross_fit,
    load_labels,
    load_pairs,
    load_scores_meta,
    multi_hot,
    post_folds,
    save_scores,
    score_dataset,
)

FAST = dict(folds=3, epochs=40, lr=0.05)


@pytest.fixture(scope="module")
def scored(colour_dataset, colour_features):
    feats = colour_features
    scores = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"], ScoreConfig(**FAST), features=feats)
    return scores, feats


def test_post_folds_keep_a_post_together_and_are_seeded():
    keys = ["s/a", "s/b", "s/a", "s/c", "s/b"] + [f"s/{i}" for i in range(200)]
    folds = post_folds(keys, 5, seed=0)
    assert folds[0] == folds[2] and folds[1] == folds[4]
    assert set(folds.tolist()) == set(range(5))
    assert np.array_equal(folds, post_folds(keys, 5, seed=0))
    assert not np.array_equal(folds, post_folds(keys, 5, seed=1))


def test_config_rejects_bad_values():
    for bad in (dict(folds=1), dict(loss="hinge"), dict(epochs=0), dict(lr=0), dict(img_size=4)):
        with pytest.raises(ValueError):
            ScoreConfig(**bad)


def test_a_fold_is_scored_by_a_model_that_never_saw_its_labels(scored):
    scores, feats = scored
    cfg = scores.config
    fold0 = scores.folds == 0
    changed = [[] if f else labels for labels, f in zip(scores.label_lists, fold0)]  # erase fold 0's labels
    other = cross_fit(feats, changed, len(scores.vocab), scores.folds, cfg)
    assert np.array_equal(other[fold0], scores.probs[fold0])
    assert not np.array_equal(other[~fold0], scores.probs[~fold0])


def test_scores_are_deterministic(scored, colour_dataset):
    scores, feats = scored
    again = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"], ScoreConfig(**FAST), features=feats)
    assert np.array_equal(again.probs, scores.probs)


def test_true_pairs_outscore_wrong_ones_and_classes_are_more_visual_than_noise(scored, colour_dataset, tmp_path):
    scores, _ = scored
    out = save_scores(scores, tmp_path / "s", dataset_dir=colour_dataset["dataset"],
                      vocab_path=colour_dataset["vocab_path"])
    pairs = load_pairs(out).to_pydict()
    truth = {json.loads(l)["post_id"]: {t["tag"]: t["kind"] for t in json.loads(l)["tags"]}
             for l in colour_dataset["truth"].read_text().splitlines()}
    kinds = np.array([truth[p.split("/")[1]][tags[0]] for p, tags in zip(pairs["post_key"], pairs["hashtags"])])
    s = np.array(pairs["score"])
    assert np.median(s[kinds == "true_concept"]) > 0.7 > 0.3 > np.median(s[kinds == "wrong_concept"])
    visual = {r["label"]: r["visualness"] for r in load_labels(out)}
    assert min(visual[l] for l in ("dog.n.01", "car.n.01", "tree.n.01")) > visual["ball.n.01"] + 0.2


def test_saved_folder_names_what_it_scored(scored, colour_dataset, tmp_path):
    scores, _ = scored
    out = save_scores(scores, tmp_path / "s", dataset_dir=colour_dataset["dataset"],
                      vocab_path=colour_dataset["vocab_path"])
    meta = load_scores_meta(out)
    assert meta["dataset"]["version"] == SampleIndex.build(colour_dataset["dataset"]).version
    assert meta["vocab"]["version"] == colour_dataset["vocab"].version
    assert meta["config"]["folds"] == 3 and sum(meta["fold_sizes"]) == len(scores.index)
    table = load_pairs(out)
    assert table.num_rows == meta["pairs"] == sum(len(l) for l in scores.label_lists)
    support = multi_hot(scores.label_lists, len(scores.vocab)).sum(0)
    assert [r["support"] for r in load_labels(out)] == support.astype(int).tolist()
    ranks = table.column("rank").to_pylist()
    assert min(ranks) == 1 and max(ranks) <= len(scores.vocab)


def test_features_from_a_backbone(colour_dataset):
    cfg = ScoreConfig(backbone="timm:resnet18", img_size=32, folds=2, epochs=2)
    scores = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"], cfg)
    assert scores.probs.shape == (len(scores.index), len(colour_dataset["vocab"]))
    assert scores.info["backbone"]["model"] == "resnet18"
    assert np.isfinite(scores.probs).all() and (scores.probs >= 0).all() and (scores.probs <= 1).all()


def test_softmax_head_gives_distributions(scored, colour_dataset):
    _, feats = scored
    cfg = ScoreConfig(**{**FAST, "loss": "softmax"})
    scores = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"], cfg, features=feats)
    assert np.allclose(scores.probs.sum(1), 1.0, atol=1e-5)


def test_errors(colour_dataset, tmp_path):
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import build_vocab

    other = build_vocab([("x/1", ["violin"])], VocabConfig(min_count=1))
    with pytest.raises(ReasonError) as err:
        score_dataset(colour_dataset["dataset"], other, ScoreConfig(**FAST), features=np.zeros((61, 3)))
    assert err.value.reason == "no_labelled_samples"
    with pytest.raises(ReasonError) as err:
        load_scores_meta(tmp_path)
    assert err.value.reason == "not_a_scores_folder"
    with pytest.raises(ReasonError) as err:
        cross_fit(np.zeros((2, 3)), [[0], [0]], 1, np.array([0, 0]), ScoreConfig(folds=2))
    assert err.value.reason == "fold_empty"
