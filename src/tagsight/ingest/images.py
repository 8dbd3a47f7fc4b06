"""One media file -> a sanitised, resized JPEG plus its hashes, or a rejection with a stable reason.

Steps, in order: path safety (before anything is opened), bounded read, header checks (format,
pixel count, size), decode (JPEGs decoded at reduced scale with ``draft`` when much larger than
the target), EXIF orientation, colour-mode normalisation to 8-bit RGB, resize (down only),
optional face blur, and JPEG encoding with no metadata at all. The same input bytes and config
always give the same output bytes. JPEGs are decoded by simplejpeg and encoded by OpenCV where these
give Pillow's exact pixels and bytes (``tagsight.ingest.jpeg``); a JPEG with no metadata segment at all
is not opened by Pillow unless that decode fails.

Reason codes (``ImageRejected.reason``):

- paths: ``path_escapes_root``, ``remote_media_unsupported`` (an http(s) URL while fetching is off;
  with fetching on, ``tagsight.ingest.fetch`` reads URLs, with its own reasons),
  ``media_missing``, ``media_not_a_file``, ``media_unreadable``, ``media_empty``,
  ``file_too_large``, ``sha256_mismatch``;
- images: ``not_an_image``, ``too_many_pixels``, ``truncated_image``, ``tiny_image``,
  ``unsupported_image``.

Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``) is left as it is; its warning and error are
both reported as ``too_many_pixels``, so the effective limit is the smaller of the two.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import os
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tagsight.ingest import heif, jpeg
from tagsight.ingest.tree import Tree
from tagsight.ingest.tree_safety import MemberTooLarge, TreeError

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF"})
"""Formats that are decoded; others (EPS runs Ghostscript, PSD, ...) are ``unsupported_image``."""

_METADATA_KEYS = frozenset({"exif", "icc_profile", "xmp", "xml:com.adobe.xmp", "comment", "photoshop", "iptc"})
_GPS_IFD = 0x8825
_ORIENTATION = 0x0112
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:")
_DECODE_ERRORS = (OSError, EOFError, SyntaxError, struct.error)


@dataclass(frozen=True)
class ImageConfig:
    """How stored images are made. Validated at construction."""

    max_side: int = 384
    jpeg_quality: int = 90
    max_pixels: int = 40_000_000
    max_bytes: int = 50 * 2**20
    min_side: int = 8
    blur_faces: bool = False

    def __post_init__(self) -> None:
        for name in ("max_side", "max_pixels", "max_bytes", "min_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ImageConfig.{name} must be a positive integer, got {value!r}")
        if self.min_side > self.max_side:
            raise ValueError(f"ImageConfig.min_side ({self.min_side}) must not exceed max_side ({self.max_side})")
        q = self.jpeg_quality
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
            raise ValueError(f"ImageConfig.jpeg_quality must be an integer in [1, 100], got {q!r}")
        if not isinstance(self.blur_faces, bool):
            raise ValueError(f"ImageConfig.blur_faces must be true or false, got {self.blur_faces!r}")


@dataclass(frozen=True)
class ProcessedImage:
    """A stored image: RGB JPEG bytes without metadata, its sizes and hashes, and what was removed."""

    jpeg: bytes
    width: int
    height: int
    source_width: int
    source_height: int
    sha256: str
    phash: int
    faces_blurred: int
    had_gps: bool
    had_metadata: bool


class ImageRejected(Exception):
    """A media item that is not stored; ``reason`` is a stable code, ``str()`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------- paths


def resolve_media_path(root: Path, rel: str) -> Path:
    """The real path of ``rel`` under ``root``; raises ImageRejected when it is unsafe.

    Purely lexical checks plus symlink resolution: nothing is opened or read. Returns the fully
    resolved path (symlinks followed), which is always inside ``root.resolve()``. The folder part
    is resolved once per folder and process (``clear_path_cache`` forgets it; ``ingest`` does so at
    the start of every run), the file name with one ``lstat``: a symlinked file is resolved in full.
    """
    check_relative_path(rel)
    real_root = _real_root(str(root))
    folder, _, name = rel.rpartition("/")
    candidate = os.path.join(_real_folder(real_root, folder), name) if name else os.path.join(real_root, rel)
    if not name or os.path.islink(candidate):
        return _inside(real_root, os.path.realpath(candidate), rel)
    return Path(candidate)


def _inside(real_root: str, real: str, rel: str) -> Path:
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ImageRejected("path_escapes_root", f"media path {rel!r} resolves outside the source root")
    return Path(real)


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    """The source root with symlinks resolved, computed once per process."""
    return os.path.realpath(root)


@functools.lru_cache(maxsize=4096)
def _real_folder(real_root: str, folder: str) -> str:
    """The real path of ``folder`` under ``real_root``, checked to stay inside it (cached per process)."""
    return str(_inside(real_root, os.path.realpath(os.path.join(real_root, folder)), folder))


def clear_path_cache() -> None:
    """Forget resolved roots and folders (a new run must see symlinks changed since the last one)."""
    _real_root.cache_clear()
    _real_folder.cache_clear()


def start_run() -> None:
    """Call at the start of an ingest run, before worker processes fork: forget resolved folders,
    and import and check the JPEG encoder and decoder once so that forked workers inherit them."""
    clear_path_cache()
    jpeg.cv2_encoder()
    jpeg.simplejpeg_decoder()


def check_relative_path(rel: str) -> None:
    """Reject URLs, absolute, drive/UNC, NUL and ``..`` paths (lexical: no file system access)."""
    if not isinstance(rel, str) or not rel:
        raise ImageRejected("media_missing", f"media path {rel!r} is empty")
    if _URL.match(rel):
        if rel[:7].lower() == "file://":
            raise ImageRejected("path_escapes_root", f"file URL {rel!r} is not a path relative to the source root")
        raise ImageRejected("remote_media_unsupported", f"media {rel!r} is remote and fetching is off "
                            "(turn it on with --fetch, or download the files and give relative paths)")
    if "\0" in rel:
        raise ImageRejected("path_escapes_root", f"media path {rel!r} contains a NUL byte")
    if rel.startswith(("/", "\\")) or _DRIVE.match(rel):
        raise ImageRejected("path_escapes_root", f"media path {rel!r} is absolute; it must be relative to the source root")
    if ".." in re.split(r"[\\/]", rel):
        raise ImageRejected("path_escapes_root", f"media path {rel!r} contains a '..' component")


def read_media(root: Path, rel: str, cfg: ImageConfig, expected_sha256: str | None = None) -> bytes:
    """The bytes of a safe, regular, non-empty file under ``root`` of at most ``cfg.max_bytes``."""
    path = resolve_media_path(root, rel)
    data = _read_regular_file(path, rel, cfg.max_bytes)
    if expected_sha256 is not None:
        _check_sha256(data, rel, expected_sha256)
    return data


def read_tree_media(tree: Tree, rel: str, cfg: ImageConfig, expected_sha256: str | None = None) -> bytes:
    """``read_media`` for a file of a Tree (an archive member), with the same checks and reason codes."""
    check_relative_path(rel)
    try:
        data = tree.read_bytes(rel, cfg.max_bytes)
    except FileNotFoundError:
        raise ImageRejected("media_missing", f"media file {rel!r} does not exist") from None
    except IsADirectoryError:
        raise ImageRejected("media_not_a_file", f"media path {rel!r} is not a regular file") from None
    except MemberTooLarge as exc:
        raise ImageRejected("file_too_large", str(exc)) from None
    except TreeError as exc:
        raise ImageRejected("media_unreadable", f"media file {rel!r} cannot be read: {exc}") from None
    if not data:
        raise ImageRejected("media_empty", f"media file {rel!r} is empty")
    if expected_sha256 is not None:
        _check_sha256(data, rel, expected_sha256)
    return data


def _check_sha256(data: bytes, rel: str, expected: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ImageRejected("sha256_mismatch", f"{rel!r} has sha256 {actual}, the post declares {expected}")


def _read_regular_file(path: Path, rel: str, max_bytes: int) -> bytes:
    """Open without following a final symlink or blocking on a FIFO; check type and size before reading."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageRejected("media_missing", f"media file {rel!r} does not exist") from None
    except OSError as exc:
        raise ImageRejected("media_unreadable", f"media file {rel!r} cannot be opened: {exc.strerror}") from None
    try:
        _check_stat(os.fstat(fd), rel, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    try:
        data = _read_all(fd, max_bytes + 1)
    except OSError as exc:
        raise ImageRejected("media_unreadable", f"media file {rel!r} cannot be read: {exc}") from None
    finally:
        os.close(fd)
    if not data:
        raise ImageRejected("media_empty", f"media file {rel!r} is empty")
    if len(data) > max_bytes:
        raise ImageRejected("file_too_large", f"{rel!r} has more than {max_bytes} bytes")
    return data


def _read_all(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd`` (unbuffered reads until end of file or the limit)."""
    parts, total = [], 0
    while total < limit:
        block = os.read(fd, min(limit - total, 1 << 24))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _check_stat(st: os.stat_result, rel: str, max_bytes: int) -> None:
    """A regular file of at most ``max_bytes``; checked on the open descriptor before reading."""
    if not stat.S_ISREG(st.st_mode):
        raise ImageRejected("media_not_a_file", f"media path {rel!r} is not a regular file")
    if st.st_size > max_bytes:
        raise ImageRejected("file_too_large", f"{rel!r} has {st.st_size} bytes (max {max_bytes})")


# --------------------------------------------------------------------------------------- images


BATCH_SIZE = 8
"""Images that ``process_batch`` takes step by step together (8: measured best on 160 px photos)."""

BATCH_PIXELS = 8_000_000
"""At most this many source pixels are decoded at once by ``process_batch``; a larger image goes alone."""


def process_image(data: bytes, cfg: ImageConfig) -> ProcessedImage:
    """Decode, orient, normalise, resize, optionally blur faces, and re-encode without metadata.

    Raises ImageRejected. Meant for worker processes: the bomb-warning escalation uses
    ``warnings.catch_warnings``, which is not thread-safe before Python 3.14.
    """
    result = process_batch([data], cfg)[0]
    if isinstance(result, ImageRejected):
        raise result
    return result


def process_batch(datas: Sequence[bytes], cfg: ImageConfig) -> list[ProcessedImage | ImageRejected]:
    """``process_image`` of each of ``datas``, in order: the stored image, or the ImageRejected it raises.

    The results are those of one ``process_image`` call per item, but each step runs over the whole
    batch before the next step starts (headers, decode, normalise, hash, encode): the code of one step
    stays in the CPU's caches across the batch, which costs 13-25% less CPU per photo than finishing
    photos one at a time (``bench/ingest/README.md``). Give at most ``BATCH_SIZE`` items;
    decoded pixels held at once stay under ``BATCH_PIXELS`` (or one image, when it alone is larger).
    """
    work = [_Work(data) for data in datas]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        _each(work, lambda w: w.open(cfg))
    for group in _pixel_groups(work):
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            _each(group, lambda w: w.decode(cfg))
        _each(group, lambda w: w.normalise(cfg.max_side))
        _each(group, _Work.hash)
        if cfg.blur_faces:
            _each(group, _Work.blur)
        _each(group, lambda w: w.encode(cfg.jpeg_quality))
    return [w.result() for w in work]


class _Work:
    """One image on its way through ``process_batch``: the state each step leaves for the next."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.img: Image.Image | None = None
        self.source_size = (0, 0)
        self.flags = (False, False)
        self.phash = self.faces = 0
        self.out: ProcessedImage | ImageRejected | None = None

    def image(self) -> Image.Image:
        assert self.img is not None, "a step ran before the image was opened"
        return self.img

    def open(self, cfg: ImageConfig) -> None:
        size = _plain_jpeg(self.data, cfg.max_side)
        if size is None:
            self.open_with_pillow(cfg)
        else:  # a JPEG with nothing but pixels: Pillow opens it only if the fast decode fails
            _check_size(*size, cfg)
            self.source_size = size

    def decode(self, cfg: ImageConfig) -> None:
        """A plain JPEG (``open`` left ``img`` unset) by simplejpeg; if that fails, Pillow opens and decodes it
        as any other image, with its own checks and reasons."""
        data: bytes | None = self.data
        if self.img is None:
            self.img = jpeg.decode_rgb(self.data, 1, self.source_size)
            if self.img is not None:
                return
            self.open_with_pillow(cfg)
            data = None  # simplejpeg has had its try
        self.img = _decode(self.image(), cfg.max_side, data)

    def open_with_pillow(self, cfg: ImageConfig) -> None:
        self.img = _open_checked(self.data, cfg)
        self.source_size = self.img.size
        self.flags = _metadata_flags(self.img)

    def normalise(self, max_side: int) -> None:
        self.img = normalise_decoded(self.image(), max_side)

    def hash(self) -> None:
        self.phash = phash(self.image())

    def blur(self) -> None:
        from tagsight.privacy.faces import blur_faces

        self.img, self.faces = blur_faces(self.image())

    def encode(self, quality: int) -> None:
        img = self.image()
        self.out = ProcessedImage(
            jpeg=jpeg.encode_clean(img, quality), width=img.width, height=img.height,
            source_width=self.source_size[0], source_height=self.source_size[1],
            sha256=hashlib.sha256(self.data).hexdigest(), phash=self.phash, faces_blurred=self.faces,
            had_gps=self.flags[0], had_metadata=self.flags[1])
        self.img = None

    def result(self) -> ProcessedImage | ImageRejected:
        assert self.out is not None, "process_batch left an image without a result"
        return self.out


def _each(work: list[_Work], step: Callable[[_Work], None]) -> None:
    """Run ``step`` on every item not rejected yet; a rejection ends that item's way (its image is let go)."""
    for w in work:
        if w.out is None:
            try:
                step(w)
            except ImageRejected as exc:
                w.out, w.img = exc, None


def _pixel_groups(work: list[_Work]) -> Iterator[list[_Work]]:
    """The opened items in runs whose source pixels add up to at most ``BATCH_PIXELS`` (a larger one alone)."""
    group: list[_Work] = []
    pixels = 0
    for w in (w for w in work if w.out is None):
        n = w.source_size[0] * w.source_size[1]
        if group and pixels + n > BATCH_PIXELS:
            yield group
            group, pixels = [], 0
        group.append(w)
        pixels += n
    if group:
        yield group


def decode_rgb(data: bytes, cfg: ImageConfig) -> Image.Image:
    """Encoded bytes to 8-bit RGB, EXIF-oriented, at most ``cfg.max_side``: format, size and pixel limits are
    checked from the header before decoding (ImageRejected with the reason otherwise). Safe in threads as
    long as ``cfg.max_pixels`` stays under Pillow's bomb guard (no warning filter is set)."""
    return normalise_decoded(_decode(_open_checked(data, cfg), cfg.max_side, data), cfg.max_side)


def normalise_decoded(img: Image.Image, max_side: int) -> Image.Image:
    """EXIF orientation, 8-bit RGB and the ``max_side`` limit; ImageRejected('unsupported_image') when Pillow fails."""
    try:
        return _resize(_to_rgb(_orient(img)), max_side)
    except Exception as exc:  # Pillow raises many types for exotic modes and broken metadata
        raise ImageRejected("unsupported_image", f"cannot convert the image: {type(exc).__name__}: {exc}") from None


def _open_checked(data: bytes, cfg: ImageConfig) -> Image.Image:
    """Identify the image from its header and check format, pixel count and size before decoding."""
    heif.check(data)  # HEIC/AVIF decoders registered, or unsupported_format:<fmt> when none is installed
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "the file is not an image Pillow can identify") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", f"decompression-bomb guard: {exc}") from None
    except _DECODE_ERRORS as exc:  # a header cut short, or (WebP) first-frame data that does not decode
        raise ImageRejected("truncated_image", f"image header cannot be read: {type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise ImageRejected("unsupported_image", f"cannot read the image header: {type(exc).__name__}: {exc}") from None
    if img.format not in ACCEPTED_FORMATS:
        raise ImageRejected("unsupported_image", f"image format {img.format} is not accepted "
                            f"(accepted: {', '.join(sorted(ACCEPTED_FORMATS))})")
    _check_size(*img.size, cfg)
    return img


def _check_size(w: int, h: int, cfg: ImageConfig) -> None:
    if w * h > cfg.max_pixels:
        raise ImageRejected("too_many_pixels", f"image is {w}x{h} = {w * h} pixels (max {cfg.max_pixels})")
    if min(w, h) < cfg.min_side:
        raise ImageRejected("tiny_image", f"image is {w}x{h}; the shorter side must be >= {cfg.min_side}")


def _plain_jpeg(data: bytes, max_side: int) -> tuple[int, int] | None:
    """The size of a JPEG that ``jpeg.plain_header`` finds plain (no metadata, nothing to rotate, mode RGB),
    decoded at full scale (no ``draft``: its longest side is under twice ``max_side``), within Pillow's bomb
    guard, with the fast decoder at hand; None sends the image through Pillow's ``Image.open``."""
    size = jpeg.plain_header(data) if jpeg.simplejpeg_decoder() is not None else None
    if size is None or max_side / max(size) < 0.5:
        return None
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit and size[0] * size[1] > limit else size


def _metadata_flags(img: Image.Image) -> tuple[bool, bool]:
    """(had_gps, had_metadata) from the header: EXIF (with its GPS IFD), XMP, ICC, comments, IPTC."""
    try:
        exif = img.getexif()
        gps = _GPS_IFD in exif and bool(exif.get_ifd(_GPS_IFD) or exif.get(_GPS_IFD))
    except Exception:  # unparsable EXIF is still metadata; it is dropped like any other
        return False, True
    keys = {str(k).lower() for k in img.info}
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or b""
    xmp_bytes = xmp.encode("utf-8", "replace") if isinstance(xmp, str) else bytes(xmp)
    gps = gps or b"GPSLatitude" in xmp_bytes
    return gps, bool(exif) or bool(keys & _METADATA_KEYS)


def _decode(img: Image.Image, max_side: int, data: bytes | None) -> Image.Image:
    """Decode pixel data (first frame) of ``img``, opened from ``data``; JPEGs at the smallest DCT scale still
    >= ``max_side``, by simplejpeg where it gives Pillow's pixels (``_decode_fast``), else (or with no
    ``data``) by Pillow."""
    w, h = img.size
    scale = max_side / max(w, h)
    if img.format in ("JPEG", "MPO") and scale < 0.5:
        img.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
    fast = None if data is None else _decode_fast(img, data)
    if fast is not None:
        return fast
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", f"decompression-bomb guard: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected("truncated_image", f"image data cannot be decoded: {type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise ImageRejected("unsupported_image", f"cannot decode the image: {type(exc).__name__}: {exc}") from None
    return img


def _decode_fast(img: Image.Image, data: bytes) -> Image.Image | None:
    """A three-component JPEG that needs no EXIF rotation, decoded by ``jpeg.decode_rgb`` at ``draft``'s scale;
    None for anything else (other formats, greyscale, CMYK, MPO, rotated, broken streams): Pillow decodes it.
    The new image carries no metadata, which is why a photo to be rotated (EXIF or XMP orientation 2-8, or one
    that cannot be read) is left to Pillow; its metadata was already looked at (``_metadata_flags``)."""
    if img.format != "JPEG" or img.mode != "RGB":
        return None
    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: Pillow's way (``_orient`` ignores it there)
        return None
    if not isinstance(orientation, int) or 2 <= orientation <= 8:
        return None
    config = getattr(img, "decoderconfig", ())  # (scale, 0) once ``draft`` chose a DCT scale
    return jpeg.decode_rgb(data, int(config[0]) if config else 1, img.size)


def _orient(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation in place; an unreadable EXIF block leaves the image as stored."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception as exc:  # broken EXIF must not cost the image; the EXIF is dropped anyway
        log.debug("EXIF orientation ignored: %s: %s", type(exc).__name__, exc)
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB: 16/32-bit scaled down, transparency composited on white, CMYK/grey/palette converted."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return _high_depth_to_l(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        out = Image.new("RGB", img.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """16-bit ("I;16*") and 32-bit ("I", "F") greyscale -> "L", scaled rather than clipped.

    Integers are read as 16-bit samples (0..65535 -> 0..255) unless their maximum exceeds 65535,
    in which case they are scaled by the maximum; floats in [0, 1] are scaled by 255, others clipped.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        top = 1.0 if float(arr.max(initial=0.0)) <= 1.0 else 255.0
        out = np.clip(arr / top * 255.0 + 0.5, 0, 255)
    else:
        arr = np.clip(arr.astype(np.int64), 0, None)
        top = max(65535, int(arr.max(initial=0)))
        out = (arr * 255 + top // 2) // top
    return Image.fromarray(out.astype(np.uint8), mode="L")


def _resize(img: Image.Image, max_side: int) -> Image.Image:
    """Longest side down to ``max_side`` (never up) by area averaging (Pillow's BOX filter, the same
    rule as OpenCV's INTER_AREA that img2dataset uses). Shrinking only, so no ringing or blockiness:
    each output pixel is the mean of the input area it covers. Twice as fast as bicubic and 2.8x
    Lanczos on 160 px photos (``docs/benchmarks.md``)."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.BOX)


# --------------------------------------------------------------------------------------- hashes


@lru_cache(maxsize=4)
def _dct_rows(n: int = 32, k: int = 8) -> np.ndarray:
    """The first ``k`` rows of the orthonormal n-point DCT-II matrix (float32)."""
    i = np.arange(n)
    m = np.cos(np.pi * (2 * i[None, :] + 1) * np.arange(k)[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.astype(np.float32)


def phash(img: Image.Image) -> int:
    """64-bit perceptual hash as an unsigned int (DCT pHash).

    The image is reduced to a 32x32 greyscale thumbnail; its 2-D DCT (two matrix products with a
    cached DCT matrix) gives the top-left 8x8 low-frequency block. Bit i (row-major, the DC term
    is the most significant bit) is set when that coefficient exceeds the median of the 63 AC
    coefficients; the DC term is left out of the median because it only measures brightness.
    """
    grey = img.convert("L") if img.mode != "L" else img
    small = grey.resize((32, 32), Image.Resampling.BILINEAR, reducing_gap=2.0)
    x = np.frombuffer(small.tobytes(), dtype=np.uint8).reshape(32, 32).astype(np.float32)
    d = _dct_rows()
    block = (d @ x @ d.T).ravel()
    median = np.partition(block[1:], 31)[31]  # the 32nd of 63 AC values; np.median is 20x slower here
    bits = block > median
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two perceptual hashes."""
    return (a ^ b).bit_count()
