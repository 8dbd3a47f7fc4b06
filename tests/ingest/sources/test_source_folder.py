import json
import os
import time
from pathlib import Path

import pytest

from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import Rejected, SourceError
from tagsight.ingest.sources.folder import FolderSource, list_folder

IMAGENETTE = Path(os.environ.get("TAGSIGHT_DATA", Path(__file__).parents[4] / "shared" / "data")) / "imagenette-160"


def test_class_folders_give_one_post_per_image_labelled_but_not_tagged_by_default(class_folders):
    items = list(FolderSource(class_folders))
    assert [p.post_id for p in items] == ["cat/img_0", "cat/img_1", "dog/img_0", "dog/img_1"]
    assert all(p.hashtags == () and p.author_id == "unknown" and p.visibility == "public" for p in items)
    assert [p.extra["label"] for p in items] == ["cat", "cat", "dog", "dog"]
    assert items[0].media == (Media(path="cat/img_0.JPEG"),) and items[0].source == "pets"


def test_class_as_hashtag_adds_the_folder_name_as_a_hashtag(class_folders):
    items = list(FolderSource(class_folders, class_as_hashtag=True, author="me", visibility="followers"))
    assert [p.hashtags for p in items] == [("cat",), ("cat",), ("dog",), ("dog",)]
    assert items[0].extra["label"] == "cat" and items[0].author_id == "me" and items[0].visibility == "followers"


def test_a_wordnet_id_class_folder_becomes_its_noun_as_a_hashtag(tmp_path, make):
    pytest.importorskip("nltk")
    from tagsight.tags.wordnet import WordNetMissing, load_wordnet

    try:
        load_wordnet()
    except WordNetMissing as exc:
        pytest.skip(f"WordNet is not installed: {exc}")
    for folder in ("n01440764", "n03394916", "n99999999", "cats"):   # ImageNet ids, an unknown id, a plain name
        make.image(tmp_path / folder / "a.png")
    items = list(FolderSource(tmp_path, class_as_hashtag=True))
    assert {p.extra["label"]: p.hashtags for p in items} == {
        "n01440764": ("tench",), "n03394916": ("frenchhorn",), "n99999999": ("n99999999",), "cats": ("cats",)}


def test_created_at_is_the_file_mtime_without_a_sidecar(tmp_path, make):
    path = make.image(tmp_path / "a.png")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (post,) = FolderSource(tmp_path)
    assert post.created_at == "2023-11-14T22:13:20Z" and "label" not in post.extra and post.post_id == "a"


def test_text_and_json_sidecars_fill_the_post(tmp_path, make):
    make.image(tmp_path / "beach.jpg")
    (tmp_path / "beach.txt").write_text("Sunset 🌅 #Beach #sunset\u200b\n", encoding="utf-8")
    make.image(tmp_path / "sub" / "dog.png")
    (tmp_path / "sub" / "dog.png.json").write_text(json.dumps({
        "hashtags": ["#Dog", "puppy"], "visibility": "unlisted", "author_id": "bob", "alt_text": "a dog",
        "created_at": "2024-01-02T03:04:05Z", "consent": {"ai_training": False}, "likes": 7}))
    beach, dog = FolderSource(tmp_path)
    assert beach.caption == "Sunset 🌅 #Beach #sunset\u200b" and beach.hashtags == ("Beach", "sunset\u200b")
    assert (dog.post_id, dog.author_id, dog.visibility, dog.created_at) == ("sub/dog", "bob", "unlisted",
                                                                            "2024-01-02T03:04:05Z")
    assert dog.hashtags == ("Dog", "puppy") and dog.consent_ai_training is False and dog.likes == 7
    assert dog.media == (Media(path="sub/dog.png", alt_text="a dog"),) and dog.extra["label"] == "sub"


def test_json_sidecar_beats_text_and_the_specific_name_beats_the_stem(tmp_path, make):
    make.image(tmp_path / "p.jpg")
    (tmp_path / "p.txt").write_text("from text #txt")
    (tmp_path / "p.json").write_text(json.dumps({"caption": "from stem json #stem", "likes": 1}))
    (tmp_path / "p.jpg.json").write_text(json.dumps({"caption": "from full name #full"}))
    (post,) = FolderSource(tmp_path)
    assert post.caption == "from full name #full" and post.hashtags == ("full",) and post.likes == 1


def test_class_as_hashtag_keeps_sidecar_hashtags_and_does_not_repeat_the_class(tmp_path, make):
    make.image(tmp_path / "cat" / "1.jpg")
    (tmp_path / "cat" / "1.txt").write_text("#kitten")
    make.image(tmp_path / "cat" / "2.jpg")
    (tmp_path / "cat" / "2.json").write_text(json.dumps({"hashtags": ["cat"]}))
    one, two = FolderSource(tmp_path, class_as_hashtag=True)
    assert one.hashtags == ("kitten", "cat") and two.hashtags == ("cat",)


def test_nothing_is_silently_dropped(tmp_path, make):
    make.image(tmp_path / "ok.webp")
    make.image(tmp_path / "bad.jpg")
    (tmp_path / "bad.json").write_text("{oops")
    make.image(tmp_path / "latin.png")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 #x")
    make.image(tmp_path / "list.gif")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "orphan.txt").write_text("#lonely")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    make.image(tmp_path / ".hidden" / "x.jpg")
    got = {i.ref: i.reason for i in FolderSource(tmp_path, author="me") if isinstance(i, Rejected)}
    assert got == {"bad.jpg": "malformed_sidecar", "latin.png": "malformed_sidecar", "list.gif": "malformed_sidecar",
                   "notes.pdf": "unsupported_file", "orphan.txt": "unsupported_file"}
    assert [p.post_id for p in FolderSource(tmp_path) if isinstance(p, Post)] == ["ok"]
    bad = next(i for i in FolderSource(tmp_path, author="me") if i.ref == "bad.jpg")
    assert (bad.post_id, bad.author_id) == ("bad", "me")


def test_a_sidecar_linking_outside_the_folder_is_not_read(tmp_path, make):
    secret = tmp_path / "secret.txt"
    secret.write_text("password #leak")
    make.image(tmp_path / "root" / "a.jpg")
    (tmp_path / "root" / "a.txt").symlink_to(secret)
    (item,) = FolderSource(tmp_path / "root")
    assert isinstance(item, Rejected) and item.reason == "sidecar_escapes_root" and "password" not in item.detail


def test_extensions_are_case_insensitive_and_order_is_sorted_paths(tmp_path, make):
    for rel in ("b/Z.TIFF", "a.JPG", "b/a.bmp", "c.jpeg", "A/x.PNG"):
        make.image(tmp_path / rel)
    items = list(FolderSource(tmp_path))
    assert [p.media[0].path for p in items] == ["A/x.PNG", "a.JPG", "b/Z.TIFF", "b/a.bmp", "c.jpeg"]
    assert items == list(FolderSource(tmp_path))


def test_symlinked_images_are_yielded_as_found_and_symlinked_folders_are_reported(tmp_path, make):
    outside = make.image(tmp_path / "outside" / "secret.jpg")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.jpg").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    items = list(FolderSource(root))
    assert isinstance(items[0], Post) and items[0].media == (Media(path="link.jpg"),)
    assert isinstance(items[1], Rejected) and (items[1].ref, items[1].reason) == ("linkdir", "symlinked_folder")


def test_bad_options_and_a_file_path_are_refused(tmp_path, make):
    make.image(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="visibility"):
        FolderSource(tmp_path, visibility="everyone")
    with pytest.raises(ValueError, match="author"):
        FolderSource(tmp_path, author=" ")
    with pytest.raises(SourceError, match="not a folder"):
        FolderSource(tmp_path / "a.jpg")


@pytest.mark.skipif(not IMAGENETTE.is_dir(), reason=f"real data not found at {IMAGENETTE} (set TAGSIGHT_DATA)")
def test_listing_imagenette_train_is_fast():
    start = time.process_time()   # CPU time: other jobs on the machine do not count
    entries = list_folder(IMAGENETTE / "train")
    assert time.process_time() - start < 1.0
    assert sum(e.kind == "image" for e in entries) == 9469 and len(entries) == 9469
    assert len({e.rel.split("/")[0] for e in entries}) == 10
