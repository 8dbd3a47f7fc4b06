"""The bounded local block cache of remote byte ranges (``RemoteFiles``) that training streams read through."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsight.fsio import private_temp
from tagsight.storage.urls import ReadStats, env_int, open_filesystem, retry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheConfig:
    """The local block cache of remote reads: ``max_bytes`` 0 turns it off (every read goes to the store)."""

    folder: Path = field(default_factory=lambda: Path(os.environ.get(
        "TAGSIGHT_CACHE_DIR", Path.home() / ".cache" / "tagsight" / "storage")))
    max_bytes: int = field(default_factory=lambda: env_int("TAGSIGHT_CACHE_BYTES", 2 << 30))
    block_bytes: int = field(default_factory=lambda: env_int("TAGSIGHT_CACHE_BLOCK", 1 << 20))

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        if self.max_bytes < 0:
            raise ValueError(f"cache max_bytes must be >= 0, got {self.max_bytes}")
        if self.block_bytes < 512:
            raise ValueError(f"cache block_bytes must be >= 512, got {self.block_bytes}")
        if 0 < self.max_bytes < self.block_bytes:
            raise ValueError(f"cache max_bytes ({self.max_bytes}) is below one block ({self.block_bytes})")



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
            self._sizes[name] = int(retry(lambda: fs.size(f"{inner}/{name}"), self.url(name), stats=self.stats))
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
        data: bytes = retry(lambda: fs.cat_file(f"{inner}/{name}", start=start, end=end), self.url(name),
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
        tmp = private_temp(path)
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if self._cached_total is None:
            self._cached_total = sum(size for _, size, _ in _cache_files(self.cache.folder))
        else:
            self._cached_total += len(data)
        if self._cached_total > self.cache.max_bytes:
            self._cached_total = evict(self.cache.folder, self.cache.max_bytes)


STALE_TEMP_S = 600.0   # a block is written in one call: a temporary file this old lost its writer (killed mid-store)


def _cache_files(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every cached block (files vanishing meanwhile, evicted by another process, skipped).
    A writer's temporary file (``private_temp``) is left out while it may still be written; one older than
    ``STALE_TEMP_S`` was left by a killed writer and is listed as used at time 0, the first to be evicted."""
    out = []
    stale_before = time.time() - STALE_TEMP_S
    for path in (folder / "blocks").glob("*/*"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if not path.name.startswith("."):
            out.append((st.st_mtime, st.st_size, path))
        elif st.st_mtime < stale_before:
            out.append((0.0, st.st_size, path))
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

