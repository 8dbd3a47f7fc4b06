"""HEIC and AVIF photos: decoded when a decoder is installed, refused with the format's name otherwise."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, features

from tagsight.ingest import heif
from tagsight.ingest.images import ImageConfig, ImageRejected, process_image

CFG = ImageConfig(max_side=64)


def photo(size=(80, 60)) -> Image.Image:
    """A smooth picture: left half red, right half blue."""
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    arr[:, : size[0] // 2] = (220, 30, 30)
    arr[:, size[0] // 2:] = (30, 30, 220)
    return Image.fromarray(arr)


def gps_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return exif.tobytes()


@pytest.fixture(scope="module")
def heic_bytes() -> bytes:
    """A real HEIC made by pillow-heif's encoder (x265), with EXIF carrying GPS as a phone writes it."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (extra 'heif') is not installed")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this pillow-heif build has no HEIC encoder")
    heif.register()
    buf = io.BytesIO()
    photo().save(buf, "HEIF", quality=90, exif=gps_exif())
    return buf.getvalue()


@pytest.fixture(scope="module")
def avif_bytes() -> bytes:
    """A real AVIF made by Pillow's own encoder."""
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    buf = io.BytesIO()
    photo().save(buf, "AVIF", quality=90)
    return buf.getvalue()


def _colours(jpeg: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return img.getpixel((5, img.height // 2)), img.getpixel((img.width - 5, img.height // 2))


def test_a_real_heic_photo_is_decoded_and_its_gps_dropped(heic_bytes):
    assert heif.container_format(heic_bytes) == "heic"
    out = process_image(heic_bytes, CFG)
    assert (out.source_width, out.source_height, out.width, out.height) == (80, 60, 64, 48)
    left, right = _colours(out.jpeg)
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]
    assert out.had_gps and out.had_metadata
    assert b"Exif" not in out.jpeg and b"GPS" not in out.jpeg


def test_a_real_avif_photo_is_decoded(avif_bytes):
    assert heif.container_format(avif_bytes) == "avif"
    out = process_image(avif_bytes, CFG)
    assert (out.width, out.height) == (64, 48)
    left, right = _colours(out.jpeg)
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]


@pytest.mark.parametrize("fixture, fmt", [("heic_bytes", "heic"), ("avif_bytes", "avif")])
def test_without_a_decoder_the_refusal_names_the_format(request, monkeypatch, fixture, fmt):
    data = request.getfixturevalue(fixture)
    monkeypatch.setattr(heif, "register", lambda: frozenset())
    with pytest.raises(ImageRejected) as e:
        process_image(data, CFG)
    assert e.value.reason == f"unsupported_format:{fmt}" and fmt.upper() in str(e.value)


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0" * 32


@pytest.mark.parametrize("data, expected", [
    (_ftyp(b"heic", b"mif1", b"heic"), "heic"),
    (_ftyp(b"heix", b"mif1"), "heic"),
    (_ftyp(b"mif1", b"mif1", b"heic"), "heic"),
    (_ftyp(b"mif1", b"mif1", b"miaf", b"avif"), "avif"),
    (_ftyp(b"avis", b"avis", b"msf1"), "avif"),
    (_ftyp(b"isom", b"isom", b"mp41"), None),  # an MP4 video is not a photo of this family
    (b"\xff\xd8\xff\xe0" + b"\0" * 40, None),
    (b"ftyp", None),
])
def test_container_format_reads_the_ftyp_brands(data, expected):
    assert heif.container_format(data) == expected


def test_a_broken_heic_is_not_called_not_an_image(heic_bytes):
    with pytest.raises(ImageRejected) as e:
        process_image(heic_bytes[: len(heic_bytes) // 2], CFG)
    assert e.value.reason != "not_an_image"


def test_a_rotated_heic_is_turned_upright_once_like_the_same_jpeg(heic_bytes):
    im = photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    outs = []
    for fmt in ("HEIF", "JPEG"):
        buf = io.BytesIO()
        im.save(buf, fmt, exif=exif.tobytes(), quality=95)
        outs.append(Image.open(io.BytesIO(process_image(buf.getvalue(), ImageConfig(max_side=128)).jpeg)))
    heic, jpeg = outs
    assert heic.size == jpeg.size == (60, 80)
    assert heic.getpixel((30, 5))[0] > 150 and jpeg.getpixel((30, 5))[0] > 150  # the red half on top, as in the JPEG
    assert heic.getpixel((30, 75))[2] > 150 and jpeg.getpixel((30, 75))[2] > 150


def test_a_folder_of_phone_photos_keeps_its_heic_and_avif(tmp_path, heic_bytes, avif_bytes):
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source
    from tagsight.privacy.policy import ConsentPolicy

    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "IMG_0001.HEIC").write_bytes(heic_bytes)
    flipped = io.BytesIO()
    photo().transpose(Image.Transpose.FLIP_TOP_BOTTOM).rotate(90, expand=True).save(flipped, "AVIF")
    (tmp_path / "phone" / "IMG_0002.avif").write_bytes(flipped.getvalue())
    summary = ingest(open_source(tmp_path / "phone"), tmp_path / "ds", ConsentPolicy(),
                     IngestConfig(workers=1, image=CFG))
    assert summary.reconciles() and (summary.posts_kept, summary.media_kept) == (2, 2)
    assert summary.gps_removed == 1
