"""HEIC/HEIF and AVIF photos: register their decoders with Pillow, and name the format when none is there.

Phones write HEIC (iPhones since iOS 11, many Android cameras) and, more and more, AVIF; account
exports hand those files over unchanged. Pillow reads AVIF itself from 11.2 on (when built with
libavif, as the PyPI wheels are); HEIC needs the ``pillow-heif`` plugin (extra ``heif``). The
``pillow-avif-plugin`` package is used for AVIF when Pillow cannot read it.

``check(data)`` is called by ``ingest.images`` before an image is opened: it registers whatever
decoders are installed (once per process) and, when ``data`` is a HEIF-family file that no decoder
here can read, refuses it as ``unsupported_format:heic`` or ``unsupported_format:avif`` instead of
the misleading ``not_an_image``.
"""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, UnidentifiedImageError, features

log = logging.getLogger(__name__)

HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})
_MAX_BRANDS = 64


def container_format(data: bytes) -> str | None:
    """``"heic"`` or ``"avif"`` when ``data`` starts with an ISO-BMFF ``ftyp`` box of the HEIF family, else None.

    The major brand decides; a generic major brand (``mif1``, ``msf1``) is settled by the
    compatible brands (AVIF when an AVIF brand is listed, HEIC otherwise).
    """
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    major = data[8:12]
    end = min(len(data), int.from_bytes(data[0:4], "big"), 16 + 4 * _MAX_BRANDS)
    compatible = {data[i:i + 4] for i in range(16, end - 3, 4)}
    if major in AVIF_BRANDS:
        return "avif"
    if major in HEIC_BRANDS:
        return "heic"
    if major in GENERIC_BRANDS or compatible & (HEIC_BRANDS | AVIF_BRANDS):
        return "avif" if compatible & AVIF_BRANDS else "heic"
    return None


@functools.lru_cache(maxsize=1)
def register() -> frozenset[str]:
    """Register the installed HEIF-family decoders with Pillow (once per process); the formats now readable."""
    readable = set()
    try:
        import pillow_heif
    except ImportError:
        log.debug("pillow-heif is not installed: HEIC photos are refused as unsupported_format:heic")
    else:
        pillow_heif.register_heif_opener()
        readable.add("heic")
    if features.check("avif"):
        readable.add("avif")
    else:
        try:
            import pillow_avif  # noqa: F401  (registers the AVIF plugin on import)
        except ImportError:
            log.debug("this Pillow has no AVIF support and pillow-avif-plugin is not installed")
        else:
            readable.add("avif")
    return frozenset(readable)


def check(data: bytes) -> None:
    """Make HEIC/AVIF readable when a decoder is installed; ImageRejected when ``data`` is a HEIF-family file
    that no decoder here reads (``unsupported_format:<fmt>``) or whose container is cut short (``truncated_image``)."""
    fmt = container_format(data)
    if fmt is None:
        return
    from tagsight.ingest.images import ImageRejected  # here, not at the top: images imports this module

    if fmt in register():
        try:
            Image.open(io.BytesIO(data))  # the container header only; Pillow would otherwise say "not an image"
        except UnidentifiedImageError as exc:
            raise ImageRejected("truncated_image", f"a {fmt.upper()} file whose container cannot be read: "
                                f"{exc}") from None
        except Exception:  # anything else is reported by the caller's own open, with its usual reasons
            pass
        return
    package = "pillow-heif" if fmt == "heic" else "pillow-avif-plugin (or Pillow >= 11.2 built with libavif)"
    raise ImageRejected(f"unsupported_format:{fmt}",
                        f"the file is a {fmt.upper()} photo and no {fmt.upper()} decoder is installed "
                        f"(install {package}, or tagsight's 'heif' extra)")
