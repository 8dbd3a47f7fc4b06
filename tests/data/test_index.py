import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tagsight.data.index import _SCHEMA, INDEX_FILE, SampleIndex
from tagsight.fsio import ReasonError
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source

WORDS = ["dog", "car", "tree", "ball"]


def make_dataset(tmp_path: Path, picture, posts: int = 7) -> Path:
    """A tiny ingested dataset; post p has 1 + p % 2 images and hashtag WORDS[p % 4]."""
    media, lines, n = tmp_path / "src" / "media", [], 0
    media.mkdir(parents=True)
    for p in range(posts):
        files = []
        for _ in range(1 + p % 2):
            picture(100 + n, (40, 36)).save(media / f"{n}.jpg", quality=90)
            files.append(f"media/{n}.jpg")
            n += 1
        lines.append(json.dumps({"post_id": f"p{p}", "author_id": "ann", "created_at": "2024-01-01T00:00:00Z",
                                 "visibility": "public", "media": files, "hashtags": [WORDS[p % 4]]}))
    (tmp_path / "src" / "posts.jsonl").write_text("\n".join(lines) + "\n")
    cfg = IngestConfig(workers=1, samples_per_shard=5, near_duplicate_radius=None, image=ImageConfig(max_side=32))
    ingest(open_source(tmp_path / "src" / "posts.jsonl", "jsonl"), tmp_path / "ds", cfg=cfg)
    return tmp_path / "ds"


def tar_members(dataset: Path) -> dict[str, bytes]:
    out = {}
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            out.update({m.name: tar.extractfile(m).read() for m in tar.getmembers()})
    return out


def test_offsets_read_back_the_exact_member_bytes(tmp_path, make_picture):
    dataset = make_dataset(tmp_path, make_picture)
    index = SampleIndex.build(dataset)
    members = tar_members(dataset)
    assert len(index) == 10 and len(index.shard_names) == 2
    for i, key in enumerate(index.keys):
        assert index.read_jpeg(i) == members[f"{key}.jpg"]
        meta = index.read_meta(i)
        assert json.loads(members[f"{key}.json"]) == meta
        assert index.post_keys[i] == f"{meta['source']}/{meta['post_id']}"
        assert index.hashtags[i] == meta["hashtags"]
    index.close()


def test_cache_is_used_for_the_same_version_and_rebuilt_when_it_changes(tmp_path, make_picture):
    dataset = make_dataset(tmp_path, make_picture)
    first = SampleIndex.build(dataset)
    assert (dataset / INDEX_FILE).is_file()
    # Tamper with the cache: a build for the same manifest version must trust it.
    table = pa.Table.from_pylist([{"shard": "shard-00000.tar", "key": "k", "jpg_offset": 0, "jpg_size": 1, "json_offset": 0,
                                       "json_size": 1, "post_key": "x/y", "hashtags": []}], schema=_SCHEMA)
    from tagsight.data.index import _write_cache
    _write_cache(dataset / INDEX_FILE, table, first.version)
    assert SampleIndex.build(dataset).keys == ["k"]
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["version"] = "another"
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    rebuilt = SampleIndex.build(dataset)
    assert rebuilt.version == "another" and rebuilt.keys == first.keys
    assert SampleIndex.build(dataset, rebuild=True).keys == first.keys


def test_missing_shard_has_a_reason(tmp_path, make_picture):
    dataset = make_dataset(tmp_path, make_picture)
    (dataset / "shards" / "shard-00001.tar").unlink()
    with pytest.raises(ReasonError) as err:
        SampleIndex.build(dataset)
    assert err.value.reason == "shard_missing"


def synthetic_index(post_keys: list[str]) -> SampleIndex:
    n = len(post_keys)
    zeros = np.zeros(n, dtype=np.int64)
    return SampleIndex(Path("."), "v", ["s.tar"], np.zeros(n, dtype=np.int32), [str(i) for i in range(n)],
                       zeros, zeros, zeros, zeros, post_keys, [[] for _ in range(n)])


def test_holdout_is_by_post_deterministic_and_seeded():
    keys = [f"src/p{i // 3}" for i in range(600)]  # 200 posts of 3 media each
    index = synthetic_index(keys)
    mask = index.holdout(0.25, seed=1)
    assert np.array_equal(mask, index.holdout(0.25, seed=1))
    per_post = mask.reshape(200, 3)
    assert (per_post.all(axis=1) == per_post.any(axis=1)).all()  # all media of a post on one side
    assert 30 <= per_post[:, 0].sum() <= 70
    assert not np.array_equal(mask, index.holdout(0.25, seed=2))
    assert not index.holdout(0.0, seed=1).any()
    with pytest.raises(ValueError, match="holdout fraction"):
        index.holdout(1.0, seed=1)


def test_unreadable_sample_metadata_has_a_reason(tmp_path):
    import io
    dataset = tmp_path / "ds"
    (dataset / "shards").mkdir(parents=True)
    with tarfile.open(dataset / "shards" / "shard-00000.tar", "w") as tar:
        for name, data in [("k.jpg", b"jpeg"), ("k.json", b"{not json")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (dataset / "manifest.json").write_text(json.dumps({"version": "v1", "shards": [{"name": "shard-00000.tar"}]}))
    with pytest.raises(ReasonError) as err:
        SampleIndex.build(dataset)
    assert err.value.reason == "sample_meta_invalid"
