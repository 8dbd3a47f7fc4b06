"""fsspec URLs and local paths side by side: telling them apart, opening a filesystem, reading small files whole
and retrying every request (``retry``). The base of the ``tagsight.storage`` package: no tagsight imports but fsio."""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | Path) -> bool:
    """True for an fsspec URL other than ``file://`` (a local ``Path`` never is one)."""
    return isinstance(path, str) and bool(_URL.match(path)) and not path.startswith("file://")


def dataset_path(path: str | Path) -> Path | str:
    """A local ``Path`` for a folder or a ``file://`` URL, else the URL itself without a trailing slash."""
    if isinstance(path, Path):
        return path
    if path.startswith("file://"):
        return Path(path[len("file://"):])
    return path.rstrip("/") if is_url(path) else Path(path)


def join(root: str | Path, *parts: str) -> str | Path:
    """``root / parts`` for a local path, ``root/parts`` for a URL."""
    if isinstance(root, Path) or not is_url(root):
        return Path(root).joinpath(*parts)
    return "/".join([root.rstrip("/"), *parts])


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``: ``TAGSIGHT_STORAGE_OPTIONS`` (JSON), plus ``AWS_ENDPOINT_URL`` for s3."""
    raw = os.environ.get("TAGSIGHT_STORAGE_OPTIONS", "").strip()
    try:
        options = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ReasonError("storage_options_invalid", f"TAGSIGHT_STORAGE_OPTIONS is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ReasonError("storage_options_invalid", "TAGSIGHT_STORAGE_OPTIONS must be a JSON object")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith(("s3://", "s3a://")) and endpoint and "endpoint_url" not in options:
        options["endpoint_url"] = endpoint
    return options


def open_filesystem(url: str) -> tuple[Any, str]:
    """(a new fsspec filesystem, the path inside it) for ``url``; a fresh instance, never a shared cached one."""
    import fsspec

    try:
        fs, inner = fsspec.core.url_to_fs(url, skip_instance_cache=True, **storage_options(url))
        return fs, str(inner)
    except ImportError as exc:
        raise ReasonError("storage_unsupported", f"{url}: {exc} (install tagsight[s3] for s3:// URLs)") from None


def read_bytes(path: str | Path) -> bytes:
    """The whole content of a local file or a URL (for small files: manifests, tables, tombstones, input lists); a
    missing one raises ``FileNotFoundError`` naming the path or URL as given."""
    if not is_url(path):
        return Path(path).read_bytes()
    fs, inner = open_filesystem(str(path))
    try:
        data: bytes = retry(lambda: fs.cat_file(inner), str(path))
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path)) from None   # named by its URL
    return data


def exists(path: str | Path) -> bool:
    """Whether a local file or a URL exists."""
    if not is_url(path):
        return Path(path).is_file()
    fs, inner = open_filesystem(str(path))
    return bool(retry(lambda: fs.exists(inner), str(path)))


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ReasonError("storage_options_invalid", f"{name}={raw!r} is not a whole number") from None



@dataclass
class ReadStats:
    """What reads cost: bytes fetched from the store, bytes served from the cache, requests made, retries."""

    fetched_bytes: int = 0
    cached_bytes: int = 0
    requests: int = 0
    retries: int = 0



def _attempts() -> int:
    attempts = env_int("TAGSIGHT_STORAGE_ATTEMPTS", 5)
    if attempts < 1:
        raise ReasonError("storage_options_invalid", f"TAGSIGHT_STORAGE_ATTEMPTS must be >= 1, got {attempts}")
    return attempts


def retry(fetch: Callable[[], Any], what: str, stats: ReadStats | None = None, expect: int | None = None) -> Any:
    """``fetch()`` retried with backoff on errors of the connection or a short read; a missing or forbidden file and a
    misconfigured client are not retried. ``TAGSIGHT_STORAGE_ATTEMPTS`` (default 5) attempts in all."""
    attempts = _attempts()
    for attempt in range(attempts):
        try:
            data = fetch()
            if expect is None or len(data) == expect:
                return data
            error: Exception = OSError(f"short read: {len(data)} of {expect} bytes")
        except (FileNotFoundError, PermissionError, TypeError, AttributeError, NotImplementedError):
            raise   # missing, forbidden or misconfigured: asking again changes nothing
        except Exception as exc:  # noqa: BLE001 - aiohttp, botocore and OS errors all mean "try again"
            error = exc
        if attempt + 1 < attempts:
            if stats is not None:
                stats.retries += 1
            log.warning("storage request on %s failed (%s); retry %d of %d", what, error, attempt + 1, attempts - 1)
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
    raise ReasonError("storage_unavailable", f"{what}: {attempts} attempts failed, last: {error}")


def relative_url(target: str, base: str) -> str | None:
    """``target`` as a path relative to ``base`` when both are URLs of one store (same scheme and bucket), else None."""
    (ts, _, tr), (bs, _, br) = target.partition("://"), base.partition("://")
    if ts != bs or tr.split("/")[0] != br.split("/")[0]:
        return None
    return posixpath.relpath(tr, br)


def list_names(path: str | Path) -> list[str]:
    """The names of the entries right under a local folder or an fsspec URL (sorted; [] when there is none)."""
    if not is_url(path):
        return sorted(p.name for p in Path(path).iterdir()) if Path(path).is_dir() else []
    fs, inner = open_filesystem(str(path))
    inner = inner.rstrip("/")
    try:
        entries = retry(lambda: fs.ls(inner, detail=False), str(path))
    except FileNotFoundError:
        return []
    return sorted({posixpath.basename(str(e).rstrip("/")) for e in entries} - {""})


def write_text(path: str | Path, text: str) -> str | Path:
    """Write a small file (a card, a report) to a local path (atomically) or an fsspec URL (one object put)."""
    if not is_url(path):
        return atomic_write_text(Path(path), text)
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> str | Path:
    """Write a small file (a figure, a report) to a local path (atomically) or an fsspec URL (one object put)."""
    if not is_url(path):
        return atomic_write_bytes(Path(path), data)
    fs, inner = open_filesystem(str(path))
    retry(lambda: fs.pipe_file(inner, data), str(path))
    return str(path)


