"""Deletion that misses nothing: run the stages on a tiny feed, forget random posts, audit every artifact kind."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from tagsight import cli
from tagsight.data.index import SampleIndex
from tagsight.privacy.audit import audit
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.privacy.forget import forget, requests_from
from tests.feeds import feed_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A root with every artifact kind made from a 16-post feed: dataset, relevance scores and their feature
    cache, a relevance-filtered and a curated dataset, a similar-image index."""
    from tagsight.apps.embedder import Embedder
    from tagsight.apps.similar import build_index
    from tagsight.data.derive import Drop, Keep, derive_dataset
    from tagsight.models.backbone import create_backbone
    from tagsight.relevance.filter import FilterConfig, filter_dataset
    from tagsight.relevance.score import ScoreConfig, save_scores, score_dataset
    from tagsight.tags.vocab import Vocabulary

    root = tmp_path_factory.mktemp("world")
    ds, vocab = feed_dataset(root, n_posts=16, n_authors=4, image_size=32, seed=3)
    cfg = ScoreConfig(backbone="timm:test_vit", img_size=32, folds=2, epochs=2, batch_size=16)
    scores = score_dataset(ds, Vocabulary.load(vocab), cfg, cache_dir=root / "cache")
    save_scores(scores, root / "scores", dataset_dir=ds, vocab_path=vocab)
    filter_dataset(root / "scores", root / "filtered", FilterConfig("weights", keep_empty=True))
    derive_dataset(ds, root / "curated", lambda i, meta: Keep() if i % 3 else Drop("not_chosen"), kind="curate_filter")
    build_index(ds, Embedder(create_backbone("test_vit", img_size=32).eval()), root / "index")
    index = SampleIndex.build(ds)
    return {"root": root, "posts": sorted(set(index.post_keys)), "authors": sorted(set(index.author_ids))}


def test_the_relevance_feature_cache_records_what_it_holds(world):
    from tagsight.lineage import read_artifact

    caches = list((world["root"] / "cache").glob("*.safetensors"))
    assert len(caches) == 1
    held = read_artifact(caches[0])
    assert held.post_keys == frozenset(world["posts"]) and held.parents[0].kind == "dataset"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_after_forget_rewrite_no_trace_of_a_forgotten_post_is_left(world, data):
    posts = data.draw(st.lists(st.sampled_from(world["posts"]), min_size=0, max_size=3, unique=True), label="posts")
    authors = data.draw(st.lists(st.sampled_from(world["authors"]), max_size=1), label="authors")
    if not posts and not authors:
        posts = [world["posts"][0]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(world["root"], Path(tmp) / "root"))
        before = audit(root, _forgotten_for(root, posts, authors))
        assert not before.clean      # the stages made copies of these posts; the audit sees them
        assert {"content", "key", "embedding", "cached_feature"} <= {t.kind for t in before.traces}
        forget(requests_from(authors=authors, posts=posts), [root], rewrite=True)
        after = audit(root)
        assert after.forgotten_posts >= len(posts)
        assert after.clean, after.format()
        assert after.ledger["tombstone rows"] and after.ledger["forgotten decision rows"]


def _forgotten_for(root: Path, posts, authors):
    """What ``forget`` would resolve the requests to, without recording them (to audit the state before)."""
    from tagsight.privacy.forget import Forgotten, find_datasets, resolve_post_keys
    from tagsight.privacy.tombstones import Tombstones

    stones = Tombstones.of(requests_from(authors=authors, posts=posts))
    keys = set().union(*(resolve_post_keys(ds, stones) for ds in find_datasets([root])))
    return Forgotten(stones, frozenset(keys))


def test_without_rewrite_the_audit_reports_what_the_shards_still_hold(world, tmp_path, capsys):
    root = Path(shutil.copytree(world["root"], tmp_path / "root"))
    victim = world["authors"][0]
    assert cli.main(["forget", "--author", victim, "--root", str(root), "--cache-dir", str(tmp_path / "none")]) == 0
    capsys.readouterr()
    assert cli.main(["forget", "--audit", str(root), "--cache-dir", str(tmp_path / "none")]) == 1
    out = capsys.readouterr().out
    assert "content" in out and "forget --rewrite" in out and "still hold a trace" in out
    assert "cached_feature" not in out and "embedding" not in out   # caches and index were purged at once
    assert cli.main(["forget", "--author", victim, "--root", str(root), "--rewrite",
                     "--cache-dir", str(tmp_path / "none")]) == 0
    capsys.readouterr()
    assert cli.main(["forget", "--audit", str(root), "--cache-dir", str(tmp_path / "none")]) == 0
    assert "clean: no trace" in capsys.readouterr().out


def test_the_audit_flags_a_cache_that_records_nothing_and_a_key_in_a_text_file(world, tmp_path, capsys):
    root = Path(shutil.copytree(world["root"], tmp_path / "root"))
    victim = world["posts"][1]
    forget(requests_from(posts=[victim]), [root], rewrite=True)
    save_file({"features": torch.zeros(2, 3)}, str(root / "cache" / "anonymous.safetensors"))
    (root / "answers.jsonl").write_text(json.dumps({"post_key": victim, "hashtags": ["x"]}) + "\n")
    report = audit(root)
    kinds = {(t.kind, Path(t.path).name) for t in report.traces}
    assert kinds == {("unrecorded", "anonymous.safetensors"), ("key", "answers.jsonl")}
    assert cli.main(["forget", "--audit", str(root), "--post", "x"]) == 2
    assert "audit_only" in capsys.readouterr().err
    assert cli.main(["forget", "--audit", str(tmp_path / "empty")]) == 2
