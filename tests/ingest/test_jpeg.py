"""JPEG decoding by simplejpeg where it gives Pillow's pixels: the same stored bytes, metadata rules unchanged."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
from PIL import Image

from tagsight.ingest import images, jpeg
from tagsight.ingest.images import ImageConfig, ImageRejected, process_image

pytest.importorskip("simplejpeg")

CFG = ImageConfig(max_side=64)


def texture(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return coarse.resize((width, height), Image.Resampling.BICUBIC)


def encode(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


@pytest.fixture
def spy(monkeypatch) -> list[bool]:
    """Each call of the fast decoder: True when it decoded, False when it left the JPEG to Pillow."""
    calls: list[bool] = []
    original = jpeg.decode_rgb

    def recorded(data: bytes, reduce: int, size: tuple[int, int]) -> Image.Image | None:
        out = original(data, reduce, size)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(jpeg, "decode_rgb", recorded)
    return calls


def without_simplejpeg(monkeypatch, data: bytes, cfg: ImageConfig = CFG) -> images.ProcessedImage | str:
    with monkeypatch.context() as m:
        m.setattr(jpeg, "simplejpeg_decoder", lambda: None)
        try:
            return process_image(data, cfg)
        except ImageRejected as exc:
            return exc.reason


def test_the_probe_passes_here():
    assert jpeg.simplejpeg_decoder() is not None


@pytest.mark.parametrize("size", [(97, 61), (160, 160), (64, 40), (1000, 700), (530, 300)])
@pytest.mark.parametrize("options", [{"subsampling": 0}, {"subsampling": 1}, {"subsampling": 2},
                                     {"progressive": True}, {"quality": 30}])
def test_fast_decoding_stores_the_same_bytes(monkeypatch, spy, size, options):
    """Full size and every DCT scale ``draft`` picks (1000 px to 64: 1/8; 530: 1/4; 160: 1/2)."""
    data = encode(texture(size[0], *size), **options)
    fast = process_image(data, CFG)
    assert spy == [True]
    assert without_simplejpeg(monkeypatch, data) == fast


def test_metadata_is_still_dropped_on_the_fast_path(spy):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0112] = 1  # upright: nothing to rotate
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    data = encode(texture(1, 80, 80), exif=exif, comment=b"secret comment", icc_profile=b"\0" * 200)
    result = process_image(data, CFG)
    assert spy == [True]
    assert result.had_gps and result.had_metadata
    stored = Image.open(io.BytesIO(result.jpeg))
    assert not stored.getexif() and not {"icc_profile", "exif", "comment", "xmp"} & set(stored.info)
    for marker in (b"Exif", b"GPS", b"SecretCam", b"secret comment"):
        assert marker not in result.jpeg


def test_a_photo_to_rotate_is_decoded_by_pillow(monkeypatch, spy):
    raw = Image.new("RGB", (48, 32), "red")
    raw.paste((0, 0, 255), (24, 0, 48, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    for data in (encode(raw, exif=exif), encode(raw, xmp=xmp)):
        result = process_image(data, CFG)
        assert (result.width, result.height) == (32, 48)  # rotated
        assert without_simplejpeg(monkeypatch, data) == result
    assert spy == []


def test_broken_streams_are_left_to_pillow(monkeypatch, spy):
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    truncated = data[: len(data) // 2]
    with pytest.raises(ImageRejected) as info:
        process_image(truncated, CFG)
    assert info.value.reason == "truncated_image" and spy == [False]
    extraneous = data[:-2] + b"\x00junk" + data[-2:]  # a decoder warning; Pillow still decodes it
    expected = without_simplejpeg(monkeypatch, extraneous)
    spy.clear()
    assert process_image(extraneous, CFG) == expected
    assert spy == [False]


def test_greyscale_and_cmyk_are_decoded_by_pillow(spy):
    process_image(encode(Image.new("L", (40, 40), 90)), CFG)
    process_image(encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0))), CFG)
    assert spy == []


@pytest.mark.parametrize("off_by", [0, 1])
def test_a_decoder_that_differs_from_pillow_is_not_used(monkeypatch, off_by):
    fake = types.ModuleType("simplejpeg")

    def decode_jpeg(data, colorspace, **kw):  # Pillow's pixels, ``off_by`` units off in every pixel
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", (img.width // kw["min_factor"], img.height // kw["min_factor"]))  # that DCT scale
        return np.asarray(img.convert(colorspace)) ^ np.uint8(off_by)

    fake.decode_jpeg = decode_jpeg  # type: ignore[attr-defined]
    jpeg.simplejpeg_decoder.cache_clear()
    monkeypatch.setitem(sys.modules, "simplejpeg", fake)
    try:
        assert jpeg.simplejpeg_decoder() is (None if off_by else fake)
        fast = jpeg.decode_rgb(encode(texture(3, 40, 40)), 1, (40, 40))
        assert (fast is None) == bool(off_by)
    finally:
        monkeypatch.undo()
        jpeg.simplejpeg_decoder.cache_clear()
    assert jpeg.simplejpeg_decoder() is not None


def test_encoding_reads_pillows_memory_and_writes_pillows_bytes():
    pytest.importorskip("cv2")
    assert jpeg.cv2_encoder() is not None
    small = texture(4, 45, 31)
    view = jpeg._rgbx_view(small)
    assert view is not None and view.shape == (31, 45, 4)
    assert np.array_equal(view[..., :3], np.asarray(small))
    large = texture(5, 2100, 2100)  # 17.6 MB: more than one of Pillow's memory blocks, so no single buffer
    assert jpeg._rgbx_view(large) is None
    for img in (small, large):
        assert jpeg.encode_clean(img, 85) == jpeg.pillow_jpeg(img, 85)


# ------------------------------------------------------------------------------------ plain JPEGs


def test_plain_header_accepts_only_jpegs_with_nothing_but_pixels():
    img = texture(6, 50, 30)
    assert jpeg.plain_header(encode(img)) == (50, 30)  # Pillow writes a JFIF APP0 and the tables
    assert jpeg.plain_header(encode(img, progressive=True)) == (50, 30)
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>'
    for data in (encode(img, exif=exif), encode(img, icc_profile=b"\0" * 64), encode(img, comment=b"hello"),
                 encode(img, xmp=xmp), encode(img.convert("L")), encode(img.convert("CMYK")),
                 encode(img)[:20], b"\x89PNG\r\n\x1a\n" + bytes(40), b""):
        assert jpeg.plain_header(data) is None
    data = encode(img)
    sos = data.index(b"\xff\xda")
    assert jpeg.plain_header(data[:sos]) is None  # no scan: not for the fast path


@pytest.fixture
def pillow_opens(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = images._open_checked

    def recorded(data: bytes, cfg: ImageConfig) -> Image.Image:
        calls.append(len(data))
        return original(data, cfg)

    monkeypatch.setattr(images, "_open_checked", recorded)
    return calls


def test_a_plain_jpeg_is_not_opened_by_pillow_and_stores_the_same(monkeypatch, pillow_opens):
    data = encode(texture(7, 100, 90))
    fast = process_image(data, CFG)
    assert pillow_opens == []
    assert not fast.had_gps and not fast.had_metadata and (fast.source_width, fast.source_height) == (100, 90)
    assert without_simplejpeg(monkeypatch, data) == fast
    assert pillow_opens == [len(data)]


def test_a_plain_jpeg_that_does_not_decode_is_opened_by_pillow(pillow_opens):
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageRejected) as info:
        process_image(data[: len(data) * 2 // 3], CFG)
    assert info.value.reason == "truncated_image" and len(pillow_opens) == 1


@pytest.mark.parametrize("cfg, size, reason", [(ImageConfig(max_side=64, min_side=20), (30, 12), "tiny_image"),
                                               (ImageConfig(max_side=64, max_pixels=900), (40, 40), "too_many_pixels")])
def test_plain_jpegs_are_checked_as_pillow_checks_them(monkeypatch, cfg, size, reason):
    data = encode(texture(8, *size))
    with pytest.raises(ImageRejected) as info:
        process_image(data, cfg)
    assert info.value.reason == reason
    with monkeypatch.context() as m:
        m.setattr(jpeg, "simplejpeg_decoder", lambda: None)
        with pytest.raises(ImageRejected) as pillow:
            process_image(data, cfg)
    assert (pillow.value.reason, str(pillow.value)) == (reason, str(info.value))


def test_pillows_bomb_guard_still_applies(monkeypatch, pillow_opens):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageRejected) as info:
        process_image(encode(texture(9, 40, 40)), CFG)
    assert info.value.reason == "too_many_pixels" and len(pillow_opens) == 1
