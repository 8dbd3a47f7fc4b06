import hashlib
from pathlib import Path

import numpy as np
import pytest

from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import HashtagStream, StreamConfig
from tagsight.data.transforms import eval_transform
from tagsight.fsio import ReasonError
from tagsight.schema import catalog
from tagsight.privacy.tombstones import Tombstone, add_tombstones, load_tombstones
from tagsight.relevance.filter import FilterConfig, decide, filter_dataset, post_label_scores
from tagsight.relevance.score import ScoreConfig, load_pairs, save_scores, score_dataset
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab


@pytest.fixture(scope="module")
def scores_dir(colour_dataset, colour_features, tmp_path_factory) -> Path:
    scores = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"],
                           ScoreConfig(folds=3, epochs=40, lr=0.05), features=colour_features)
    return save_scores(scores, tmp_path_factory.mktemp("scores"), dataset_dir=colour_dataset["dataset"],
                       vocab_path=colour_dataset["vocab_path"])


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "index.parquet":
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def reconciles(counts: dict) -> None:
    for unit in ("posts", "pairs", "hashtags"):
        assert counts[f"{unit}_in"] == counts[f"{unit}_kept"] + counts[f"{unit}_dropped"]
        assert counts[f"{unit}_dropped"] == sum(counts[f"{unit[:-1]}_reasons"].values())


def sample_tags(dataset: Path) -> dict[str, list[str]]:
    index = SampleIndex.build(dataset)
    return {index.post_keys[i]: index.hashtags[i] for i in range(len(index))}


def test_pairs_policy_writes_a_new_version_and_leaves_the_parent_alone(colour_dataset, scores_dir, tmp_path):
    parent = colour_dataset["dataset"]
    before = tree_digest(parent)
    manifest = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.3))
    assert tree_digest(parent) == before
    parent_version = catalog.load_manifest(parent)["version"]
    assert manifest["parent"] == {"path": str(parent.resolve()), "version": parent_version}
    assert manifest["version"] != parent_version
    assert manifest["relevance"]["filter"]["policy"] == "pairs"
    counts = manifest["counts"]
    reconciles(counts)
    assert counts["pairs_dropped"] == counts["pair_reasons"]["pair_below_threshold"] > 0
    pairs = load_pairs(scores_dir).to_pydict()
    low = {(p, t) for p, tags, s in zip(pairs["post_key"], pairs["hashtags"], pairs["score"]) if s < 0.3 for t in tags}
    new, old = sample_tags(tmp_path / "f"), sample_tags(parent)
    for post, tags in new.items():
        assert tags == [t for t in old[post] if (post, t) not in low]
    posts = catalog.read_table(tmp_path / "f", "posts", ["source", "post_id", "hashtags"]).to_pydict()
    assert {f"{s}/{p}": h for s, p, h in zip(posts["source"], posts["post_id"], posts["hashtags"])} == new
    assert len(SampleIndex.build(tmp_path / "f")) == counts["media_kept"]


def test_same_inputs_give_the_same_version(scores_dir, tmp_path):
    a = filter_dataset(scores_dir, tmp_path / "a", FilterConfig("pairs", 0.3))
    b = filter_dataset(scores_dir, tmp_path / "b", FilterConfig("pairs", 0.3))
    c = filter_dataset(scores_dir, tmp_path / "c", FilterConfig("pairs", 0.2))
    assert a["version"] == b["version"] != c["version"]


def test_posts_losing_every_label_are_dropped_with_a_reason_unless_kept(scores_dir, colour_dataset, tmp_path):
    with pytest.raises(ReasonError) as err:     # every post would go: an empty dataset is refused, with the counts
        filter_dataset(scores_dir, tmp_path / "none", FilterConfig("pairs", 0.999))
    assert err.value.reason == "empty_result" and "all_labels_dropped" in str(err.value)
    best = [max(score for score, _ in labels.values()) for labels in post_label_scores(load_pairs(scores_dir)).values()]
    manifest = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", float(np.median(best))))
    c = manifest["counts"]
    reconciles(c)
    assert c["post_reasons"]["all_labels_dropped"] == c["posts_dropped"] > 0
    decisions = catalog.read_table(tmp_path / "f", "decisions").to_pylist()
    dropped = [d for d in decisions if d["stage"] == "relevance"]
    assert len(dropped) == c["posts_dropped"] and all(d["reason"] == "all_labels_dropped" for d in dropped)
    kept = filter_dataset(scores_dir, tmp_path / "k", FilterConfig("pairs", 0.999, keep_empty=True))
    assert kept["counts"]["posts_dropped"] == 0
    assert kept["counts"]["posts_kept"] == c["posts_in"]


def test_labels_policy_drops_the_non_visual_label(scores_dir, colour_dataset, tmp_path):
    manifest = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("labels", 0.7))
    reconciles(manifest["counts"])
    tags = {t.lower() for ts in sample_tags(tmp_path / "f").values() for t in ts}
    assert "ball" not in tags and {"dog", "car", "tree"} <= tags
    vocab = build_vocab(catalog.iter_kept_hashtags(tmp_path / "f"), VocabConfig(min_count=1))
    assert sorted(l.label for l in vocab.labels) == ["car.n.01", "dog.n.01", "tree.n.01"]


def test_weights_policy_stores_weights_and_the_stream_uses_them(scores_dir, colour_dataset, tmp_path):
    manifest = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("weights", min_weight=0.05))
    assert manifest["counts"]["pairs_dropped"] == 0
    index = SampleIndex.build(tmp_path / "f")
    pairs = load_pairs(scores_dir).to_pydict()
    score: dict = {}
    for p, tags, s in zip(pairs["post_key"], pairs["hashtags"], pairs["score"]):
        for t in tags:  # a post's score for a label is the highest over its media
            score[(p, t)] = max(s, score.get((p, t), 0.0))
    for i in range(len(index)):
        meta = index.read_meta(i)
        assert len(meta["hashtag_weights"]) == len(meta["hashtags"]) and meta["hashtag_weights"] == index.hashtag_weights[i]
        for tag, w in zip(meta["hashtags"], meta["hashtag_weights"]):
            assert w == pytest.approx(max(score[(index.post_keys[i], tag)], 0.05), abs=1e-5)
    vocab = colour_dataset["vocab"]

    class Cfg:
        input_size, mean, std = 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    stream = HashtagStream(index, vocab, eval_transform(Cfg()), StreamConfig(8, 4, holdout_fraction=0.0))
    multi = next(i for i in range(len(index)) if len(stream.label_lists[i]) > 1)
    target = stream.item(multi, 0)["target"].numpy()
    w = np.array(stream.label_weights[multi])
    assert np.allclose(target[stream.label_lists[multi]], w / w.sum(), atol=1e-6)
    assert target.sum() == pytest.approx(1.0)
    unweighted = HashtagStream(SampleIndex.build(colour_dataset["dataset"]), vocab, eval_transform(Cfg()),
                               StreamConfig(8, 4, holdout_fraction=0.0))
    j = next(i for i in range(len(unweighted.index)) if len(unweighted.label_lists[i]) == 2)
    assert sorted(unweighted.item(j, 0)["target"][unweighted.label_lists[j]].tolist()) == [0.5, 0.5]


def test_forgotten_posts_stay_forgotten(colour_dataset, colour_features, tmp_path):
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(colour_dataset["dataset"], parent)
    scores = score_dataset(parent, colour_dataset["vocab"], ScoreConfig(folds=2, epochs=5), features=colour_features)
    scores_dir = save_scores(scores, tmp_path / "s", dataset_dir=parent, vocab_path=colour_dataset["vocab_path"])
    add_tombstones(parent, [Tombstone("post", "posts/p03"), Tombstone("author", "a1")])
    manifest = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.0))
    forgotten = manifest["counts"]["post_reasons"]["forgotten"]
    authors = catalog.read_table(parent, "posts", ["post_id", "author_id"]).to_pydict()
    assert forgotten == 1 + sum(a == "a1" and p != "p03" for p, a in zip(authors["post_id"], authors["author_id"]))
    kept = sample_tags(tmp_path / "f")
    assert "posts/p03" not in kept and len(load_tombstones(tmp_path / "f")) == 2
    reconciles(manifest["counts"])


def test_a_rerun_keeps_a_finished_version_unless_the_parent_forgot_someone_since(colour_dataset, colour_features,
                                                                               tmp_path):
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(colour_dataset["dataset"], parent)
    scores = score_dataset(parent, colour_dataset["vocab"], ScoreConfig(folds=2, epochs=5), features=colour_features)
    scores_dir = save_scores(scores, tmp_path / "s", dataset_dir=parent, vocab_path=colour_dataset["vocab_path"])
    first = filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.2))
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "f").rglob("*") if p.is_file()}
    assert filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.2)) == first
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "f").rglob("*") if p.is_file()} == written   # not rewritten
    with pytest.raises(ReasonError) as err:                                  # other settings: another version
        filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.3))
    assert err.value.reason == "out_exists"
    add_tombstones(parent, [Tombstone("post", "posts/p03")])
    with pytest.raises(ReasonError) as err:                                  # p03 may be in it: never reused
        filter_dataset(scores_dir, tmp_path / "f", FilterConfig("pairs", 0.2))
    assert err.value.reason == "out_exists"


def test_errors(colour_dataset, scores_dir, tmp_path):
    cases = [(dict(policy="drop"), "unknown_policy"), (dict(policy="pairs"), "missing_threshold"),
             (dict(policy="weights", threshold=0.1), "unused_threshold"),
             (dict(policy="pairs", threshold=2.0), "bad_threshold")]
    for kwargs, reason in cases:
        with pytest.raises(ReasonError) as err:
            FilterConfig(**kwargs)
        assert err.value.reason == reason
    with pytest.raises(ReasonError) as err:
        filter_dataset(scores_dir, colour_dataset["dataset"], FilterConfig("pairs", 0.1))
    assert err.value.reason == "out_is_parent"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ReasonError) as err:
        filter_dataset(scores_dir, tmp_path / "busy", FilterConfig("pairs", 0.1))
    assert err.value.reason == "out_exists"
    other = tmp_path / "other"
    filter_dataset(scores_dir, other, FilterConfig("pairs", 0.3))
    with pytest.raises(ReasonError) as err:
        filter_dataset(scores_dir, tmp_path / "g", FilterConfig("pairs", 0.1), dataset_dir=other)
    assert err.value.reason == "dataset_changed"


def test_decide_counts_every_hashtag():
    posts = {"s/1": ["Dog", "dog", "x"], "s/2": ["cat"], "s/3": ["y"]}
    scores = {"s/1": {0: (0.9, ["Dog", "dog"])}, "s/2": {1: (0.1, ["cat"])}}
    d = decide(posts, scores, {0: 0.8, 1: 0.2}, FilterConfig("pairs", 0.5), forgotten=set())
    assert d.hashtags == {"s/1": ["Dog", "dog", "x"], "s/3": ["y"]}
    assert d.dropped_posts == {"s/2": "all_labels_dropped"}
    assert d.counts["hashtags_unscored"] == 2 and d.counts["hashtags_in"] == 5
    reconciles(d.counts)
