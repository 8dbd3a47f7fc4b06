"""Request bodies to images: bounded reads, multipart / JSON base64 / raw image bodies, header-first checks.

The order of checks is the order of cost: the ``Content-Length`` header, then the bytes as they
arrive (the read stops one byte past ``ServeSettings.max_body``), then the body's framing, then the
image header (format and width x height, read by Pillow without decoding pixels), and only then
the pixels. Image checks and decoding reuse ``tagsight.ingest.images``, so the server and ingest
accept and reject the same files with the same reason codes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image
from python_multipart.multipart import MultipartParser, parse_options_header

from tagsight.ingest.images import ImageConfig, ImageRejected, decode_rgb
from tagsight.serve.errors import ServeError
from tagsight.serve.settings import ServeSettings

if TYPE_CHECKING:  # a TypedDict python-multipart declares for type checkers only
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)

JSON_TYPES = frozenset({"application/json"})
MULTIPART_TYPES = frozenset({"multipart/form-data"})
RAW_TYPES = frozenset({"application/octet-stream"})


@dataclass(frozen=True)
class ImageInput:
    """One image's bytes, the per-request options and, for ``/v1/analyze``, the apps asked for (``apps``
    field of a form or JSON body; None when absent)."""

    data: bytes
    options: dict[str, Any] = field(default_factory=dict)
    apps: Any = None


# --------------------------------------------------------------------------------------- the body


def content_type(headers: Any) -> tuple[str, dict[bytes, bytes]]:
    """The lower-cased media type and its parameters (``"", {}`` when there is no Content-Type)."""
    raw = headers.get("content-type") or ""
    kind, params = parse_options_header(raw)
    return kind.decode("latin-1").strip().lower(), params


def check_declared_length(headers: Any, limit: int) -> None:
    """Refuse a body whose declared ``Content-Length`` is over ``limit`` before reading any of it."""
    declared = headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise ServeError("invalid_request", f"Content-Length {declared!r} is not a number") from None
    if size > limit:
        raise ServeError("body_too_large", f"the body declares {size} bytes (max {limit})")


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """All of ``chunks``, stopping with ``body_too_large`` as soon as more than ``limit`` bytes arrived."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ServeError("body_too_large", f"the body has more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_body(kind: str, params: dict[bytes, bytes], body: bytes, settings: ServeSettings) -> ImageInput:
    """The image bytes and options of a complete body of media type ``kind``."""
    if not body:
        raise ServeError("empty_body", "the request has no body: send the image as multipart/form-data "
                         "(field 'image'), JSON {\"image\": BASE64} or a raw image/* body")
    if kind in JSON_TYPES:
        parsed = parse_json(body)
    elif kind in MULTIPART_TYPES:
        parsed = parse_multipart(body, params)
    elif kind.startswith("image/") or kind in RAW_TYPES:
        parsed = ImageInput(body)
    else:
        raise ServeError("unsupported_media_type", f"Content-Type {kind or '(none)'!r} is not accepted; use "
                         "multipart/form-data, application/json or image/*")
    if not parsed.data:
        raise ServeError("empty_image", "the image has no bytes")
    if len(parsed.data) > settings.max_bytes:
        raise ServeError("image_too_large", f"the image has {len(parsed.data)} bytes (max {settings.max_bytes})")
    return parsed


def parse_json(body: bytes) -> ImageInput:
    """``{"image": BASE64, "options": {...}, "apps": ...}``; other fields are ignored."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServeError("malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ServeError("malformed_json", "the JSON body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ServeError("invalid_request", f"the JSON body must be an object, got {type(doc).__name__}")
    image = doc.get("image")
    if image is None:
        raise ServeError("missing_image", "the JSON body has no 'image' field (base64 of the image file)")
    if not isinstance(image, str):
        raise ServeError("invalid_request", f"'image' must be a base64 string, got {type(image).__name__}")
    options = check_options(doc.get("options", {}))
    return ImageInput(decode_base64(image), options, doc.get("apps"))


def query_value(text: str) -> Any:
    """A query-string value: one that parses as a JSON number, boolean or null is that; any other is the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, with or without a ``data:image/...;base64,`` prefix."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServeError("invalid_base64", f"'image' is not valid base64: {exc}") from None


def check_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise ServeError("invalid_options", f"'options' must be a JSON object, got {type(options).__name__}")
    return options


def parse_multipart(body: bytes, params: dict[bytes, bytes]) -> ImageInput:
    """The ``image`` file part, the optional ``options`` part (a JSON object) and ``apps`` part (text) of a form;
    other parts are ignored."""
    parts = _multipart_parts(body, params)
    if "image" not in parts:
        raise ServeError("missing_image", f"the form has no 'image' part (parts: {sorted(parts) or 'none'})")
    options: Any = {}
    if "options" in parts:
        try:
            options = json.loads(parts["options"])
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ServeError("invalid_options", f"the 'options' part is not JSON: {type(exc).__name__}") from None
    apps = None
    if "apps" in parts:
        try:
            apps = parts["apps"].decode("utf-8")
        except UnicodeDecodeError:
            raise ServeError("invalid_request", "the 'apps' part is not UTF-8 text") from None
    return ImageInput(parts["image"], check_options(options), apps)


def _multipart_parts(body: bytes, params: dict[bytes, bytes]) -> dict[str, bytes]:
    """``name -> bytes`` of every part (the first of a repeated name), parsed in memory."""
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServeError("malformed_multipart", "the multipart Content-Type has no boundary")
    collector = _PartCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own errors for every framing problem
        raise ServeError("malformed_multipart", f"the multipart body does not parse: {exc}") from None
    if not collector.complete:
        raise ServeError("malformed_multipart", "the multipart body ends before its closing boundary")
    return collector.parts


class _PartCollector:
    """python-multipart callbacks that gather each part's name and bytes."""

    def __init__(self) -> None:
        self.parts: dict[str, bytes] = {}
        self.complete = False
        self._field = self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._data: list[bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._begin, "on_part_data": lambda d, s, e: self._data.append(d[s:e]),
                "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
                "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
                "on_header_end": self._header_end, "on_part_end": self._part_end, "on_end": self._end}

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _begin(self) -> None:
        self._headers, self._data = {}, []

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _part_end(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self.parts.setdefault(name, b"".join(self._data))

    def _end(self) -> None:
        self.complete = True


# --------------------------------------------------------------------------------------- the image


_IMAGE_REASONS = {"not_an_image", "unsupported_image", "truncated_image", "too_many_pixels"}


def prepare(kind: str, params: dict[bytes, bytes], body: bytes, settings: ServeSettings) -> tuple[Image.Image, dict[str, Any]]:
    """Body to (decoded image, options): framing, limits and decoding, in a worker thread off the event loop."""
    image, parsed = prepare_input(kind, params, body, settings)
    return image, parsed.options


def prepare_input(kind: str, params: dict[bytes, bytes], body: bytes,
                  settings: ServeSettings) -> tuple[Image.Image, ImageInput]:
    """Body to (decoded image, the parsed input with its options and apps field)."""
    parsed = parse_body(kind, params, body, settings)
    return decode_image(parsed.data, settings), parsed


def decode_image(data: bytes, settings: ServeSettings) -> Image.Image:
    """Decoded 8-bit RGB, EXIF-oriented, scaled down to ``max_side``; pixel limit checked from the header first.

    Runs in a worker thread. ``ServeSettings`` keeps ``max_pixels`` under Pillow's bomb guard, so
    Pillow's (process-wide, not thread-safe) warning filter is never needed here.
    """
    cfg = ImageConfig(max_side=settings.max_side, max_pixels=settings.max_pixels,
                      max_bytes=settings.max_bytes, min_side=1)
    try:
        return decode_rgb(data, cfg)
    except ImageRejected as exc:
        reason = exc.reason if exc.reason in _IMAGE_REASONS else "unsupported_image"
        raise ServeError(reason, str(exc)) from None
    except Exception as exc:  # exotic modes and broken metadata: Pillow raises many types
        raise ServeError("unsupported_image", f"cannot convert the image: {type(exc).__name__}: {exc}") from None
