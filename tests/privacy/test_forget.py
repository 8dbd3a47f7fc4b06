"""tagsight forget: after any forget request, no artifact tagsight made carries a forgotten post (property test)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tagsight.data.index import SampleIndex
from tagsight.eval.backbones import load_backbone
from tagsight.eval.datasets import ShardImages
from tagsight.eval.features import extract_features
from tagsight.fsio import ReasonError
from tagsight.schema import catalog
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.lineage import read_artifact
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.ingest.forget import ERASED_REASON, _forget_decisions
from tagsight.privacy.forget import (FORGETTERS, FORGOTTEN_REASON, Forgotten, forget, join_post_keys,
                                     post_key_table_forgetter, register_forgetter, requests_from, row_post_keys)
from tagsight.privacy.tombstones import Tombstone, Tombstones, TombstoneWatcher, tag_key
from tagsight.privacy.trace import artifacts_with_post

AUTHORS = ("ann", "bob", "cy", "dee")
TAGS = ("sea", "dog", "cat", "sky", "Sun_Set")
CURATED = "curated.parquet"

if "curated-set" not in FORGETTERS:  # a curated set as the apps will store one: Parquet rows with a post_key
    register_forgetter("curated-set", *post_key_table_forgetter(CURATED))

_BACKBONE = None


def backbone():
    global _BACKBONE
    if _BACKBONE is None:
        _BACKBONE = load_backbone("test_resnet", 32)
    return _BACKBONE


# ------------------------------------------------------------------------------------------- fixtures


def picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth picture per seed (equal seeds give exact duplicates, which ingest de-duplicates)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def write_folder_source(root: Path, posts: list[dict]) -> Path:
    """root/<class>/<post>.jpg + .json sidecars (author, hashtags, visibility): one image per post."""
    for i, p in enumerate(posts):
        folder = root / p["label"]
        folder.mkdir(parents=True, exist_ok=True)
        picture(p["image"], (p["size"], p["size"])).save(folder / f"{p['id']}.jpg", "JPEG", quality=90)
        side = {"author_id": p["author"], "hashtags": p["tags"], "visibility": p["visibility"],
                "created_at": f"2024-01-{1 + i % 28:02d}T00:00:00Z"}
        (folder / f"{p['id']}.json").write_text(json.dumps(side))
    return root


def build_world(tmp: Path, posts: list[dict]) -> dict:
    """A root with a dataset, a cached-feature file, a run trained on it and a curated set."""
    root = tmp / "root"
    ds = root / "ds"
    src = write_folder_source(tmp / "src", posts)
    ingest(open_source(src, "folder", name="t"), ds, cfg=IngestConfig(workers=1, samples_per_shard=3))
    version = catalog.manifest_version(ds)
    run = root / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {"path": str(ds), "manifest_version": version},
                                              "vocab": None, "backbone": "test_resnet"}))
    cache = root / "features"
    kept = catalog.read_table(ds, "posts", ["source", "post_id", "label"]).to_pylist()
    if kept:
        extract_features(backbone(), ShardImages(ds), batch_size=8, cache_dir=cache)
    keys = [f"{p['source']}/{p['post_id']}" for p in kept]
    pq.write_table(pa.table({"post_key": keys, "score": [float(i) for i in range(len(keys))]}), root / CURATED)
    return {"root": root, "ds": ds, "run": run, "cache": cache, "kept": kept}


def expected_forgotten(ds: Path, requests: list[Tombstone]) -> set[str]:
    """Computed independently of forget: kept posts matched by author, post key or id, or folded hashtag."""
    out = set()
    for p in catalog.read_table(ds, "posts").to_pylist():
        key = f"{p['source']}/{p['post_id']}"
        for r in requests:
            if ((r.kind == "author" and p["author_id"] == r.value) or (r.kind == "post" and r.value in (key, p["post_id"]))
                    or (r.kind == "hashtag" and tag_key(r.value.lstrip("#")) in {tag_key(t) for t in p["hashtags"]})):
                out.add(key)
    return out


def shard_post_keys(ds: Path) -> list[str]:
    """The post key of every sample in every file of shards/ (the raw bytes on disk, not the manifest's view)."""
    keys = []
    for path in sorted((ds / "shards").iterdir()):
        with tarfile.open(path) as tar:
            for info in tar:
                if info.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(info).read())
                    keys.append(f"{meta['source']}/{meta['post_id']}")
    return keys


# ------------------------------------------------------------------------------------------- the property


post_strategy = st.fixed_dictionaries({
    "author": st.sampled_from(AUTHORS), "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True),
    "visibility": st.sampled_from(("public", "public", "public", "private")),
    "image": st.integers(0, 7), "size": st.sampled_from((16, 24, 32)), "label": st.sampled_from(("cat", "dog")),
})


@st.composite
def worlds(draw):
    posts = draw(st.lists(post_strategy, min_size=2, max_size=9))
    for i, p in enumerate(posts):
        p["id"] = f"p{i}"
    kinds = st.one_of(st.builds(lambda a: Tombstone("author", a), st.sampled_from(AUTHORS)),
                      st.builds(lambda i: Tombstone("post", f"{'t/' if i % 2 else ''}{'cat' if i % 3 else 'dog'}/p{i}"),
                                st.integers(0, 9)),
                      st.builds(lambda t: Tombstone("hashtag", t), st.sampled_from((*TAGS, "#SunSet", "#sun_set"))))
    return posts, draw(st.lists(kinds, min_size=1, max_size=3)), draw(st.booleans())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_nothing_carries_a_forgotten_post_after_forget(tmp_path_factory, world):
    posts, requests, rewrite = world
    w = build_world(tmp_path_factory.mktemp("w"), posts)
    ds, root = w["ds"], w["root"]
    gone = expected_forgotten(ds, requests)
    watcher = TombstoneWatcher(ds)        # a server started before the request
    feature_files = sorted(w["cache"].glob("*.safetensors"))

    report = forget(requests, [root], rewrite=rewrite)

    # the loader (unrewritten or rewritten) never yields a forgotten sample
    index = SampleIndex.build(ds)
    assert not set(index.post_keys) & gone
    assert len(index) + (0 if rewrite else index.forgotten) == sum(1 for _ in shard_post_keys(ds))
    # a running server's watcher sees the tombstones without a restart
    live = watcher.current()
    meta = {k: (a, h) for k, a, h in zip(index.post_keys, index.author_ids, index.hashtags)}
    assert all(not live.forgets(k, *meta[k]) for k in index.post_keys)
    if rewrite:   # the bytes on disk and the catalog hold none of them
        assert not set(shard_post_keys(ds)) & gone
        for table in ("posts", "hashtags", "media", "duplicates"):
            rows = catalog.read_table(ds, table).to_pylist()
            assert not {f"{r['source']}/{r['post_id']}" for r in rows} & gone, table
        decisions = {f"{d['source']}/{d['post_id']}": d for d in catalog.read_table(ds, "decisions").to_pylist()}
        assert all(decisions[k]["reason"] == "forgotten" for k in gone)
        counts = catalog.load_manifest(ds)["counts"]
        assert counts["posts_in"] == counts["posts_kept"] + counts["posts_rejected"] == len(posts)
        assert {s["name"] for s in catalog.load_manifest(ds)["shards"]} == {p.name for p in (ds / "shards").iterdir()}
    # cached features: every file holding a forgotten post is gone; a new extraction would not see them
    for f in feature_files:
        held = read_artifact(f).post_keys if f.exists() else None
        assert held is None or not held & gone
        assert f.exists() == (not gone)   # the file held every kept post
    if len(index):
        assert not set(ShardImages(ds).lineage()["post_keys"]) & gone
    # curated set rows and the run notice
    assert not set(pq.read_table(root / CURATED).column("post_key").to_pylist()) & gone
    assert (w["run"] / "forget_notice.json").is_file() == bool(gone)
    assert report.retrain == ([str(w["run"])] if gone else [])
    # lineage --post: only the run (trained on the old version) and, unrewritten, the dataset hold it
    for key in gone:
        holders = {(a.kind, how) for a, how in artifacts_with_post(key, [root])}
        assert ("features", "contains") not in holders
        assert ("run", "trained on / made from") in holders
        assert (("dataset", "contains") in holders) == (not rewrite)
    # idempotent: nothing new the second time
    again = forget(requests, [root], rewrite=rewrite)
    assert again.tombstones_added == 0 and again.changed == []


# ------------------------------------------------------------------------------------------- specific cases


def simple_posts(n: int = 6) -> list[dict]:
    return [{"id": f"p{i}", "author": AUTHORS[i % 3], "tags": [TAGS[i % 4]], "visibility": "public", "image": i,
             "size": 24, "label": ("cat", "dog")[i % 2]} for i in range(n)]


def test_a_run_started_after_forget_never_sees_the_post_before_any_rewrite(tmp_path):
    from tagsight.data.pipeline import HashtagStream, StreamConfig
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import build_vocab

    w = build_world(tmp_path, simple_posts(9))
    ds = w["ds"]
    shards_before = sorted((p.name, p.stat().st_size) for p in (ds / "shards").iterdir())
    forget(requests_from(authors=["bob"]), [w["root"]])
    assert sorted((p.name, p.stat().st_size) for p in (ds / "shards").iterdir()) == shards_before  # no rewrite
    index = SampleIndex.build(ds)
    assert index.forgotten == 3 and "bob" not in set(index.author_ids)
    vocab = build_vocab(catalog.iter_kept_hashtags(ds), VocabConfig(min_count=1))
    stream = HashtagStream(index, vocab, lambda img, g: __import__("torch").zeros(3), StreamConfig(64, 4, holdout_fraction=0.0))
    drawn = {index.post_keys[int(i)] for e in range(3) for i in stream.order(e)}
    bob = {f"t/{p['label']}/{p['id']}" for p in simple_posts(9) if p["author"] == "bob"}
    assert drawn and not drawn & bob


def test_reingest_into_a_folder_with_tombstones_does_not_bring_a_post_back(tmp_path):
    w = build_world(tmp_path, simple_posts())
    forget(requests_from(authors=["ann"]), [w["root"]], rewrite=True)
    ingest(open_source(tmp_path / "src", "folder", name="t"), w["ds"], cfg=IngestConfig(workers=1))
    authors = set(catalog.read_table(w["ds"], "posts", ["author_id"]).column("author_id").to_pylist())
    assert "ann" not in authors and authors == {"bob", "cy"}
    reasons = catalog.read_table(w["ds"], "decisions", ["reason"]).column("reason").to_pylist()
    assert reasons.count("forgotten") == 2


def test_rewrite_keeps_untouched_shards_and_names_its_parent(tmp_path):
    w = build_world(tmp_path, simple_posts(9))
    ds = w["ds"]
    before = catalog.load_manifest(ds)
    forget([Tombstone("post", "t/cat/p0")], [w["root"]], rewrite=True)
    after = catalog.load_manifest(ds)
    assert after["parent"]["version"] == before["version"] and after["version"] != before["version"]
    assert after["parent"] == {**after["parent"], "forgotten_posts": 1, "forgotten_samples": 1}
    assert [h["version"] for h in after["history"]] == [before["version"]]
    kept = {s["name"] for s in before["shards"]} & {s["name"] for s in after["shards"]}
    assert len(kept) == len(before["shards"]) - 1      # only the shard with p0 was rewritten
    assert not (ds / "index.parquet").exists() or SampleIndex.build(ds).version == after["version"]


def test_optout_file_and_bad_requests(tmp_path):
    f = tmp_path / "optout.txt"
    f.write_text("# people who left\nann\nauthor:bob  # by mail\npost:t/cat/p2\nhashtag:sea\n")
    got = requests_from(optout_files=[f])
    assert [(t.kind, t.value) for t in got] == [("author", "ann"), ("author", "bob"), ("post", "t/cat/p2"),
                                                 ("hashtag", "sea")]
    with pytest.raises(ReasonError) as err:
        requests_from()
    assert err.value.reason == "no_forget_request"
    with pytest.raises(ReasonError) as err:
        requests_from(optout_files=[tmp_path / "missing.txt"])
    assert err.value.reason == "optout_file_missing"
    with pytest.raises(ReasonError) as err:
        forget(got, [tmp_path])
    assert err.value.reason == "no_dataset"


def test_forgotten_matches_like_tombstones_and_resolved_keys():
    f = Forgotten(Tombstones.of([Tombstone("hashtag", "#No_AI")]), frozenset({"t/p1"}))
    assert f.forgets("t/p1") and f.forgets("t/p2", None, ["noai"]) and not f.forgets("t/p2", "x", ["sea"])
    assert not Forgotten(Tombstones())


def test_post_keys_join_source_and_post_id_and_are_none_where_either_is_null():
    table = pa.table({"source": ["m", None, "p"], "post_id": ["1", "2", None]})
    assert join_post_keys(table).to_pylist() == ["m/1", None, None]
    assert row_post_keys(table) == ["m/1", None, None]


def test_forgotten_decision_rows_become_the_record_and_other_rows_are_erased():
    rows = [("r1", "m", "1", "ann", "kept", "ingest", None, None),           # kept: the forgotten record
            ("r2", "m", "2", "ann", "rejected", "policy", "no_consent", ""),  # rejected at ingest: erased
            ("r3", "m", "3", "ann", None, None, None, None),                 # no status: erased, not recorded
            ("r4", "m", "4", "bob", "kept", "ingest", None, None)]           # not forgotten: unchanged
    names = catalog.SCHEMAS["decisions"].names
    decisions = pa.Table.from_pylist([dict(zip(names, r)) for r in rows], schema=catalog.SCHEMAS["decisions"])
    forgotten = Forgotten(Tombstones.of([Tombstone("author", "ann")]), rewrite=True)
    out = _forget_decisions(decisions, pa.array(["m/1"], pa.string()), "v1", forgotten).to_pylist()
    assert [(r["status"], r["reason"], r["post_id"]) for r in out] == [
        ("rejected", FORGOTTEN_REASON, "1"), ("rejected", ERASED_REASON, None), ("rejected", ERASED_REASON, None),
        ("kept", None, "4")]


def test_a_reader_of_the_old_version_gets_a_clear_error_not_wrong_bytes(tmp_path):
    w = build_world(tmp_path, simple_posts(9))
    old = SampleIndex.build(w["ds"])
    first = old.read_jpeg(0)                      # shard 0 is open: it keeps reading its old inode
    forget(requests_from(authors=["ann", "bob", "cy"]), [w["root"]], rewrite=True)
    assert old.read_jpeg(0) == first
    with pytest.raises(ReasonError) as err:
        old.read_jpeg(len(old) - 1)               # a shard not opened before the rewrite
    assert err.value.reason == "shard_missing" and "rewritten" in str(err.value)
    assert len(SampleIndex.build(w["ds"])) == 0


def test_a_run_trained_after_the_forget_is_not_asked_to_retrain(tmp_path):
    w = build_world(tmp_path, simple_posts())
    forget(requests_from(authors=["ann"]), [w["root"]])            # no rewrite: the loader filters
    later = w["root"] / "runs" / "r2"
    later.mkdir()
    (later / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {   # as pretrain records it now
        "path": str(w["ds"]), "manifest_version": catalog.manifest_version(w["ds"]), "tombstones_applied": 1}}))
    report = forget(requests_from(authors=["ann"]), [w["root"]])
    assert report.retrain == [str(w["run"])]                       # only the run trained before the request
    assert not (later / "forget_notice.json").exists()
    report = forget(requests_from(authors=["bob"]), [w["root"]])    # a new request reaches the later run too
    assert sorted(report.retrain) == sorted([str(w["run"]), str(later)])
