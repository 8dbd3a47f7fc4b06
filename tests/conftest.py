"""Shared tiny fixtures: small images made with Pillow and a mixed-case JSONL source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(os.environ.get("TAGSIGHT_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real data folder; skips the test with the reason when it is absent."""
    if not (SHARED_DATA / "imagenette-160").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set TAGSIGHT_DATA or put shared/ beside the repo)")
    return SHARED_DATA.resolve()


def picture(seed: int, size=(48, 40)) -> Image.Image:
    """A distinct smooth RGB picture per seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return coarse.resize(size, Image.Resampling.BICUBIC)


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return exif


def save(img: Image.Image, path: Path, fmt: str = "JPEG", **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


@pytest.fixture
def make_picture():
    return picture


@pytest.fixture
def mixed_source(tmp_path: Path):
    """A JSONL source mixing every case ingest must handle. Returns (path, expectations)."""
    root = tmp_path / "src"
    media = root / "media"
    posts, expect = [], {}

    def add(pid, reason, files=(), **kw):
        posts.append(json.dumps({"post_id": pid, "author_id": kw.pop("author", "ann"),
                                 "created_at": "2024-03-01T12:00:00Z", "visibility": kw.pop("vis", "public"),
                                 "media": [f"media/{f}" if not f.startswith(("/", "..", "http")) else f for f in files],
                                 **kw}, ensure_ascii=False))
        expect[pid] = reason

    for i in range(4):
        save(picture(i), media / f"ok{i}.jpg", exif=gps_exif() if i % 2 == 0 else Image.Exif())
        add(f"ok{i}", None, [f"ok{i}.jpg"], caption=f"nice #Photo{i} #tbt")
    save(picture(10), media / "private.jpg")
    add("private", "visibility_private", ["private.jpg"], vis="private")
    add("refused", "consent_refused", ["private.jpg"], consent={"ai_training": False})
    add("optout", "author_opted_out", ["private.jpg"], author="olga")
    add("noai", "optout_hashtag", ["private.jpg"], caption="mine #N\u200bo_AI")
    (media / "trunc.jpg").write_bytes((media / "ok0.jpg").read_bytes()[:200])
    add("trunc", "no_usable_media", ["trunc.jpg"])
    (media / "zero.jpg").write_bytes(b"")
    add("zero", "no_usable_media", ["zero.jpg"])
    (media / "text.jpg").write_text("hello, not an image")
    add("text", "no_usable_media", ["text.jpg"])
    save(picture(11, (900, 900)), media / "big.png", "PNG")
    add("bomb", "no_usable_media", ["big.png"])
    save(picture(12).convert("CMYK"), media / "cmyk.jpg")
    add("cmyk", None, ["cmyk.jpg"])
    arr = (np.linspace(0, 65535, 48 * 40).reshape(40, 48)).astype(np.uint16)
    save(Image.fromarray(arr), media / "deep.png", "PNG")
    add("deep", None, ["deep.png"])
    pal = picture(13).convert("P", palette=Image.Palette.ADAPTIVE)
    save(pal, media / "pal.png", "PNG", transparency=0)
    add("palette", None, ["pal.png"])
    frames = [picture(14 + k) for k in range(3)]
    save(frames[0], media / "anim.gif", "GIF", save_all=True, append_images=frames[1:])
    add("animated", None, ["anim.gif"])
    rot = Image.Exif()
    rot[0x0112] = 6
    save(picture(17, (60, 30)), media / "rotated.jpg", exif=rot)
    add("rotated", None, ["rotated.jpg"])
    outside = save(picture(18), tmp_path / "outside.jpg")
    (media / "link.jpg").symlink_to(outside)
    add("symlink", "no_usable_media", ["link.jpg"])
    add("dotdot", "no_usable_media", ["../outside.jpg"])
    add("absolute", "no_usable_media", [str(outside)])
    add("remote", "no_usable_media", ["https://example.org/x.jpg"])
    add("repost", "duplicate_media", ["ok1.jpg"])
    save(picture(2).resize((96, 80)), media / "near.jpg", quality=85)
    add("near", "duplicate_media", ["near.jpg"])
    add("multi", None, ["ok3.jpg", "trunc.jpg", "multi.jpg"])
    save(picture(19), media / "multi.jpg")
    add("weird_tags", None, ["w.jpg"], hashtags=["café", "dog\u200bsofinstagram", "🐶", "\u202ebidi"])
    save(picture(20), media / "w.jpg")
    add("many_tags", "too_many_hashtags", ["w.jpg"], hashtags=[f"t{i}" for i in range(3000)])
    add("nomedia", "no_media", [])
    add("ok0", "duplicate_post_id", ["w.jpg"])
    expect.update({"<malformed>": "malformed_json", "<utf8>": "invalid_utf8", "nofields": "missing_field:author_id"})
    raw = "\n".join(posts + ['{"post_id": "broken", ']).encode() + b"\n\xff\xfe invalid utf8\n"
    raw += json.dumps({"post_id": "nofields"}).encode() + b"\n"
    (root / "posts.jsonl").write_bytes(raw)
    (root / "optout.txt").write_text("olga\n")
    return root / "posts.jsonl", expect


TINY_WORDS = ["dog", "car", "tree", "ball"]


@pytest.fixture
def tiny_dataset(tmp_path: Path):
    """Build a tiny ingested dataset: post p has 1 + p % 2 images, hashtag TINY_WORDS[p % 4], author a{p % 3}
    and p likes; ``pictures`` overrides the images (a function of the image number), ``name`` the folder."""
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    def build(posts: int = 7, pictures=None, name: str = "ds", max_side: int = 32, **cfg) -> Path:
        root = tmp_path / f"{name}-src"
        (root / "media").mkdir(parents=True)
        lines, n = [], 0
        for p in range(posts):
            files = []
            for _ in range(1 + p % 2):
                img = pictures(n) if pictures else picture(100 + n, (40, 36))
                img.save(root / "media" / f"{n}.jpg", quality=90)
                files.append(f"media/{n}.jpg")
                n += 1
            lines.append(json.dumps({"post_id": f"p{p}", "author_id": f"a{p % 3}", "created_at": "2024-01-01T00:00:00Z",
                                     "visibility": "public", "media": files, "hashtags": [TINY_WORDS[p % 4]],
                                     "likes": p}))
        (root / "posts.jsonl").write_text("\n".join(lines) + "\n")
        settings = dict(workers=1, samples_per_shard=5, near_duplicate_radius=None, image=ImageConfig(max_side=max_side))
        ingest(open_source(root / "posts.jsonl", "jsonl"), tmp_path / name, cfg=IngestConfig(**{**settings, **cfg}))
        return tmp_path / name

    return build


def write_class_folders(root: Path, per_class: int = 4, seed: int = 0, classes=("cat", "dog", "owl")) -> Path:
    """root/<class>/<i>.jpg: 32 px images whose colour depends on the class, with a little noise."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((32, 32, 3)) + np.eye(3)[c % 3] * 200
            pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=90)
    return root


@pytest.fixture
def class_folders():
    """``class_folders(root, per_class=4, seed=0)``: labelled 32 px class folders (cat, dog, owl)."""
    return write_class_folders
