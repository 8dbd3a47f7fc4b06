"""Image sanitising: every case is a real file made with Pillow in tmp_path."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.JpegImagePlugin import JpegImageFile

from tagsight.ingest import images, jpeg
from tagsight.ingest.images import (
    ImageConfig,
    ImageRejected,
    hamming,
    phash,
    process_image,
    read_media,
    resolve_media_path,
)

CFG = ImageConfig(max_side=64)
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="SecretTool"/></rdf:RDF></x:xmpmeta>')


# ------------------------------------------------------------------------------------ helpers


def encode(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def texture(seed: int, size: int = 64) -> Image.Image:
    """A smooth random RGB picture (coarse noise upsampled), different for each seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return coarse.resize((size, size), Image.Resampling.BICUBIC)


def decoded(result: images.ProcessedImage) -> Image.Image:
    img = Image.open(io.BytesIO(result.jpeg))
    assert img.format == "JPEG" and img.mode == "RGB"
    return img


def rejected(data: bytes, cfg: ImageConfig = CFG) -> str:
    with pytest.raises(ImageRejected) as info:
        process_image(data, cfg)
    assert str(info.value)  # a human message accompanies every reason
    return info.value.reason


def png_1bit(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG written row-wise, so huge sizes cost only a few KB."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    body = b"".join(comp.compress(row * 500) for _ in range(height // 500)) + comp.compress(row * (height % 500))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body + comp.flush()) + chunk(b"IEND", b"")


def metadata_jpeg() -> bytes:
    """A JPEG carrying GPS EXIF, XMP, an ICC profile and a COM comment."""
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(texture(1), exif=exif, icc_profile=icc, xmp=XMP, comment=b"secret comment")


# ------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("kwargs", [{"max_side": 0}, {"jpeg_quality": 0}, {"jpeg_quality": 101}, {"max_pixels": -1},
                                    {"max_bytes": 0}, {"min_side": 500}, {"blur_faces": "yes"}, {"max_side": 1.5}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ImageConfig(**kwargs)


# ------------------------------------------------------------------------------------ decoding


def test_plain_jpeg_is_resized_down_and_hashed(tmp_path):
    data = encode(texture(0, 96).resize((96, 72)))
    result = process_image(data, CFG)
    assert (result.width, result.height) == (64, 48) == decoded(result).size
    assert (result.source_width, result.source_height) == (96, 72)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert 0 <= result.phash < 2**64
    assert not result.had_gps and not result.had_metadata and result.faces_blurred == 0


def test_small_image_is_never_upscaled():
    result = process_image(encode(texture(0, 40)), CFG)
    assert (result.width, result.height) == (40, 40)


def test_large_jpeg_uses_reduced_decoding(monkeypatch):
    calls = []
    original = JpegImageFile.draft
    monkeypatch.setattr(JpegImageFile, "draft", lambda self, mode, size: calls.append(size) or original(self, mode, size))
    result = process_image(encode(texture(2, 1024).resize((1024, 768))), CFG)
    assert (result.width, result.height) == (64, 48)
    assert (result.source_width, result.source_height) == (1024, 768)
    assert calls and calls[0][0] >= 64  # asked for a DCT-scaled decode no smaller than the target


def test_same_input_gives_same_bytes():
    data = metadata_jpeg()
    assert process_image(data, CFG).jpeg == process_image(data, CFG).jpeg


def test_truncated_jpeg():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    assert rejected(data[: len(data) // 2]) == "truncated_image"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not an image\n")
    assert rejected(read_media(tmp_path, "photo.jpg", CFG)) == "not_an_image"


def test_unaccepted_format_is_unsupported():
    assert rejected(encode(texture(0, 32), "PPM")) == "unsupported_image"


def test_tiny_image():
    assert rejected(encode(Image.new("RGB", (40, 4), "red"), "PNG")) == "tiny_image"


def test_decompression_bomb_is_rejected_from_the_header():
    bomb = png_1bit(20000, 20000)  # 400 Mpx in a few KB: beyond Pillow's own guard too
    assert len(bomb) < 100_000
    assert rejected(bomb) == "too_many_pixels"
    assert rejected(bomb, ImageConfig(max_pixels=10**10)) == "too_many_pixels"  # Pillow's error maps too


def test_pixel_limit_from_config():
    data = encode(Image.new("P", (1200, 1000)), "PNG")
    assert rejected(data, ImageConfig(max_side=64, max_pixels=1_000_000)) == "too_many_pixels"
    assert process_image(data, ImageConfig(max_side=64, max_pixels=1_200_000)).width == 64


def test_pillow_bomb_warning_maps_to_too_many_pixels(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600 px: Pillow warns (above 2000 it errors)
    assert rejected(encode(Image.new("L", (40, 40)), "PNG")) == "too_many_pixels"


def test_cmyk_jpeg_becomes_rgb():
    result = process_image(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0))), CFG)
    r, g, b = decoded(result).getpixel((16, 16))
    assert r > 220 and g < 40 and b < 40


def test_16bit_png_keeps_its_gradient():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    stored = np.asarray(decoded(process_image(data, CFG)).convert("L"), dtype=float)
    assert 100 < stored.mean() < 155
    assert stored[:, :4].mean() < 30 and stored[:, -4:].mean() > 225


def test_palette_png_transparency_becomes_white():
    img = Image.new("P", (32, 32), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red (transparent), 1 blue
    img.paste(1, (16, 0, 32, 32))
    stored = decoded(process_image(encode(img, "PNG", transparency=0), CFG))
    assert min(stored.getpixel((4, 16))) > 245
    r, g, b = stored.getpixel((28, 16))
    assert b > 200 and r < 40


def test_rgba_alpha_becomes_white():
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    img.paste((0, 128, 0, 255), (16, 0, 32, 32))
    stored = decoded(process_image(encode(img, "PNG"), CFG))
    assert min(stored.getpixel((4, 16))) > 245 and stored.getpixel((28, 16))[1] > 100


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_keeps_the_first_frame(fmt):
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "lime", "blue")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    r, g, b = decoded(process_image(data, CFG)).getpixel((16, 16))
    assert r > 200 and g < 50 and b < 50


def test_greyscale_becomes_rgb():
    stored = decoded(process_image(encode(Image.new("L", (32, 32), 90)), CFG))
    assert abs(stored.getpixel((5, 5))[0] - 90) < 4


def test_exif_orientation_is_applied():
    raw = Image.new("RGB", (48, 32), "red")
    raw.paste((0, 0, 255), (24, 0, 48, 32))  # stored left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    result = process_image(encode(raw, exif=exif), CFG)
    stored = decoded(result)
    assert (result.width, result.height) == stored.size == (32, 48)
    assert (result.source_width, result.source_height) == (48, 32)
    top, bottom = stored.getpixel((16, 6)), stored.getpixel((16, 42))
    assert top[0] > 200 and top[2] < 50 and bottom[2] > 200 and bottom[0] < 50
    assert result.had_metadata and not result.had_gps


def test_metadata_is_stripped():
    data = metadata_jpeg()
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825)[1] == "N"  # the fixture really carries GPS
    assert {"icc_profile", "xmp", "comment", "exif"} <= set(source.info)
    for marker in (b"Exif", b"SecretCam", b"http://ns.adobe.com/xap/", b"secret comment", b"acsp"):
        assert marker in data
    result = process_image(data, CFG)
    assert result.had_gps and result.had_metadata
    stored = decoded(result)
    assert not stored.getexif()
    assert not {"icc_profile", "xmp", "exif", "comment"} & set(stored.info)
    for marker in (b"Exif", b"GPS", b"SecretCam", b"http://ns.adobe.com/xap/", b"secret comment", b"acsp"):
        assert marker not in result.jpeg


def test_gps_in_png_xmp_is_reported_and_dropped():
    from PIL.PngImagePlugin import PngInfo

    xmp = XMP.decode().replace('xmp:CreatorTool="SecretTool"', 'xmlns:exif="http://ns.adobe.com/exif/1.0/" '
                               'exif:GPSLatitude="52,31.2N"')
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    data = encode(texture(4), "PNG", pnginfo=info)
    assert b"GPSLatitude" in data
    result = process_image(data, CFG)
    assert result.had_gps and result.had_metadata
    assert b"GPSLatitude" not in result.jpeg and b"adobe" not in result.jpeg


def test_face_blur_flag_runs_the_blur(monkeypatch):
    from tagsight.privacy import faces

    monkeypatch.setattr(faces, "detect_faces", lambda img: [(8, 8, 16, 16)])
    data = encode(texture(3))
    plain = process_image(data, CFG)
    blurred = process_image(data, ImageConfig(max_side=64, blur_faces=True))
    assert blurred.faces_blurred == 1 and plain.faces_blurred == 0
    assert blurred.jpeg != plain.jpeg and blurred.phash == plain.phash  # phash is taken before the blur


# ------------------------------------------------------------------------------------ hashes


def test_phash_is_stable_under_reencoding_and_distinct_across_images():
    a = texture(10, 64)
    copy = Image.open(io.BytesIO(encode(a.resize((58, 58), Image.Resampling.BILINEAR), quality=75)))
    assert hamming(phash(a), phash(copy)) <= 4
    others = [texture(seed, 64) for seed in range(11, 16)]
    assert all(hamming(phash(a), phash(b)) > 10 for b in others)


def test_phash_thresholds_at_the_median():
    for seed in range(5):
        h = phash(texture(seed))
        assert h >> 63 == 1  # the DC term (brightness) is the top bit and exceeds the AC median
        assert bin(h).count("1") == 32  # 31 of the 63 AC terms lie above their median, plus DC


def test_hamming():
    assert hamming(0, 2**64 - 1) == 64 and hamming(0b1011, 0b0001) == 2 and hamming(5, 5) == 0


# ------------------------------------------------------------------------------------ paths


@pytest.mark.parametrize("rel", ["../x.jpg", "/etc/passwd", "sub/../../x", "sub/..", "a/../b.jpg", "..\\x.jpg",
                                 "C:\\x.jpg", "c:x.jpg", "\\\\server\\share\\x.jpg", "//server/share/x.jpg",
                                 "file:///etc/passwd", "FILE://x.jpg", "a\0b.jpg"])
def test_escaping_paths(tmp_path, rel):
    with pytest.raises(ImageRejected) as info:
        resolve_media_path(tmp_path, rel)
    assert info.value.reason == "path_escapes_root"


@pytest.mark.parametrize("rel", ["http://example.com/a.jpg", "HTTPS://example.com/a.jpg", "s3://bucket/a.jpg"])
def test_urls_are_not_fetched(tmp_path, rel):
    with pytest.raises(ImageRejected) as info:
        read_media(tmp_path, rel, CFG)
    assert info.value.reason == "remote_media_unsupported"


@pytest.fixture
def tree(tmp_path):
    """root/ with a photo, a link to it, and links to a secret file and folder outside root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "photo.jpg").write_bytes(encode(texture(0, 32)))
    (outside / "secret.jpg").write_bytes(encode(texture(1, 32)))
    (root / "inside_link.jpg").symlink_to(root / "sub" / "photo.jpg")
    (root / "outside_link.jpg").symlink_to(outside / "secret.jpg")
    (root / "outside_dir").symlink_to(outside, target_is_directory=True)
    (root / "relative_link.jpg").symlink_to(Path("..") / "outside" / "secret.jpg")
    return root


@pytest.mark.parametrize("rel", ["outside_link.jpg", "outside_dir/secret.jpg", "relative_link.jpg",
                                 "sub/../outside_dir/secret.jpg"])
def test_symlinks_out_of_root_are_rejected_before_opening(tree, monkeypatch, rel):
    opened = []
    real_os_open, real_open = os.open, builtins.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_os_open(p, *a, **k))
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read_bytes({self})"))
    with pytest.raises(ImageRejected) as info:
        read_media(tree, rel, CFG)
    assert info.value.reason == "path_escapes_root"
    assert opened == []
    assert read_media(tree, "sub/photo.jpg", CFG)  # the spies do see a legitimate read
    assert any(p.endswith("photo.jpg") for p in opened)


def test_symlink_inside_root_is_allowed(tree):
    assert read_media(tree, "inside_link.jpg", CFG) == (tree / "sub" / "photo.jpg").read_bytes()
    assert resolve_media_path(tree, "inside_link.jpg") == (tree / "sub" / "photo.jpg").resolve()


def test_root_given_through_a_symlink(tree, tmp_path):
    (tmp_path / "root_link").symlink_to(tree, target_is_directory=True)
    assert read_media(tmp_path / "root_link", "sub/photo.jpg", CFG)


def read_reason(root: Path, rel: str, cfg: ImageConfig = CFG, sha: str | None = None) -> str:
    with pytest.raises(ImageRejected) as info:
        read_media(root, rel, cfg, expected_sha256=sha)
    return info.value.reason


def test_missing_empty_and_large_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "big.jpg").write_bytes(b"\xff" * 2000)
    assert read_reason(tmp_path, "nope.jpg") == "media_missing"
    assert read_reason(tmp_path, "big.jpg/x.jpg") == "media_missing"
    assert read_reason(tmp_path, "empty.jpg") == "media_empty"
    assert read_reason(tmp_path, "big.jpg", ImageConfig(max_bytes=1000)) == "file_too_large"
    assert len(read_media(tmp_path, "big.jpg", ImageConfig(max_bytes=2000))) == 2000


def test_directories_and_fifos_are_not_files(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    os.mkfifo(tmp_path / "pipe.jpg")
    assert read_reason(tmp_path, "folder.jpg") == "media_not_a_file"
    def hung(signum, frame):
        raise TimeoutError("opening a FIFO blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        assert read_reason(tmp_path, "pipe.jpg") == "media_not_a_file"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_declared_sha256_is_checked(tmp_path):
    data = encode(texture(0, 32))
    (tmp_path / "a.jpg").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert read_media(tmp_path, "a.jpg", CFG, expected_sha256=digest.upper()) == data
    assert read_reason(tmp_path, "a.jpg", sha="0" * 64) == "sha256_mismatch"


def test_opencv_encoder_writes_exactly_pillows_bytes(monkeypatch):
    """With or without OpenCV the stored JPEG (and so the dataset version) is the same."""
    pytest.importorskip("cv2")
    assert jpeg.cv2_encoder() is not None  # the probe check passed on this machine
    for seed in range(4):
        img = texture(seed, 40 + 17 * seed).resize((45 + seed, 31 + 2 * seed))
        for q in (60, 90):
            assert jpeg.encode_clean(img, q) == jpeg.pillow_jpeg(img, q)
    data = encode(texture(9, 96))
    with_cv2 = process_image(data, CFG)
    monkeypatch.setattr(jpeg, "cv2_encoder", lambda: None)
    assert process_image(data, CFG) == with_cv2


def test_a_folder_swapped_for_an_outside_link_is_rejected_in_the_next_run(tree, tmp_path):
    assert read_media(tree, "sub/photo.jpg", CFG)
    (tree / "sub" / "photo.jpg").rename(tmp_path / "moved.jpg")
    (tree / "sub").rmdir()
    (tree / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside" / "photo.jpg").write_bytes(b"secret")
    images.start_run()  # what ingest() does first
    with pytest.raises(ImageRejected) as info:
        read_media(tree, "sub/photo.jpg", CFG)
    assert info.value.reason == "path_escapes_root"


# ------------------------------------------------------------------------------------ batches


def _mixed_inputs() -> list[bytes]:
    """Photos of several sizes and formats with rejections between them."""
    cmyk = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)))
    transparent = encode(texture(5, 40).convert("RGBA"), "PNG")
    return [encode(texture(1, 200)), b"not an image at all", encode(texture(2, 30)), encode(texture(3, 4)),
            encode(texture(4, 100))[:300], cmyk, transparent, encode(texture(6, 90).resize((90, 40))),
            encode(texture(7, 64), "PNG"), encode(texture(8, 128))]


def _one_at_a_time(data: bytes, cfg: ImageConfig) -> images.ProcessedImage | str:
    try:
        return process_image(data, cfg)
    except ImageRejected as exc:
        return exc.reason


@pytest.mark.parametrize("budget", [images.BATCH_PIXELS, 2_000])
def test_process_batch_gives_each_image_what_process_image_gives(monkeypatch, budget):
    monkeypatch.setattr(images, "BATCH_PIXELS", budget)  # 2,000: every image decoded in a group of its own
    datas = _mixed_inputs()
    batch = images.process_batch(datas, CFG)
    assert [r.reason if isinstance(r, ImageRejected) else r for r in batch] == \
        [_one_at_a_time(d, CFG) for d in datas]
    assert [r.reason for r in batch if isinstance(r, ImageRejected)] == \
        ["not_an_image", "tiny_image", "truncated_image"]


def test_pixel_groups_keep_decoded_pixels_under_the_budget(monkeypatch):
    monkeypatch.setattr(images, "BATCH_PIXELS", 10_000)
    work = []
    for side in (50, 50, 50, 50, 150, 20):  # 2,500 px each, then one alone over the budget, then a small one
        w = images._Work(b"")
        w.source_size = (side, side)
        work.append(w)
    work[1].out = ImageRejected("not_an_image", "rejected before decoding: not in any group")
    groups = [[work.index(w) for w in g] for g in images._pixel_groups(work)]
    assert groups == [[0, 2, 3], [4], [5]]
