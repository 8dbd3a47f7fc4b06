"""WebDataset tar shards written deterministically and atomically.

Each sample is ``<key>.jpg`` + ``<key>.json``. Tar headers carry no time, owner or mode that
varies, so identical samples give byte-identical shards. A shard is written under a temporary
name, flushed to disk and renamed: a reader never sees a half-written shard.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from tagsight.fsio import ReasonError, atomic_write_bytes  # noqa: F401  (re-exported for callers of this module)

SHARD_PATTERN = "shard-{:05d}.tar"


@dataclass(frozen=True)
class ShardInfo:
    name: str
    samples: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_key(source: str, post_id: str, media_index: int) -> str:
    """A stable, filename-safe sample key (no dots: WebDataset splits keys on the first dot)."""
    return hashlib.sha1(f"{source}/{post_id}#{media_index}".encode("utf-8")).hexdigest()[:20]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def encode_meta(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ShardWriter:
    """Write samples into ``out_dir/shard-NNNNN.tar``, ``samples_per_shard`` each."""

    def __init__(self, out_dir: str | Path, samples_per_shard: int = 1000) -> None:
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.samples_per_shard = samples_per_shard
        self.shards: list[ShardInfo] = []
        self._tar: tarfile.TarFile | None = None
        self._file: BinaryIO | None = None
        self._count = 0

    def write(self, key: str, jpeg: bytes, meta: dict[str, Any]) -> str:
        """Add one sample; returns the name of the shard that holds it."""
        if self._tar is None:
            self._open()
        assert self._tar is not None
        _add(self._tar, f"{key}.jpg", jpeg)
        _add(self._tar, f"{key}.json", encode_meta(meta))
        self._count += 1
        name = SHARD_PATTERN.format(len(self.shards))
        if self._count >= self.samples_per_shard:
            self._finish()
        return name

    def _open(self) -> None:
        tmp = self.out_dir / f".{SHARD_PATTERN.format(len(self.shards))}.tmp"
        self._file = open(tmp, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self._count = 0

    def _finish(self) -> None:
        assert self._tar is not None and self._file is not None
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        name = SHARD_PATTERN.format(len(self.shards))
        tmp, final = self.out_dir / f".{name}.tmp", self.out_dir / name
        os.replace(tmp, final)
        self.shards.append(ShardInfo(name, self._count, final.stat().st_size, _file_sha256(final)))
        self._tar = self._file = None

    def close(self) -> list[ShardInfo]:
        """Finish the last shard and return every shard written."""
        if self._tar is not None:
            self._finish()
        return self.shards


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_BLOCK = 512
_RECORD = 20 * _BLOCK  # tarfile's default record size: archives end padded to a multiple of it


def _members(data: bytes, where: str) -> Iterator[tuple[str, int, int, int]]:
    """(name, header offset, data offset, data size) of each member of an uncompressed USTAR archive in ``data``."""
    pos = 0
    while pos + _BLOCK <= len(data) and data[pos:pos + _BLOCK].strip(b"\0"):
        header = data[pos:pos + _BLOCK]
        try:
            name = header[:100].split(b"\0", 1)[0].decode("utf-8")
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8")
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError as exc:
            raise ReasonError("shard_unreadable", f"{where}: bad tar header at byte {pos} ({exc})") from exc
        yield (f"{prefix}/{name}" if prefix else name), pos, pos + _BLOCK, size
        pos += _BLOCK + -(-size // _BLOCK) * _BLOCK


def filter_shard(path: str | Path, drop: Callable[[str, dict[str, Any]], bool]) -> tuple[bytes, int, set[str]]:
    """A shard's bytes without the samples ``drop(key, meta)`` selects: (new archive bytes, samples kept, keys dropped).

    Kept members are copied byte for byte (headers included), so what remains is exactly what was
    written; nothing is decoded but each sample's JSON.
    """
    data = Path(path).read_bytes()
    samples: dict[str, list[tuple[str, int, int, int]]] = {}
    for member in _members(data, str(path)):
        samples.setdefault(member[0].partition(".")[0], []).append(member)
    out, kept, dropped = bytearray(), 0, set()
    for key, members in samples.items():
        meta: dict[str, Any] = next((json.loads(data[d:d + s]) for n, _, d, s in members if n.endswith(".json")), {})
        if drop(key, meta):
            dropped.add(key)
            continue
        kept += 1
        for _, start, d, s in members:
            out += data[start:d + -(-s // _BLOCK) * _BLOCK]
    out += bytes(2 * _BLOCK)
    out += bytes(-len(out) % _RECORD)
    return bytes(out), kept, dropped
