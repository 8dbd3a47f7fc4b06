import hashlib
import io
import json
import tarfile

import pytest

from tagsight.ingest.shards import ShardWriter, atomic_write_bytes, encode_meta, sample_key


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


def tarfile_shard(samples: list[tuple[str, bytes, dict]]) -> bytes:
    """The shard as the standard library's tarfile writes it (the format ShardWriter promises)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, jpeg, meta in samples:
            for name, data in ((f"{key}.jpg", jpeg), (f"{key}.json", encode_meta(meta))):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = \
                    len(data), 0, 0o644, 0, 0, "", ""
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("keys", [
    [sample_key("src", f"p{i}", 0) for i in range(7)],          # the keys ingest writes
    ["k" * 94, "k" * 95, "dir/" + "n" * 92, "café-é", "x"],   # at and over the 100-byte name field, non-ASCII
])
def test_shards_are_the_bytes_tarfile_writes(tmp_path, keys):
    samples = [(k, bytes(range(256)) * (i * 3 + 1) + b"end"[:i % 4], {"post_id": f"p{i}", "n": i, "w": "é"})
               for i, k in enumerate(keys)]
    samples.append(("empty", b"", {}))
    w = ShardWriter(tmp_path, samples_per_shard=100)
    for key, jpeg, meta in samples:
        w.write(key, jpeg, meta)
    (info,) = w.close()
    data = (tmp_path / info.name).read_bytes()
    assert data == tarfile_shard(samples)
    assert info.bytes == len(data) and info.sha256 == hashlib.sha256(data).hexdigest() and info.samples == len(samples)


def test_the_shard_format_is_pinned(tmp_path):
    """The bytes do not follow a later tarfile's choices: the dataset version of the same input stays."""
    shards, _ = write(tmp_path, 3, 10)
    assert shards[0].sha256 == "fec7dc2d82de3d642bba80d1fe6145f372311874bbb483696da4c44268041215"
