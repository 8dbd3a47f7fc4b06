"""Dataset paths that may be fsspec URLs (``s3://bucket/ds``, ``memory://ds``), read by byte ranges.

A dataset path is either a local folder (a ``Path``, also written ``file://...``) or an fsspec URL
(``dataset_path``). Remote files are read by byte ranges through ``RemoteFiles``: ranges are fetched in
aligned blocks kept in a bounded local cache (least recently used blocks are evicted first), every fetch
is retried on a dropped or short read, and the filesystem object is opened lazily in each process (never
pickled, reopened after a fork), so DataLoader workers and ranks each hold their own connections.

Configuration is the standard one: S3 endpoint and credentials come from ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (read by botocore), further fsspec storage options from
``TAGSIGHT_STORAGE_OPTIONS`` (a JSON object); the cache from ``TAGSIGHT_CACHE_DIR``, ``TAGSIGHT_CACHE_BYTES``
and ``TAGSIGHT_CACHE_BLOCK`` (see ``CacheConfig``). The lowest layer: no tagsight imports but fsio.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import io
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any, Iterator

from tagsight.fsio import ReasonError, atomic_write_text

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
    """The whole content of a local file or a URL (for small files: manifests, tables, tombstones)."""
    if not is_url(path):
        return Path(path).read_bytes()
    fs, inner = open_filesystem(str(path))
    data: bytes = _retry(lambda: fs.cat_file(inner), str(path))
    return data


def exists(path: str | Path) -> bool:
    """Whether a local file or a URL exists."""
    if not is_url(path):
        return Path(path).is_file()
    fs, inner = open_filesystem(str(path))
    return bool(_retry(lambda: fs.exists(inner), str(path)))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ReasonError("storage_options_invalid", f"{name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class CacheConfig:
    """The local block cache of remote reads: ``max_bytes`` 0 turns it off (every read goes to the store)."""

    folder: Path = field(default_factory=lambda: Path(os.environ.get(
        "TAGSIGHT_CACHE_DIR", Path.home() / ".cache" / "tagsight" / "storage")))
    max_bytes: int = field(default_factory=lambda: _env_int("TAGSIGHT_CACHE_BYTES", 2 << 30))
    block_bytes: int = field(default_factory=lambda: _env_int("TAGSIGHT_CACHE_BLOCK", 1 << 20))

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        if self.max_bytes < 0:
            raise ValueError(f"cache max_bytes must be >= 0, got {self.max_bytes}")
        if self.block_bytes < 512:
            raise ValueError(f"cache block_bytes must be >= 512, got {self.block_bytes}")
        if 0 < self.max_bytes < self.block_bytes:
            raise ValueError(f"cache max_bytes ({self.max_bytes}) is below one block ({self.block_bytes})")


@dataclass
class ReadStats:
    """What reads cost: bytes fetched from the store, bytes served from the cache, requests made, retries."""

    fetched_bytes: int = 0
    cached_bytes: int = 0
    requests: int = 0
    retries: int = 0


def _attempts() -> int:
    attempts = _env_int("TAGSIGHT_STORAGE_ATTEMPTS", 5)
    if attempts < 1:
        raise ReasonError("storage_options_invalid", f"TAGSIGHT_STORAGE_ATTEMPTS must be >= 1, got {attempts}")
    return attempts


def _retry(fetch: Callable[[], Any], what: str, stats: ReadStats | None = None, expect: int | None = None) -> Any:
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


class RemoteFiles:
    """Byte ranges of the files under ``root`` (an fsspec URL) through the bounded block cache, retried.

    ``tag`` names the content (a dataset version): cached blocks of another tag are never served. ``sizes`` are the
    file sizes when known (from a manifest), which saves a metadata request per file and process.
    """

    def __init__(self, root: str, tag: str, cache: CacheConfig | None = None,
                 sizes: dict[str, int] | None = None) -> None:
        self.root, self.tag = root.rstrip("/"), tag
        self.cache = cache or CacheConfig()
        self.stats = ReadStats()
        self._fs: Any = None
        self._inner = ""
        self._pid = -1
        self._sizes: dict[str, int] = dict(sizes or {})
        self._cached_total: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_fs=None, _pid=-1, _cached_total=None)  # connections do not cross processes
        return state

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None or self._pid != os.getpid():   # a forked worker opens its own
            self._fs, self._inner = open_filesystem(self.root)
            self._pid = os.getpid()
        return self._fs, self._inner

    def url(self, name: str) -> str:
        return f"{self.root}/{name}"

    def size(self, name: str) -> int:
        """Size in bytes of the file ``name`` (one metadata request, then remembered)."""
        if name not in self._sizes:
            fs, inner = self._filesystem()
            self._sizes[name] = int(_retry(lambda: fs.size(f"{inner}/{name}"), self.url(name), stats=self.stats))
        return self._sizes[name]

    def read(self, name: str, offset: int, size: int) -> bytes:
        """``size`` bytes of ``name`` from ``offset`` (fewer only at the end of the file)."""
        if size <= 0:
            return b""
        if self.cache.max_bytes == 0:
            return self._fetch(name, offset, min(offset + size, self.size(name)))
        block, end = self.cache.block_bytes, offset + size
        return b"".join(self._block(name, b, max(offset - b * block, 0), min(end - b * block, block))
                        for b in range(offset // block, (end - 1) // block + 1))

    def open(self, name: str) -> io.BufferedReader:
        """A seekable binary file over ``name`` whose reads go through ``read`` (for tar header scans)."""
        return io.BufferedReader(_RangeFile(self, name), buffer_size=64 << 10)

    def _fetch(self, name: str, start: int, end: int) -> bytes:
        fs, inner = self._filesystem()
        data: bytes = _retry(lambda: fs.cat_file(f"{inner}/{name}", start=start, end=end), self.url(name),
                      stats=self.stats, expect=end - start)
        self.stats.requests += 1
        self.stats.fetched_bytes += len(data)
        return data

    def _block(self, name: str, number: int, lo: int, hi: int) -> bytes:
        """Bytes ``lo:hi`` of block ``number`` of ``name``: from the cache file (only those bytes), else fetched."""
        key = hashlib.blake2b(f"{self.root}\x00{self.tag}\x00{name}\x00{self.cache.block_bytes}\x00{number}".encode(),
                              digest_size=16).hexdigest()
        path = self.cache.folder / "blocks" / key[:2] / key
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            start = number * self.cache.block_bytes
            data = self._fetch(name, start, min(start + self.cache.block_bytes, self.size(name)))
            self._store(path, data)
            return data[lo:hi]
        try:
            data = os.pread(fd, hi - lo, lo)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):   # evicted by another process meanwhile: the bytes are read
            os.utime(path)   # most recently used
        self.stats.cached_bytes += len(data)
        return data

    def _store(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if self._cached_total is None:
            self._cached_total = sum(size for _, size, _ in _cache_files(self.cache.folder))
        else:
            self._cached_total += len(data)
        if self._cached_total > self.cache.max_bytes:
            self._cached_total = evict(self.cache.folder, self.cache.max_bytes)


def _cache_files(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every cached block (files vanishing meanwhile, evicted by another process, skipped)."""
    out = []
    for path in (folder / "blocks").glob("*/*"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if not path.name.startswith("."):
            out.append((st.st_mtime, st.st_size, path))
    return out


def evict(folder: Path, max_bytes: int) -> int:
    """Delete least recently used blocks until the cache holds at most ``max_bytes``; returns the bytes left."""
    files = sorted(_cache_files(folder), key=lambda f: f[0])
    total = sum(size for _, size, _ in files)
    for _, size, path in files:
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
    log.debug("storage cache %s: %d bytes after eviction", folder, total)
    return total


def cache_bytes(folder: Path) -> int:
    """Bytes held by the block cache in ``folder``."""
    return sum(size for _, size, _ in _cache_files(Path(folder)))


class _RangeFile(io.RawIOBase):
    """A read-only, seekable raw file over ``RemoteFiles.read``."""

    def __init__(self, files: RemoteFiles, name: str) -> None:
        super().__init__()
        self._files, self._name, self._pos = files, name, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._files.size(self._name)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), max(0, self._files.size(self._name) - self._pos))
        data = self._files.read(self._name, self._pos, size)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def staging_folder(url: str, cache: CacheConfig | None = None) -> Path:
    """The local folder where a dataset bound for ``url`` is built before upload (stable, so a rerun resumes)."""
    key = hashlib.blake2b(url.rstrip("/").encode(), digest_size=12).hexdigest()
    return (cache or CacheConfig()).folder / "staging" / key


def publish_folder(folder: Path, url: str, last: str | tuple[str, ...] = "manifest.json", prune: bool = False) -> int:
    """Upload ``folder`` to ``url`` so that readers never take a partial upload for an artifact.

    ``last`` names the record files (``manifest.json``, ``run.json``, ``bundle.json``...; a single name must exist at
    the top of ``folder``; a tuple syncs a tree of artifacts). Every record about to change is deleted on the store
    first (its artifact is invisible from then on), the other files go up, then the records. Files unchanged since
    ``folder`` was mirrored from ``url`` are not sent again. ``prune``: also delete what the store holds under ``url``
    and ``folder`` no longer does (a rewritten artifact), before the records. Returns the number of files sent; after an
    interruption the same call completes the upload."""
    folder = Path(folder)
    records = (last,) if isinstance(last, str) else tuple(last)
    if isinstance(last, str) and not (folder / last).is_file():
        raise ReasonError("dataset_incomplete", f"{folder} has no {last}: nothing to publish")
    files = {name: folder / name for name in sorted(_local_stats(folder))}   # hidden files and folders left out
    unchanged = _unchanged_since_mirror(folder, url)
    send = [name for name in files if name not in unchanged]
    fs, inner = open_filesystem(url)
    inner = inner.rstrip("/")
    late = [name for name in send if posixpath.basename(name) in records]
    for name in late:
        target = f"{inner}/{name}"
        if _retry(lambda: fs.exists(target), target):  # noqa: B023 - called at once
            _retry(lambda: fs.rm_file(target), target)   # noqa: B023 - the old version is invisible from now
    for name in [n for n in send if n not in late] + ([] if prune else late):
        _put(fs, files[name], f"{inner}/{name}")
    if prune:
        _prune(fs, inner, url, set(files))
        for name in late:
            _put(fs, files[name], f"{inner}/{name}")
    log.info("published %d of %d files of %s to %s (%s last)", len(send), len(files), folder, url, ", ".join(records))
    return len(send)


def publish_changes(folder: Path, url: str, last: tuple[str, ...] = (), prune_under: str | None = None) -> int:
    """Upload what changed in ``folder`` since it was mirrored from, or last published to, ``url``, never taking a
    record away (for a folder that is published again and again while it is written, such as a run's checkpoints).

    Changed files other than ``last`` go up first, then the ``last`` files that changed, in the order given (each
    put replaces its object whole, so a reader finds the old record or the new one, never none). Then the files
    under ``prune_under`` (a folder inside ``url``) that the store holds and ``folder`` no longer does are deleted.
    What was sent is recorded in ``folder``'s mirror state, so the next call and ``publish_folder`` skip it; after an
    interruption the next call sends what is missing. Returns the number of files sent."""
    folder, url = Path(folder), url.rstrip("/")
    stats = _local_stats(folder)
    unchanged = _unchanged_since_mirror(folder, url)
    changed = [name for name in sorted(stats) if name not in unchanged]
    order = [name for name in changed if name not in last] + [name for name in last if name in changed]
    fs, inner = open_filesystem(url)
    inner = inner.rstrip("/")
    state = _mirror_state(folder, url)
    for name in order:
        _put(fs, folder / name, f"{inner}/{name}")
        state["local"][name] = stats[name]   # as it was before the put: a file changed meanwhile goes up next time
    if prune_under is not None:
        under = prune_under.strip("/")
        for name in sorted(_listing(fs, f"{inner}/{under}", url)):
            relative = f"{under}/{name}"
            if relative not in stats:
                _retry(lambda: fs.rm_file(f"{inner}/{relative}"), f"{url}/{relative}")  # noqa: B023 - called at once
                state["local"].pop(relative, None)
                log.debug("removed %s/%s (gone from %s)", url, relative, folder)
    (folder / MIRROR_STATE).write_text(json.dumps(state))
    log.info("published %d changed files of %s to %s (%s last)", len(order), folder, url, ", ".join(last) or "none")
    return len(order)


def _mirror_state(folder: Path, url: str) -> dict[str, Any]:
    """``folder``'s mirror state for ``url`` (an empty one when it has none, or one of another URL)."""
    path = folder / MIRROR_STATE
    state = json.loads(path.read_text()) if path.is_file() else {}
    if state.get("url") != url:
        state = {"url": url, "files": {}, "local": {}}
    state.setdefault("local", {})
    return state


def _put(fs: Any, path: Path, target: str) -> None:
    _retry(lambda: fs.put_file(str(path), target), target)
    log.debug("uploaded %s", target)


def _local_stats(folder: Path) -> dict[str, list[int]]:
    """(size, mtime in ns) of every file of ``folder`` but hidden ones (``.mirror.json``, ``.tmp-*`` folders)."""
    return {p.relative_to(folder).as_posix(): [p.stat().st_size, p.stat().st_mtime_ns]
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _unchanged_since_mirror(folder: Path, url: str) -> set[str]:
    """Files of ``folder`` that are still as ``mirror_folder`` fetched them from ``url`` (same size and time)."""
    state_path = folder / MIRROR_STATE
    if not state_path.is_file():
        return set()
    state = json.loads(state_path.read_text())
    if state.get("url") != url.rstrip("/"):
        return set()
    fetched = state.get("local", {})
    return {name for name, stat in _local_stats(folder).items() if fetched.get(name) == stat}


def _prune(fs: Any, inner: str, url: str, keep: set[str]) -> None:
    for name in sorted(set(_listing(fs, inner, url)) - keep):
        _retry(lambda: fs.rm_file(f"{inner}/{name}"), f"{url}/{name}")  # noqa: B023 - called at once
        log.info("removed %s/%s (no longer part of the artifact)", url, name)


MIRROR_STATE = ".mirror.json"   # in a mirror: the URL it copies and the signature of every file it holds


def _signature(info: dict[str, Any]) -> str:
    """What identifies a remote file's content without reading it: its ETag (S3, GCS) or size and mtime."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or info.get("created")
    return f"{info.get('size')}:{tag}"


def _listing(fs: Any, inner: str, url: str) -> dict[str, dict[str, Any]]:
    """Every file under ``inner`` (relative POSIX name -> fsspec info); {} when nothing is there."""
    found = _retry(lambda: fs.find(inner, detail=True), url)
    return {posixpath.relpath(name, inner): info for name, info in found.items()
            if info.get("type", "file") == "file"}


METADATA_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml", ".parquet", ".md", ".txt")


def is_metadata(name: str) -> bool:
    """Whether a file of an artifact is one of its records (manifests, configs, catalogs, lineage), not its bulk
    (shards, checkpoints, weights, feature banks)."""
    return name.endswith(METADATA_SUFFIXES)


def mirror_folder(url: str, target: Path | None = None, marker: str | None = None,
                  cache: CacheConfig | None = None, metadata_only: bool = False) -> Path:
    """A local copy of the artifact folder at ``url`` (only its records with ``metadata_only``), kept in the cache (``TAGSIGHT_CACHE_DIR``/mirror) and brought up
    to date on every call: files whose ETag (or size and time) changed are fetched again, files gone are removed.
    ``marker``: the file an artifact writes last (``manifest.json``, ``run.json``, ``bundle.json``); a folder without
    it is refused (``artifact_incomplete``), as is a URL with nothing under it (``artifact_missing``)."""
    url = url.rstrip("/")
    kind = "meta" if metadata_only else "mirror"
    target = Path(target) if target is not None else _cache_key_folder(url, kind, cache)
    fs, inner = open_filesystem(url)
    remote = _listing(fs, inner.rstrip("/"), url)
    if metadata_only:
        remote = {name: info for name, info in remote.items() if is_metadata(name)}
    if not remote:
        raise ReasonError("artifact_missing", f"{url}: nothing there")
    if marker is not None and marker not in remote:
        raise ReasonError("artifact_incomplete", f"{url} has no {marker}: not a finished artifact (an upload or a "
                                                 "run in progress, or another kind of folder)")
    state_path = target / MIRROR_STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    held: dict[str, str] = state.get("files", {}) if state.get("url") == url else {}
    fetched = 0
    for name, info in sorted(remote.items()):
        local = target / name
        if held.get(name) == _signature(info) and local.is_file():
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        source = f"{inner.rstrip('/')}/{name}"
        _retry(lambda: fs.get_file(source, str(tmp)), f"{url}/{name}")  # noqa: B023 - called at once
        os.replace(tmp, local)
        fetched += 1
    for path in sorted(p for p in target.rglob("*") if p.is_file() and p.name != MIRROR_STATE):
        if path.relative_to(target).as_posix() not in remote:
            path.unlink()
    state_path.write_text(json.dumps({"url": url, "files": {n: _signature(i) for n, i in remote.items()},
                                      "local": _local_stats(target)}))
    log.info("%s: %d of %d files fetched into %s", url, fetched, len(remote), target)
    return target


def _cache_key_folder(url: str, kind: str, cache: CacheConfig | None) -> Path:
    key = hashlib.blake2b(url.rstrip("/").encode(), digest_size=12).hexdigest()
    return (cache or CacheConfig()).folder / kind / key


STAGING_TARGET = ".target.json"   # in a staging folder: the URL it will be published to


def mirror_origin(folder: str | Path) -> str | None:
    """The URL a local folder stands for: the one a mirror (``mirror_folder``) copies or a staging folder
    (``output_folder``) is published to; None for a plain local folder."""
    folder = Path(folder).absolute()
    for above in (folder, *folder.parents):     # a folder inside a mirror stands for the URL below the mirror's
        for name in (MIRROR_STATE, STAGING_TARGET):
            state = above / name
            if state.is_file():
                url = json.loads(state.read_text()).get("url")
                inner = folder.relative_to(above).as_posix()
                return (str(url) if inner == "." else f"{url}/{inner}") if url else None
    return None


def location(folder: str | Path) -> str:
    """Where an artifact lives, as lineage records it: the URL a mirror or staging folder stands for, else the
    absolute local path."""
    if is_url(folder):
        return str(folder)
    return mirror_origin(folder) or str(Path(folder).resolve())


def relative_url(target: str, base: str) -> str | None:
    """``target`` as a path relative to ``base`` when both are URLs of one store (same scheme and bucket), else None."""
    (ts, _, tr), (bs, _, br) = target.partition("://"), base.partition("://")
    if ts != bs or tr.split("/")[0] != br.split("/")[0]:
        return None
    return posixpath.relpath(tr, br)


def local_folder(path: str | Path, marker: str | None = None, metadata_only: bool = False) -> Path:
    """An artifact folder to read: a local path as it is (``file://`` too), a URL mirrored into the cache."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        return resolved
    return mirror_folder(resolved, marker=marker, metadata_only=metadata_only)


def list_names(path: str | Path) -> list[str]:
    """The names of the entries right under a local folder or an fsspec URL (sorted; [] when there is none)."""
    if not is_url(path):
        return sorted(p.name for p in Path(path).iterdir()) if Path(path).is_dir() else []
    fs, inner = open_filesystem(str(path))
    inner = inner.rstrip("/")
    try:
        entries = _retry(lambda: fs.ls(inner, detail=False), str(path))
    except FileNotFoundError:
        return []
    return sorted({posixpath.basename(str(e).rstrip("/")) for e in entries} - {""})


def write_text(path: str | Path, text: str) -> str | Path:
    """Write a small file (a card, a report) to a local path (atomically) or an fsspec URL (one object put)."""
    if not is_url(path):
        return atomic_write_text(Path(path), text)
    fs, inner = open_filesystem(str(path))
    _retry(lambda: fs.pipe_file(inner, text.encode("utf-8")), str(path))
    return str(path)


def resolve_from(base: str | Path, relative: str) -> str | Path:
    """``relative`` (a path written inside an artifact) resolved against the artifact ``base``: for a mirror of a URL
    against that URL (so that a bundle on object storage finds the run beside it), else against the folder."""
    origin = mirror_origin(base) if not is_url(base) else str(base)
    if origin is None:
        return (Path(base) / relative).resolve()
    scheme, _, rest = origin.partition("://")
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, relative))}"


@contextlib.contextmanager
def output_folder(path: str | Path, marker: str | tuple[str, ...]) -> Iterator[Path]:
    """Where a verb writes an artifact bound for ``path``: a local path is used as it is; for a URL a stable local
    staging folder, first filled from the URL when something is already there (so that a run is resumed wherever it
    was interrupted), then published when the verb succeeds, ``marker`` last (``publish_folder``; a tuple of record
    names for a tree of artifacts, such as the root ``forget --rewrite`` works on). On an error nothing is published
    and the staging folder stays for the rerun."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        yield resolved
        return
    staging = staging_folder(resolved)
    fs, inner = open_filesystem(resolved)
    if not staging.exists() and _listing(fs, inner.rstrip("/"), resolved):
        mirror_folder(resolved, target=staging)   # its state lets the publish skip what did not change
    staging.mkdir(parents=True, exist_ok=True)
    (staging / STAGING_TARGET).write_text(json.dumps({"url": resolved}))
    yield staging
    publish_folder(staging, resolved, last=marker, prune=True)
