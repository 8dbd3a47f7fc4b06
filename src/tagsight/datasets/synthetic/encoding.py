"""Encoding the rendered photos as files: EXIF with GPS and orientation, near copies, broken files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tagsight.datasets.synthetic.config import FeedConfig, NOT_AN_IMAGE, STORE_TRANSPOSE
from tagsight.datasets.synthetic.drawing import render_photo
from tagsight.datasets.synthetic.records import FeedImage, FeedPost


# ---------------------------------------------------------------- encoding

def _exif_bytes(im: FeedImage, created_at: str) -> bytes:
    """A camera-like EXIF block: make/model, date, Orientation when rotated, GPS IFD when located."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "TagsightCam", "Synth 1"
    exif[0x0132] = created_at.replace("-", ":").replace("T", " ").rstrip("Z")
    if im.orientation:
        exif[0x0112] = im.orientation
    if im.gps:
        lat, lon = im.gps
        exif[0x8825] = {0: b"\x02\x02\x00\x00", 1: "N" if lat >= 0 else "S", 2: _dms(lat),
                        3: "E" if lon >= 0 else "W", 4: _dms(lon)}
    return exif.tobytes()


def _dms(deg: float) -> tuple[float, float, float]:
    deg = abs(deg)
    d, rem = int(deg), (abs(deg) - int(deg)) * 60
    return float(d), float(int(rem)), round((rem - int(rem)) * 60, 2)


def _encode(photo: Image.Image, im: FeedImage, created_at: str) -> bytes:
    """The file bytes of an original photo: rotated as the camera stored it, EXIF when it has GPS."""
    buf = io.BytesIO()
    if im.fmt == "png":
        (photo.convert("RGBA") if im.rgba else photo).save(buf, "PNG")
        return buf.getvalue()
    if im.orientation:
        photo = photo.transpose(STORE_TRANSPOSE[im.orientation])
    exif = _exif_bytes(im, created_at) if im.gps or im.orientation else b""
    photo.save(buf, "JPEG", quality=im.quality, exif=exif)
    return buf.getvalue()


def _near_copy(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """A repost as apps make it: decoded upright, shrunk to 80 %, re-encoded at lower quality, no EXIF."""
    with Image.open(io.BytesIO(data)) as src:
        photo = ImageOps.exif_transpose(src).convert("RGB")
    size = (max(8, photo.width * 4 // 5), max(8, photo.height * 4 // 5))
    buf = io.BytesIO()
    photo.resize(size, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=70)
    return buf.getvalue(), size


def _corrupt(data: bytes, kind: str) -> bytes:
    return data[: max(16, len(data) * 2 // 5)] if kind == "truncated" else NOT_AN_IMAGE


def render_media(cfg: FeedConfig, posts: list[FeedPost], media_dir: Path) -> None:
    """Draw, encode and write every photo, in post order (reposts copy files written before them)."""
    written: dict[str, bytes] = {}
    for i, post in enumerate(posts):
        for j, im in enumerate(post.images):
            if im.duplicate_of is not None:
                src, kind = im.duplicate_of
                data = written[src.file]
                if kind == "near":
                    data, im.size = _near_copy(data)
            else:
                photo = render_photo(im.concepts, im.size, np.random.default_rng([cfg.seed, i, j]), im.background)
                data = _encode(photo, im, post.created_at)
                data = _corrupt(data, im.corrupt) if im.corrupt else data
            written[im.file] = data
            (media_dir / media_filename(im)).write_bytes(data)


def media_filename(im: FeedImage) -> str:
    """The file name of an image under ``media/`` (``.png`` or ``.jpg`` by its format)."""
    return f"{im.file}.{'png' if im.fmt == 'png' else 'jpg'}"
