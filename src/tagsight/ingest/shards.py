"""WebDataset tar shards written deterministically and atomically.

Each sample is ``<key>.jpg`` + ``<key>.json``. Tar headers carry no time, owner or mode that
varies, so identical samples give byte-identical shards. A shard is written under a temporary
name, flushed to disk and renamed: a reader never sees a half-written shard.
"""

from __future__ import annotations

import hashlib
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


def _member(name: str, data: bytes) -> list[bytes]:
    """A tar member's header, data and padding to the next 512-byte block."""
    return [_tar_header(name, len(data)), data, bytes(-len(data) % _BLOCK)]


def _tar_header(name: str, size: int) -> bytes:
    """The 512-byte USTAR header ``tarfile`` writes for a regular file of ``size`` bytes with mode 0644 and
    no time or owner, built directly for short ASCII names (the sample keys); ``tarfile`` builds the rest."""
    raw = name.encode("ascii", "replace")
    if len(raw) >= 100 or not name.isascii() or size >= 8**11:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    header = bytearray(raw.ljust(100, b"\0") + _MODE_OWNER + b"%011o\0" % size + _AFTER_SIZE)
    header[148:155] = b"%06o\0" % sum(header)  # the checksum field counts as 8 spaces; its 8th byte stays a space
    return bytes(header)


_MODE_OWNER = b"0000644\0" + b"0000000\0" * 2  # mode, uid, gid
_AFTER_SIZE = (b"00000000000\0" + b" " * 8 + tarfile.REGTYPE + bytes(100) + tarfile.POSIX_MAGIC
               + bytes(64 + 16 + 155 + 12))  # mtime, checksum, type, link, magic; owner names, devices, prefix empty


def encode_meta(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ShardWriter:
    """Write samples into ``out_dir/shard-NNNNN.tar``, ``samples_per_shard`` each.

    The archives are the bytes ``tarfile`` would write (USTAR, 512-byte blocks, ending with two empty
    blocks padded to a 10 KiB record); headers are built directly and each shard's sha256 is taken as
    it is written, so no shard is read back.
    """

    def __init__(self, out_dir: str | Path, samples_per_shard: int = 1000) -> None:
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.samples_per_shard = samples_per_shard
        self.shards: list[ShardInfo] = []
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = self._count = 0

    def write(self, key: str, jpeg: bytes, meta: dict[str, Any]) -> str:
        """Add one sample; returns the name of the shard that holds it."""
        if self._file is None:
            self._open()
        self._emit(b"".join(_member(f"{key}.jpg", jpeg) + _member(f"{key}.json", encode_meta(meta))))
        self._count += 1
        name = SHARD_PATTERN.format(len(self.shards))
        if self._count >= self.samples_per_shard:
            self._finish()
        return name

    def _emit(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def _open(self) -> None:
        tmp = self.out_dir / f".{SHARD_PATTERN.format(len(self.shards))}.tmp"
        self._file = open(tmp, "wb")
        self._hash, self._size, self._count = hashlib.sha256(), 0, 0

    def _finish(self) -> None:
        assert self._file is not None
        self._emit(bytes(2 * _BLOCK))
        if self._size % _RECORD:
            self._emit(bytes(_RECORD - self._size % _RECORD))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        name = SHARD_PATTERN.format(len(self.shards))
        os.replace(self.out_dir / f".{name}.tmp", self.out_dir / name)
        self.shards.append(ShardInfo(name, self._count, self._size, self._hash.hexdigest()))
        self._file = None

    def close(self) -> list[ShardInfo]:
        """Finish the last shard and return every shard written."""
        if self._file is not None:
            self._finish()
        return self.shards


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
