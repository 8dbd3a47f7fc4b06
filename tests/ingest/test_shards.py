import json
import tarfile

import pytest

from tagsight.ingest.shards import ShardWriter, atomic_write_bytes, sample_key


def write(tmp_path, n, per_shard):
    w = ShardWriter(tmp_path / "shards", per_shard)
    names = [w.write(sample_key("src", f"p{i}", 0), b"jpegbytes%d" % i, {"post_id": f"p{i}"}) for i in range(n)]
    return w.close(), names


def test_shards_split_by_size_and_hold_jpg_json_pairs(tmp_path):
    shards, names = write(tmp_path, 5, 2)
    assert [s.samples for s in shards] == [2, 2, 1]
    assert names == ["shard-00000.tar"] * 2 + ["shard-00001.tar"] * 2 + ["shard-00002.tar"]
    with tarfile.open(tmp_path / "shards" / "shard-00001.tar") as tar:
        members = tar.getnames()
        assert len(members) == 4 and members[0].endswith(".jpg") and members[1].endswith(".json")
        assert members[0].split(".")[0] == members[1].split(".")[0]
        assert json.loads(tar.extractfile(members[1]).read()) == {"post_id": "p2"}
    assert not list((tmp_path / "shards").glob(".*tmp"))


def test_identical_samples_give_byte_identical_shards(tmp_path):
    a, _ = write(tmp_path / "a", 3, 10)
    b, _ = write(tmp_path / "b", 3, 10)
    assert [s.sha256 for s in a] == [s.sha256 for s in b]


def test_sample_keys_are_stable_and_have_no_dots():
    k = sample_key("my.source", "post.with.dots/and slashes", 2)
    assert k == sample_key("my.source", "post.with.dots/and slashes", 2)
    assert "." not in k and "/" not in k and k != sample_key("my.source", "post.with.dots/and slashes", 3)


def test_webdataset_reads_the_shards(tmp_path):
    wds = pytest.importorskip("webdataset")
    write(tmp_path, 3, 10)
    samples = list(wds.WebDataset(str(tmp_path / "shards" / "shard-00000.tar"), shardshuffle=False))
    assert [json.loads(s["json"])["post_id"] for s in samples] == ["p0", "p1", "p2"]
    assert samples[0]["jpg"] == b"jpegbytes0"


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "x" / "m.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in target.parent.iterdir()] == ["m.json"]
