import json

import duckdb
import pytest

from tagsight.data.derive import Drop, Keep, derive_dataset
from tagsight.data.index import SampleIndex
from tagsight.schema.catalog import load_manifest, read_table


def test_derived_version_keeps_edits_drops_and_names_its_parent(tiny_dataset, tmp_path):
    parent = tiny_dataset(posts=6)
    parent_index = SampleIndex.build(parent)
    before = (parent / "manifest.json").read_bytes()

    def edit(i, meta):
        if meta["post_id"] == "p1":
            return Drop("curate_blur", "laplacian variance 3.1")
        if meta["post_id"] == "p2":
            return Keep({**meta, "hashtags": ["tree", "extra"]})
        return Keep()

    out = tmp_path / "child"
    summary = derive_dataset(parent, out, edit, kind="curate", settings={"threshold": 1})
    assert (parent / "manifest.json").read_bytes() == before  # the parent is never edited
    assert summary.samples_in == len(parent_index) == 9
    assert summary.samples_kept + sum(summary.dropped.values()) == summary.samples_in
    assert summary.dropped == {"curate_blur": 2} and summary.posts_kept == 5

    manifest = load_manifest(out)
    assert manifest["parent"]["version"] == parent_index.version and manifest["derivation"]["kind"] == "curate"
    assert manifest["version"] != parent_index.version
    # the ingest settings carry over: decontamination hashes against this version with the parent's image settings
    assert manifest["config"] == load_manifest(parent)["config"] and manifest["config"]["image"]
    child = SampleIndex.build(out)
    assert {k.split("/")[1] for k in child.post_keys} == {"p0", "p2", "p3", "p4", "p5"}
    p2 = [k.endswith("/p2") for k in child.post_keys].index(True)
    assert child.hashtags[p2] == ["tree", "extra"]
    same = parent_index.keys.index(child.keys[0])
    assert child.read_jpeg(0) == parent_index.read_jpeg(same)  # image bytes copied unchanged

    decisions = read_table(out, "decisions").to_pylist()
    assert [(d["post_id"], d["reason"], d["stage"]) for d in decisions] == [("p1", "curate_blur", "curate")] * 2
    posts = {r["post_id"]: r for r in read_table(out, "posts").to_pylist()}
    assert set(posts) == {"p0", "p2", "p3", "p4", "p5"} and posts["p2"]["hashtags"] == ["tree", "extra"]
    media_shards = duckdb.sql(f"select distinct shard from '{out}/catalog/media.parquet'").fetchall()
    assert {s for (s,) in media_shards} == set(child.shard_names)


def test_same_edit_gives_the_same_version_and_a_parent_is_never_overwritten(tiny_dataset, tmp_path):
    parent = tiny_dataset(posts=4)
    keep_all = lambda i, meta: Keep()  # noqa: E731
    a = derive_dataset(parent, tmp_path / "a", keep_all, kind="copy")
    b = derive_dataset(parent, tmp_path / "b", keep_all, kind="copy")
    assert a.version == b.version
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["counts"]["samples_kept"] == 6
    with pytest.raises(ValueError, match="new folder"):
        derive_dataset(parent, parent, keep_all, kind="copy")
