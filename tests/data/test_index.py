import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tagsight.data.index import _SCHEMA, INDEX_FILE, SampleIndex
from tagsight.fsio import ReasonError

def tar_members(dataset: Path) -> dict[str, bytes]:
    out = {}
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            out.update({m.name: tar.extractfile(m).read() for m in tar.getmembers()})
    return out


def test_offsets_read_back_the_exact_member_bytes(tiny_dataset):
    dataset = tiny_dataset()
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


def test_cache_is_used_for_the_same_version_and_rebuilt_when_it_changes(tiny_dataset):
    dataset = tiny_dataset()
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


def test_missing_shard_has_a_reason(tiny_dataset):
    dataset = tiny_dataset()
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


def test_unit_hash_is_the_one_held_out_hash():
    import hashlib

    from tagsight.data.index import unit_hash

    def expected(message: str) -> float:
        return int.from_bytes(hashlib.blake2b(message.encode(), digest_size=8).digest(), "big") / 2.0 ** 64

    assert unit_hash("src/p1", 7) == expected("7\x00src/p1")                             # hold-out, relevance folds
    assert unit_hash("src/p1", 7, "calibration") == expected("calibration\x007\x00src/p1")  # calibration's check half
    values = [unit_hash(f"src/p{i}", 0) for i in range(2000)]
    assert 0.0 <= min(values) and max(values) < 1.0 and abs(sum(values) / len(values) - 0.5) < 0.03
