import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tagsight.schema import catalog
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Post
from tagsight.ingest.sources import Rejected, SourceError, open_source, sniff_format
from tagsight.ingest.sources.webdataset import WebDatasetSource, group_samples, split_key
from tagsight.privacy.policy import ConsentPolicy


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (37 * seed % 256, 255 - 53 * seed % 256, 11 * seed % 256)).save(buf, "JPEG")
    return buf.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]], mtime: int = 1650000000) -> Path:
    """A tar written the way webdataset's TarWriter does: regular members in sample order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o444
            tar.addfile(info, io.BytesIO(data))
    return path


def sample(key: str, seed: int, caption: str | None, url: str = "https://photos.example.org/a/{key}.jpg",
           txt: bool = True, **meta: Any) -> list[tuple[str, bytes]]:
    """One img2dataset sample: <key>.jpg, <key>.txt (the caption) and <key>.json."""
    record = {"url": url.format(key=key), "caption": caption, "key": key, "status": "success",
              "error_message": None, "width": 32, "height": 24, "original_width": 640, "original_height": 480,
              "exif": "{}", "sha256": None, **meta}
    out = [(f"{key}.jpg", jpeg(seed))]
    if txt and caption is not None:
        out.append((f"{key}.txt", caption.encode()))
    return out + [(f"{key}.json", json.dumps(record).encode())]


def make_img2dataset(root: Path) -> Path:
    """Two shards with stats and parquet beside them, as ``img2dataset --output_format webdataset`` leaves them."""
    shards = {
        "00000": sample("000000000", 1, "Red boat at dusk #boat #Sunset") + sample("000000001", 2, "a field")
                 + sample("000000002", 3, "no text file #json", txt=False),
        "00001": sample("000010000", 4, "Mountain café ☕ #mountains", url="https://other.example.net/x.jpg")
                 + sample("000010001", 5, "#noai my art"),
    }
    for name, members in shards.items():
        write_tar(root / f"{name}.tar", members)
        keys = sorted({m[0].split(".")[0] for m in members})
        (root / f"{name}_stats.json").write_text(json.dumps({
            "count": len(keys), "successes": len(keys), "failed_to_download": 0, "failed_to_resize": 0,
            "duration": 1.5, "start_time": 1650000000.0, "end_time": 1650000100.0 + int(name),
            "status_dict": {"success": len(keys)}}))
        pq.write_table(pa.Table.from_pylist([{"key": k, "status": "success"} for k in keys]),
                       root / f"{name}.parquet")
    return root


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    return make_img2dataset(tmp_path / "laion-mini")


def test_samples_become_posts_with_captions_hashtags_and_in_shard_media(shards):
    src = WebDatasetSource(shards, visibility="public")
    items = list(src)
    assert [p.post_id for p in items] == ["000000000", "000000001", "000000002", "000010000", "000010001"]
    boat, field, json_only, cafe, _ = items
    assert boat.caption == "Red boat at dusk #boat #Sunset" and boat.hashtags == ("boat", "Sunset")
    assert boat.media[0].path == "00000.tar/000000000.jpg" and boat.author_id == "photos.example.org"
    assert src.tree.read_bytes(boat.media[0].path) == jpeg(1) and src.tree.is_file(boat.media[0].path)
    assert src.tree.listdir("00000.tar")[:3] == ["000000000.jpg", "000000000.json", "000000000.txt"]
    assert src.tree.listdir("") == [] and src.tree.is_dir("00001.tar") and not src.tree.is_file("00009.tar/x.jpg")
    assert src.tree.read_head(boat.media[0].path, 3) == b"\xff\xd8\xff"
    assert boat.created_at == "2022-04-15T05:21:40Z"  # the shard's end_time: the data carries no post time
    assert json_only.caption == "no text file #json" and json_only.hashtags == ("json",)
    assert cafe.caption == "Mountain café ☕ #mountains" and cafe.author_id == "other.example.net"
    assert cafe.created_at == "2022-04-15T05:21:41Z" and boat.source == "laion-mini"
    assert {p.visibility for p in items} == {"public"}


def test_default_visibility_is_not_public_and_keeps_nothing(shards, tmp_path, caplog):
    src = WebDatasetSource(shards)
    assert {p.visibility for p in src} == {"private"} and "record no audience or consent" in caplog.text
    summary = ingest(src, tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.posts_in == 5 and summary.posts_kept == 0 and summary.reconciles()
    assert summary.post_reasons == {"visibility_private": 5}


def test_shards_are_sniffed_and_ingested_with_a_catalog(shards, tmp_path):
    assert sniff_format(shards) == "webdataset" and sniff_format(shards / "00001.tar") == "webdataset"
    summary = ingest(open_source(shards, visibility="public"), tmp_path / "ds", ConsentPolicy(),
                     IngestConfig(workers=1))
    assert summary.reconciles() and (summary.posts_in, summary.posts_kept) == (5, 4)
    assert summary.post_reasons == {"optout_hashtag": 1} and summary.media_kept == 4
    posts = catalog.read_table(tmp_path / "ds", "posts").to_pylist()
    assert sorted(p["post_id"] for p in posts) == ["000000000", "000000001", "000000002", "000010000"]
    tags = catalog.read_table(tmp_path / "ds", "hashtags").to_pylist()
    assert sorted(t["tag"] for t in tags) == ["Sunset", "boat", "json", "mountains"]
    media = catalog.read_table(tmp_path / "ds", "media").to_pylist()
    assert {m["path"] for m in media} >= {"00000.tar/000000000.jpg", "00001.tar/000010000.jpg"}
    assert not any(p.suffix == ".jpg" for p in shards.rglob("*"))  # nothing was unpacked


def test_one_shard_file_is_a_source(shards, tmp_path):
    src = open_source(shards / "00001.tar", visibility="public")
    assert isinstance(src, WebDatasetSource) and src.name == "00001"
    cafe, _ = src
    assert cafe.media[0].path == "000010000.jpg" and cafe.created_at == "2022-04-15T05:21:41Z"
    summary = ingest(src, tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.reconciles() and summary.posts_kept == 1 and summary.media_kept == 1


def test_bad_samples_and_shards_are_rejected_with_their_reason(tmp_path):
    root = tmp_path / "w"
    write_tar(root / "00000.tar", sample("0", 1, "ok #a")
              + [("1.json", b"{broken"), ("1.jpg", jpeg(2))]
              + [("2.txt", b"\xff\xfe caption"), ("2.jpg", jpeg(3))]
              + [("3.txt", b"no image"), ("3.json", b"{}")]
              + sample("4", 4, "failed", status="failed_to_download", error_message="timeout")
              + [("5.jpg", jpeg(5)), ("5.json", json.dumps({"caption": "x", "created_at": "not a time"}).encode())]
              + [("6.jpg", jpeg(6)), ("6.json", json.dumps({"caption": "a time", "date": "2021-05-01",
                                                            "LICENSE": "CC-BY-4.0"}).encode())])
    (root / "00001.tar").write_bytes(b"not a tar at all, and long enough" * 20)
    items = list(WebDatasetSource(root, author="crawler-7"))
    got = [(i.ref, i.reason) for i in items if isinstance(i, Rejected)]
    assert got == [("00000.tar/1", "malformed_json"), ("00000.tar/2", "invalid_utf8"), ("00000.tar/3", "no_media"),
                   ("00000.tar/4", "download_failed"), ("00000.tar/5", "invalid_field:created_at"),
                   ("00001.tar", "unreadable_shard")]
    ok, dated = [i for i in items if isinstance(i, Post)]
    assert ok.author_id == "crawler-7" and ok.hashtags == ("a",)
    assert dated.created_at == "2021-05-01T00:00:00Z" and dated.license == "CC-BY-4.0"


def test_unsafe_shard_members_refuse_that_shard(tmp_path):
    root = tmp_path / "w"
    write_tar(root / "00000.tar", sample("0", 1, "ok"))
    bad = root / "00001.tar"
    with tarfile.open(bad, "w") as tar:
        for name, data in sample("1", 2, "x"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("2.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    ok, bad_shard = WebDatasetSource(root)
    assert isinstance(ok, Post) and (bad_shard.ref, bad_shard.reason) == ("00001.tar", "unreadable_shard")
    assert "symlink" in bad_shard.detail


def test_not_webdataset(tmp_path):
    folder = tmp_path / "f"
    write_tar(folder / "export.tar", [("export/posts.json", b"[]"), ("export/a.jpg", jpeg(1))])
    assert not WebDatasetSource.sniff(folder) and not WebDatasetSource.sniff(folder / "export.tar")
    assert not WebDatasetSource.sniff(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no .tar shard"):
        WebDatasetSource(tmp_path / "empty")
    with pytest.raises(ValueError, match="visibility"):
        WebDatasetSource(folder, visibility="everyone")


def test_keys_follow_webdataset_rules():
    assert split_key("dir/000.seg.png") == ("dir/000", "seg.png") and split_key("abc") == ("abc", "")
    assert group_samples(["a.jpg", "a.json", "b.JPG", "b.txt", "README"]) == {
        "a": {"jpg": "a.jpg", "json": "a.json"}, "b": {"jpg": "b.JPG", "txt": "b.txt"}}


def test_worker_processes_read_the_shards_and_give_the_same_version(shards, tmp_path):
    one = ingest(WebDatasetSource(shards, visibility="public"), tmp_path / "a", ConsentPolicy(),
                 IngestConfig(workers=1, chunk_size=2))
    two = ingest(WebDatasetSource(shards, visibility="public"), tmp_path / "b", ConsentPolicy(),
                 IngestConfig(workers=2, chunk_size=2))
    assert one.version == two.version and two.media_kept == 4


def test_describe_counts_shards(shards):
    (shards / "00002.tar").write_bytes(b"x" * 1024)
    d = WebDatasetSource(shards).describe()
    assert (d["format"], d["shards"], d["unreadable shards"]) == ("webdataset", "2", "1")
    assert d["visibility"].startswith("private")


@pytest.mark.slow
def test_real_photos_in_shards_written_by_webdatasets_tarwriter_match_the_folder_ingest(shared_data, tmp_path):
    """Real photos packed as img2dataset packs them (webdataset's TarWriter): every sample is kept, and the
    stored images are the same bytes as when the same photos are ingested from a folder."""
    wds = pytest.importorskip("webdataset")
    train = shared_data / "imagenette-160" / "train"
    photos = [p for cls in sorted(train.iterdir())[:2] for p in sorted(cls.iterdir())[:20]]
    folder = tmp_path / "folder"
    for i, photo in enumerate(photos):
        (folder / f"{i:09d}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:09d}.jpg").write_bytes(photo.read_bytes())
        (folder / f"{i:09d}.txt").write_text(f"#{photo.parent.name}")
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        with wds.TarWriter(str(shards / f"{s:05d}.tar")) as sink:
            for i in range(s * 20, s * 20 + 20):
                key = f"{i:09d}"
                sink.write({"__key__": key, "jpg": (folder / f"{key}.jpg").read_bytes(),
                            "txt": f"#{photos[i].parent.name}",
                            "json": {"url": f"https://museum.example/{key}.jpg", "key": key, "status": "success"}})
    assert sniff_format(shards) == "webdataset"
    cfg = IngestConfig(workers=1, near_duplicate_radius=None)
    from_shards = ingest(WebDatasetSource(shards, visibility="public"), tmp_path / "a", ConsentPolicy(), cfg)
    from_folder = ingest(open_source(folder, "folder", author="museum.example"), tmp_path / "b", ConsentPolicy(), cfg)
    assert from_shards.reconciles() and from_folder.reconciles()
    assert from_shards.posts_kept == from_shards.media_kept == from_folder.media_kept == len(photos) == 40
    sha = {ds: {m["post_id"]: m["sha256"] for m in catalog.read_table(tmp_path / ds, "media").to_pylist()}
           for ds in ("a", "b")}
    assert sha["a"] == sha["b"] and len(sha["a"]) == 40
    stored = {}
    for ds in ("a", "b"):
        for shard in sorted((tmp_path / ds / "shards").glob("*.tar")):
            with tarfile.open(shard) as tar:
                stored[ds] = stored.get(ds, []) + [tar.extractfile(m).read() for m in tar if m.name.endswith(".jpg")]
    assert stored["a"] == stored["b"]
    tags = catalog.read_table(tmp_path / "a", "hashtags").to_pylist()
    assert {t["tag"] for t in tags} == {p.parent.name for p in photos}
