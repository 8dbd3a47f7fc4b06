import os
import pickle
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tagsight.schema import catalog
from tagsight.ingest import tree as tree_module
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Post
from tagsight.ingest.sources import Source, sniff_format
from tagsight.ingest.tree import (FolderTree, MemberTooLarge, TreeError, TreeLimits, archive_stem, is_archive,
                                  open_tree)
from tests.conftest import picture, save
from tests.ingest.archives import (declare_size, tar_folder, tar_with, truncate, zip_folder, zip_with)


@pytest.fixture
def export(tmp_path):
    """A small folder: two photos, a JSON file, a nested folder."""
    root = tmp_path / "export-2024"
    save(picture(1), root / "media" / "a.jpg")
    save(picture(2), root / "media" / "deep" / "b.png", "PNG")
    (root / "posts.json").write_text('[{"x": 1}]')
    return root


def packed(export, tmp_path, kind):
    if kind == "folder":
        return export
    if kind == "zip":
        return zip_folder(export, tmp_path / "out" / "export-2024.zip")
    return tar_folder(export, tmp_path / "out" / f"export-2024.{kind}", compression=kind.split(".")[-1]
                      if "." in kind else "")


KINDS = ["folder", "zip", "tar", "tar.gz", "tar.bz2", "tar.xz"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_lists_and_reads_the_same_files(export, tmp_path, kind):
    tree = open_tree(packed(export, tmp_path, kind))
    assert tree.kind == kind.split(".")[0] and tree.name == "export-2024"
    assert tree.files() == ["media/a.jpg", "media/deep/b.png", "posts.json"]
    assert tree.read_bytes("media/deep/b.png") == (export / "media/deep/b.png").read_bytes()
    assert tree.read_bytes("./posts.json") == b'[{"x": 1}]'
    assert tree.is_file("media/a.jpg") and not tree.is_file("media") and not tree.is_file("nope.jpg")
    assert tree.is_dir("media/deep") and not tree.is_dir("posts.json")
    assert tree.listdir("") == ["posts.json"] and tree.listdir("media") == ["a.jpg"] and tree.listdir("nope") == []
    assert not tree.is_file("../export-2024/posts.json") and not tree.is_file("/posts.json")
    with pytest.raises(FileNotFoundError):
        tree.read_bytes("media/c.jpg")
    with pytest.raises(IsADirectoryError):
        tree.read_bytes("media/deep")
    with pytest.raises(MemberTooLarge):
        tree.read_bytes("posts.json", max_bytes=5)
    with pytest.raises(TreeError, match="not a path inside"):
        tree.read_bytes("../posts.json")
    assert is_archive(tree.location) == (kind != "folder")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_single_top_level_folder_is_the_root_and_two_are_not(export, tmp_path, kind):
    if kind == "zip":
        wrapped = zip_folder(export, tmp_path / "w.zip", prefix="instagram-jane-2024/")
    else:
        wrapped = tar_folder(export, tmp_path / "w.tar.gz", prefix="./archive/")
    assert open_tree(wrapped).files() == ["media/a.jpg", "media/deep/b.png", "posts.json"]
    two = zip_with(tmp_path / "two.zip", [("a/x.json", b"{}"), ("b/y.json", b"{}")])
    assert open_tree(two).files() == ["a/x.json", "b/y.json"]
    mac = zip_with(tmp_path / "mac.zip", [("e/a.json", b"{}"), ("__MACOSX/e/._a.json", b"\0"), ("e/._b.json", b"\0")])
    assert open_tree(mac).files() == ["a.json"]  # macOS resource forks are not content and do not hide the root
    single_file = zip_with(tmp_path / "one.zip", [("posts.json", b"[]")])
    assert open_tree(single_file).files() == ["posts.json"]


def test_the_format_is_told_by_magic_bytes_not_the_name(export, tmp_path):
    disguised = zip_folder(export, tmp_path / "download.bin")
    assert is_archive(disguised) and open_tree(disguised).kind == "zip"
    fake = tmp_path / "notes.zip"
    fake.write_text("just some text, not an archive at all\n" * 20)
    assert not is_archive(fake) and not is_archive(tmp_path / "missing.zip") and not is_archive(tmp_path)
    with pytest.raises(TreeError, match="neither a folder nor a zip or tar"):
        open_tree(fake)
    gz_json = tmp_path / "posts.json.gz"
    import gzip
    gz_json.write_bytes(gzip.compress(b'{"a": 1}' * 100))
    assert not is_archive(gz_json)


@pytest.mark.parametrize("name, stem", [("export.zip", "export"), ("archive-2024.tar.gz", "archive-2024"),
                                        ("a.TGZ", "a"), ("b.tar", "b"), ("c.tar.xz", "c"), ("d.bin", "d")])
def test_archive_stem(name, stem):
    assert archive_stem(name) == stem


# ------------------------------------------------------------------------------------------- hostile archives
PHOTO = b"\xff\xd8 not really a photo"


@pytest.mark.parametrize("maker", ["zip", "tar"])
@pytest.mark.parametrize("name, message", [("../x.jpg", "'..'"), ("media/../../x.jpg", "'..'"),
                                           ("/etc/x.jpg", "absolute"), ("C:/x.jpg", "absolute")])
def test_members_outside_the_root_refuse_the_archive(tmp_path, maker, name, message):
    members = [("posts.json", b"[]"), (name, PHOTO)]
    path = (zip_with if maker == "zip" else tar_with)(tmp_path / f"evil.{maker}", members)
    with pytest.raises(TreeError, match=message):
        open_tree(path)
    with pytest.raises(TreeError, match=message):
        sniff_format(path)


def test_link_and_device_members_refuse_the_archive(tmp_path):
    cases = {
        zip_with(tmp_path / "s.zip", [("a.json", b"{}")], symlink=("media/x.jpg", "/etc/passwd")): "symlink",
        tar_with(tmp_path / "s.tar.gz", [("a.json", b"{}")], link=("x.jpg", "/etc/passwd", tarfile.SYMTYPE)): "symlink",
        tar_with(tmp_path / "h.tar.gz", [("a.json", b"{}")], link=("x.jpg", "a.json", tarfile.LNKTYPE)): "hard link",
        tar_with(tmp_path / "d.tar", [("a.json", b"{}")], link=("null", "", tarfile.CHRTYPE), compression=""):
            "not a regular file",
    }
    for path, message in cases.items():
        with pytest.raises(TreeError, match=message):
            open_tree(path)


def test_too_many_members_is_a_bomb(tmp_path):
    path = zip_with(tmp_path / "many.zip", [(f"m/{i}.json", b"{}") for i in range(60)])
    assert len(open_tree(path, TreeLimits(max_members=60)).files()) == 60
    with pytest.raises(TreeError, match="more than 59 members"):
        open_tree(path, TreeLimits(max_members=59))
    tar = tar_with(tmp_path / "many.tar.gz", [(f"m/{i}.json", b"{}") for i in range(60)])
    with pytest.raises(TreeError, match="more than 59 members"):
        open_tree(tar, TreeLimits(max_members=59))


def test_a_high_compression_ratio_is_a_bomb_under_the_default_limits(tmp_path):
    zeros = bytes(8 << 20)  # 8 MiB of zeros deflate about 1000:1
    with pytest.raises(TreeError, match="zip bomb"):
        open_tree(zip_with(tmp_path / "bomb.zip", [("a.json", b"{}"), ("b.jpg", zeros)]))
    with pytest.raises(TreeError, match="archive bomb"):
        open_tree(tar_with(tmp_path / "bomb.tar.gz", [("a.json", b"{}"), ("b.jpg", zeros)]))
    small = zip_with(tmp_path / "small.zip", [("a.json", b" " * 100_000), ("b.json", b"{}")])  # tiny members pass
    assert open_tree(small).read_bytes("a.json") == b" " * 100_000


def test_a_huge_declared_size_is_a_bomb(tmp_path):
    path = declare_size(zip_with(tmp_path / "liar.zip", [("a.json", b"{}"), ("b.jpg", PHOTO)]), "b.jpg", 4_000_000_000)
    with pytest.raises(TreeError, match="declares 4000000000 bytes from .* zip bomb"):
        open_tree(path)
    with pytest.raises(TreeError, match="declares 23 uncompressed bytes"):
        open_tree(zip_with(tmp_path / "z.zip", [("a.json", b"{}"), ("b.jpg", PHOTO)]), TreeLimits(max_total_bytes=20))


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_a_truncated_archive_is_refused_with_a_clear_error(export, tmp_path, kind):
    path = truncate(packed(export, tmp_path, kind), 0.7)
    with pytest.raises(TreeError, match="truncated"):
        open_tree(path)
    with pytest.raises(TreeError, match="truncated"):
        sniff_format(path)


def test_a_gzip_stream_cut_after_the_tar_end_marker_is_still_refused(export, tmp_path):
    path = packed(export, tmp_path, "tar.gz")
    path.write_bytes(path.read_bytes()[:-4])  # only the gzip trailer (CRC, length) is missing
    with pytest.raises(TreeError, match="truncated|damaged"):
        open_tree(path)


def test_duplicate_members_refuse_the_archive(tmp_path):
    path = tar_with(tmp_path / "dup.tar.gz", [("a.jpg", PHOTO), ("./a.jpg", b"other")])
    with pytest.raises(TreeError, match="twice"):
        open_tree(path)


def test_a_damaged_member_is_unreadable_not_a_crash(tmp_path):
    path = zip_with(tmp_path / "crc.zip", [("a.json", b"{}"), ("b.jpg", PHOTO * 50)])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("b.jpg")
    data[info.header_offset + 30 + len("b.jpg") + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TreeError, match="cannot read b.jpg"):
        open_tree(path).read_bytes("b.jpg")


# ------------------------------------------------------------------------------------------- folders
def test_a_folder_tree_never_reads_outside_its_root(tmp_path):
    root = tmp_path / "root"
    save(picture(1), root / "in.jpg")
    (tmp_path / "secret.jpg").write_bytes(PHOTO)
    os.symlink(tmp_path / "secret.jpg", root / "out.jpg")
    os.symlink(root / "in.jpg", root / "alias.jpg")
    os.symlink(tmp_path, root / "up")
    tree = FolderTree(root)
    assert tree.files() == ["alias.jpg", "in.jpg"]
    assert tree.read_bytes("alias.jpg") == (root / "in.jpg").read_bytes()
    for rel in ("out.jpg", "up/secret.jpg", "../secret.jpg"):
        assert not tree.is_file(rel)
        with pytest.raises(TreeError):
            tree.read_bytes(rel)
    with pytest.raises(TreeError, match="not a folder"):
        FolderTree(root / "in.jpg")


# ------------------------------------------------------------------------------------------- processes
def test_a_tree_pickles_without_its_open_handle_and_refuses_a_changed_archive(export, tmp_path):
    for kind in ("zip", "tar.gz"):
        tree = open_tree(packed(export, tmp_path, kind))
        assert tree.read_bytes("posts.json")
        assert (os.getpid(), tree._key) in tree_module._HANDLES  # one open handle per archive and process
        blob = pickle.dumps(tree)
        assert b"deep/b.png" not in blob  # neither the handle nor the index travels: the worker's cache has it
        clone = pickle.loads(blob)
        assert clone.read_bytes("media/a.jpg") == (export / "media/a.jpg").read_bytes()
    path = Path(tree.location)
    time.sleep(0.01)
    path.write_bytes(path.read_bytes())
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(TreeError, match="changed"):
        clone.read_bytes("posts.json")


class ListSource(Source):
    """Posts given as a list over any folder or archive (the adapters' common part, nothing else)."""

    format = "list"

    def __init__(self, path, posts, name="list"):
        super().__init__(path, name=name)
        self.posts = posts

    @classmethod
    def sniff(cls, path):
        return False

    def __iter__(self):
        for i, media in enumerate(self.posts):
            yield Post.from_dict({"post_id": f"p{i}", "author_id": "ann", "created_at": 1_700_000_000 + i,
                                  "visibility": "public", "caption": f"#n{i}",
                                  "media": [{"path": m} for m in media]}, source=self.name)


MEDIA = [["media/a.jpg"], ["media/deep/b.png", "media/missing.jpg"], ["media/deep"], ["posts.json"],
         ["../posts.json"], ["media/big.jpg"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_pipeline_reads_media_through_the_tree_with_the_folder_reason_codes(export, tmp_path, workers):
    save(picture(3, (300, 300)), export / "media" / "big.jpg", quality=95)
    cfg = IngestConfig(workers=workers, chunk_size=2, image=ImageConfig(max_side=32, max_bytes=8000))
    versions, reasons = {}, {}
    for kind in ("folder", "zip", "tar.gz"):
        out = tmp_path / f"ds-{kind}"
        summary = ingest(ListSource(packed(export, tmp_path, kind), MEDIA), out, cfg=cfg)
        assert summary.reconciles() and summary.posts_in == 6 and summary.posts_kept == 2
        versions[kind] = summary.version
        media = catalog.read_table(out, "media").to_pylist()
        reasons[kind] = [(m["path"], m["reason"]) for m in media]
    assert reasons["zip"] == reasons["folder"] == reasons["tar.gz"] == [
        ("media/a.jpg", ""), ("media/deep/b.png", ""), ("media/missing.jpg", "media_missing"),
        ("media/deep", "media_not_a_file"), ("posts.json", "not_an_image"), ("../posts.json", "path_escapes_root"),
        ("media/big.jpg", "file_too_large")]
    assert len(set(versions.values())) == 1, versions  # the same bytes in, the same dataset out


@pytest.mark.parametrize("kind", KINDS)
def test_read_head_reads_only_the_start(export, tmp_path, kind):
    tree = open_tree(packed(export, tmp_path, kind))
    assert tree.read_head("posts.json", 4) == b'[{"x'
    assert tree.read_head("posts.json", 1000) == b'[{"x": 1}]'
    with pytest.raises(FileNotFoundError):
        tree.read_head("nope.json", 4)
