import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tagsight.datasets.synthetic import CONCEPTS, SPELLINGS, TAG_KINDS, FeedConfig, generate_feed
from tagsight.schema.posts import VISIBILITIES, Post
from tagsight.schema.text import parse_hashtags, strip_invisible

SMALL = FeedConfig(n_posts=40, n_authors=8, image_size=32, seed=3, n_large=1, n_png=1)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def optout_ids(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def images_of(truth: list[dict]) -> list[dict]:
    return [im for t in truth for im in t["images"]]


def exif_of(path: Path):
    with Image.open(path) as im:
        return im.getexif()


def loads(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    """The default feed (400 posts) generated once; the CPU seconds it took ride along (CPU time of this
    process, not wall time, so other jobs on a shared CI machine do not fail the speed test)."""
    root = tmp_path_factory.mktemp("feed")
    start = time.process_time()
    summary = generate_feed(root, FeedConfig())
    seconds = time.process_time() - start
    return root, summary, read_jsonl(root / "posts.jsonl"), read_jsonl(root / "truth.jsonl"), seconds


def test_default_feed_is_fast(feed):
    assert feed[4] < 5.0


def test_same_config_gives_byte_identical_files(tmp_path):
    generate_feed(tmp_path / "a", SMALL)
    generate_feed(tmp_path / "b", SMALL)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > SMALL.n_posts
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)


def test_another_seed_gives_another_feed(tmp_path):
    generate_feed(tmp_path / "a", SMALL)
    generate_feed(tmp_path / "b", FeedConfig(**{**SMALL.__dict__, "seed": 4}))
    assert (tmp_path / "a" / "posts.jsonl").read_bytes() != (tmp_path / "b" / "posts.jsonl").read_bytes()


def test_rerun_with_fewer_posts_leaves_no_stale_photos(tmp_path):
    generate_feed(tmp_path, SMALL)
    (tmp_path / "media" / "notes.txt").write_text("mine")
    summary = generate_feed(tmp_path, FeedConfig(n_posts=10, n_authors=3, image_size=32, n_large=0, n_png=0))
    photos = [p for p in (tmp_path / "media").iterdir() if p.suffix in (".jpg", ".png")]
    assert len(photos) == summary.n_images
    assert (tmp_path / "media" / "notes.txt").read_text() == "mine"


def test_summary_counts_match_the_files(feed):
    root, summary, posts, truth, _ = feed
    photos = sorted((root / "media").iterdir())
    assert summary.n_posts == len(posts) == len(truth) == 400
    assert summary.n_images == len(photos) == sum(len(p["media"]) for p in posts)
    assert summary.n_jpeg == sum(p.suffix == ".jpg" for p in photos)
    assert summary.n_png == sum(p.suffix == ".png" for p in photos) == 2
    assert summary.n_corrupt == sum(not loads(p) for p in photos) == 2
    assert summary.n_hashtags_listed == sum("hashtags" in p for p in posts)
    assert summary.n_alt_text == sum("alt_text" in m for p in posts for m in p["media"])
    assert summary.n_multi_image_posts == sum(len(p["media"]) > 1 for p in posts)
    assert summary.n_authors == len({p["author_id"] for p in posts})
    assert summary.n_public == sum(p["visibility"] == "public" for p in posts)
    assert summary.n_tags == sum(len(parse_hashtags(p["caption"])) for p in posts) == sum(summary.tag_kinds.values())
    assert summary.n_opted_out_authors == len(optout_ids(root / "optout.txt"))
    assert summary.n_large == sum(max(Image.open(p).size) >= 640 for p in photos if loads(p)) == 2


def test_every_media_path_exists_and_only_the_corrupt_ones_fail(feed):
    root, _, posts, truth, _ = feed
    by_path = {im["path"]: im for im in images_of(truth)}
    for post in posts:
        for m in post["media"]:
            path = root / m["path"]
            assert path.is_file(), m["path"]
            assert loads(path) == (by_path[m["path"]]["corrupt"] is None), m["path"]
    kinds = sorted(im["corrupt"] for im in by_path.values() if im["corrupt"])
    assert kinds == ["not_image", "truncated"]


def test_gps_exif_on_about_p_gps_of_the_jpegs(feed):
    root, summary, _, truth, _ = feed
    jpegs = [im for im in images_of(truth) if im["path"].endswith(".jpg") and im["corrupt"] is None]
    with_gps = [im for im in jpegs if exif_of(root / im["path"]).get_ifd(0x8825)]
    assert len(with_gps) == summary.n_gps == sum(im["gps"] is not None for im in jpegs)
    assert abs(len(with_gps) / len(jpegs) - FeedConfig().p_gps) < 0.07
    gps = exif_of(root / with_gps[0]["path"]).get_ifd(0x8825)
    degrees, minutes, seconds = (float(v) for v in gps[2])
    lat = (degrees + minutes / 60 + seconds / 3600) * (1 if gps[1] == "N" else -1)
    assert lat == pytest.approx(with_gps[0]["gps"]["lat"], abs=1e-3)


def test_rotated_photos_look_right_after_exif_transpose(feed):
    root, summary, _, truth, _ = feed
    oriented = [im for im in images_of(truth) if im["orientation"]]
    assert len(oriented) == summary.n_oriented > 0
    assert any(im["orientation"] in (6, 8) and im["width"] != im["height"] for im in oriented)
    for im in oriented:
        with Image.open(root / im["path"]) as raw:
            assert raw.getexif()[0x0112] == im["orientation"]
            stored = raw.size
            upright = ImageOps.exif_transpose(raw).size
        assert upright == (im["width"], im["height"])
        assert stored == (upright[::-1] if im["orientation"] in (6, 8) else upright)


def test_reposts_copy_an_earlier_photo_exactly_or_nearly(feed):
    root, summary, _, truth, _ = feed
    dups = [im for im in images_of(truth) if im["duplicate_of"]]
    assert Counter(im["duplicate_of"]["kind"] for im in dups) == {
        "exact": summary.n_exact_duplicates, "near": summary.n_near_duplicates}
    assert summary.n_exact_duplicates > 0 and summary.n_near_duplicates > 0
    for im in dups:
        src = root / im["duplicate_of"]["path"]
        same = hashlib.sha256(src.read_bytes()).hexdigest() == im["sha256"]
        assert same == (im["duplicate_of"]["kind"] == "exact")
        a, b = (np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("L").resize((16, 16)), float)
                for p in (src, root / im["path"]))
        assert np.abs(a - b).mean() < 6


def test_captions_carry_the_tags_truth_describes(feed):
    _, _, posts, truth, _ = feed
    for post, t in zip(posts, truth):
        assert post["post_id"] == t["post_id"]
        written = [tag["tag"] for tag in t["tags"]]
        assert parse_hashtags(post["caption"]) == written
        assert post.get("hashtags", written) == written
        assert list(Post.from_dict(post).hashtags) == written
    listed = sum("hashtags" in p for p in posts) / len(posts)
    assert 0.4 < listed < 0.6


def test_tag_kinds_agree_with_what_the_images_show(feed):
    _, summary, _, truth, _ = feed
    for t in truth:
        shown = {c for im in t["images"] for c in im["concepts"]}
        assert set(t["concepts"]) == shown and t["synsets"] == [CONCEPTS[c] for c in t["concepts"]]
        for tag in t["tags"]:
            assert tag["kind"] in TAG_KINDS
            if tag["kind"] == "relevant":
                assert tag["concept"] in shown
            if tag["kind"] == "wrong":
                assert tag["concept"] not in shown
        assert any(tag["kind"] == "relevant" for tag in t["tags"])
    kinds = summary.tag_kinds
    assert kinds["wrong"] / summary.n_posts == pytest.approx(FeedConfig().p_wrong, abs=0.06)
    assert kinds["nonvisual"] > summary.n_posts * 0.7


def test_tags_are_spelled_as_people_spell_them(feed):
    _, _, _, truth, _ = feed
    tags = [tag for t in truth for tag in t["tags"]]
    forms = Counter(tag["form"] for tag in tags if tag["kind"] == "relevant")
    assert set(forms) == {"base", "plural", "synonym", "compound", "camelcase", "misspelling", "hypernym"}
    assert any(tag["tag"] != strip_invisible(tag["tag"]) for tag in tags)  # a zero-width character inside
    assert any(not tag["tag"].isascii() and tag["tag"] == strip_invisible(tag["tag"]) for tag in tags)  # emoji


def test_audience_facts_and_optout_list(feed):
    root, summary, posts, truth, _ = feed
    opted_out = optout_ids(root / "optout.txt")
    assert (root / "optout.txt").read_text().startswith("#")
    assert opted_out and summary.n_opted_out_authors == len(opted_out)
    by_author = Counter(p["author_id"] for p in posts)
    assert all(by_author[a] > 0 for a in opted_out)
    assert summary.n_posts_by_opted_out == sum(by_author[a] for a in opted_out)
    for post, t in zip(posts, truth):
        assert post["visibility"] == t["visibility"] in VISIBILITIES
        assert post["consent"] == {"ai_training": t["consent_ai_training"]}
        assert t["author_opted_out"] == (post["author_id"] in opted_out)
    assert len({p["visibility"] for p in posts}) >= 4
    assert summary.n_optout_tag_posts == sum(t["optout_tag"] is not None for t in truth) > 0


def test_concepts_are_distinguishable_on_8px_thumbnails(feed):
    """Nearest class centroid on 8x8 thumbnails of the first 200 posts, two-fold, beats chance by a margin."""
    root, _, _, truth, _ = feed
    names = list(CONCEPTS)
    x, y = [], []
    for t in truth[:200]:
        im = t["images"][0]
        if im["corrupt"] or len(im["concepts"]) > 1:
            continue
        with Image.open(root / im["path"]) as f:
            thumb = np.asarray(ImageOps.exif_transpose(f).convert("RGB").resize((8, 8), Image.BILINEAR), float) / 255
        x.append((thumb - thumb.mean((0, 1))).ravel())
        y.append(names.index(im["concepts"][0]))
    x, y = np.array(x), np.array(y)
    half = len(y) // 2
    accuracy = []
    for train, test in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
        centroids = np.array([x[train][y[train] == c].mean(0) for c in range(len(names))])
        pred = ((x[test][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        accuracy.append((pred == y[test]).mean())
    majority = np.bincount(y).max() / len(y)
    assert np.mean(accuracy) > max(2 / len(names), majority + 0.08)


def test_sizes_vary(feed):
    _, summary, _, truth, _ = feed
    sizes = Counter((im["width"], im["height"]) for im in images_of(truth))
    assert sizes[(96, 96)] > 300 and summary.n_non_square >= 20 and len(sizes) >= 5


def test_concept_synsets_exist_in_wordnet():
    from tagsight.tags.wordnet import WordNetMissing, load_wordnet

    try:
        wn = load_wordnet()
    except WordNetMissing as exc:
        pytest.skip(f"WordNet not installed: {exc}")
    for concept, name in CONCEPTS.items():
        synset = wn.synset(name)
        assert concept in synset.lemma_names() and synset.pos() == "n"
    assert set(SPELLINGS) == set(CONCEPTS)


@pytest.mark.parametrize("change, field", [
    ({"n_posts": 0}, "n_posts"), ({"image_size": 8}, "image_size"), ({"p_gps": 1.5}, "p_gps"),
    ({"p_wrong": -0.1}, "p_wrong"), ({"n_corrupt": 5, "n_posts": 4}, "n_corrupt"), ({"seed": 1.5}, "seed"),
])
def test_bad_config_is_refused_with_a_clear_message(change, field):
    with pytest.raises(ValueError, match=field):
        FeedConfig(**change)
