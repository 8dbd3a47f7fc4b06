"""The safety checks a folder or archive passes before tagsight reads it: member names, member kinds,
size, count and ratio limits (zip bombs), overlapping data, truncation. ``tagsight.ingest.tree`` calls them.
"""

from __future__ import annotations

import io
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tagsight.ingest.errors import SourceError


_DRIVE = re.compile(r"^[A-Za-z]:")
TAR_BLOCK = 512   # tar's block size: an archive ends with zero blocks


class TreeError(SourceError):
    """The archive or folder cannot be read safely: unreadable, truncated, an unsafe member, or over a limit."""


class MemberTooLarge(TreeError):
    """One file is larger than the ``max_bytes`` its reader allows."""


@dataclass(frozen=True)
class TreeLimits:
    """Limits an archive must stay within to be read (zip bombs, hostile archives). Validated at construction.

    ``max_ratio`` applies to each member of at least ``ratio_floor`` bytes and to the archive as a
    whole (declared uncompressed bytes / archive file size) once that total reaches ``ratio_floor``.
    """

    max_members: int = 1_000_000
    max_total_bytes: int = 64 * 2**30
    max_ratio: float = 200.0
    ratio_floor: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_members", "max_total_bytes", "ratio_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TreeLimits.{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_ratio, bool) or not isinstance(self.max_ratio, (int, float)) or self.max_ratio < 1:
            raise ValueError(f"TreeLimits.max_ratio must be a number >= 1, got {self.max_ratio!r}")


DEFAULT_LIMITS = TreeLimits()


def check_member_name(name: str) -> str:
    """``name`` as a clean relative posix path (``./`` and empty parts dropped); TreeError when unsafe."""
    if not name or "\0" in name:
        raise TreeError(f"member name {name!r} is empty or holds a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise TreeError(f"member {name!r} has an absolute path")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise TreeError(f"member {name!r} has a '..' component: it would land outside the archive's root")
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def safe_rel(rel: str) -> str | None:
    """``rel`` cleaned, or None when it is not a safe relative path."""
    try:
        return check_member_name(rel) if isinstance(rel, str) else None
    except TreeError:
        return None


def check_size(rel: str, size: int, max_bytes: int | None) -> None:
    """``MemberTooLarge`` when a file of ``size`` bytes exceeds its reader's ``max_bytes``."""
    if max_bytes is not None and size > max_bytes:
        raise MemberTooLarge(f"{rel} has {size} bytes (max {max_bytes})")


def check_zip_member(path: Path, info: zipfile.ZipInfo, archive_size: int, limits: TreeLimits) -> None:
    """A zip member is refused for an unsafe name, a link or special file, encryption, truncation or its ratio."""
    name = info.filename
    check_member_name(name)
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == 3 and kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        what = "a symlink" if kind == stat.S_IFLNK else "not a regular file"
        raise TreeError(f"{path.name}: member {name!r} is {what}; refusing the archive")
    if info.flag_bits & 0x1:
        raise TreeError(f"{path.name}: member {name!r} is encrypted; tagsight reads only unencrypted archives")
    if info.header_offset + info.compress_size > archive_size:
        raise TreeError(f"{path.name}: member {name!r} runs past the end of the file: the archive is truncated; "
                        "download it again")
    if info.file_size >= limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise TreeError(f"{path.name}: member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                        f"compressed (ratio above {limits.max_ratio:g}): refusing a likely zip bomb")


def check_count(path: Path, n: int, limits: TreeLimits) -> None:
    """More than ``limits.max_members`` members refuse the archive."""
    if n > limits.max_members:
        raise TreeError(f"{path.name} holds more than {limits.max_members} members: refusing a likely archive bomb")


def check_total(path: Path, total: int, archive_size: int, limits: TreeLimits) -> None:
    """The declared uncompressed total over ``limits.max_total_bytes`` or the overall ratio refuses the archive."""
    if total > limits.max_total_bytes:
        raise TreeError(f"{path.name} declares {total} uncompressed bytes (max {limits.max_total_bytes}): "
                        "refusing a likely archive bomb")
    if total >= limits.ratio_floor and total > limits.max_ratio * max(archive_size, 1):
        raise TreeError(f"{path.name} declares {total} uncompressed bytes from {archive_size} on disk (ratio above "
                        f"{limits.max_ratio:g}): refusing a likely archive bomb")


def check_no_overlap(path: Path, spans: list[tuple[int, int]]) -> None:
    """Members whose data overlap (the trick of non-recursive zip bombs) refuse the archive."""
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise TreeError(f"{path.name} has members whose data overlap: refusing a likely zip bomb")


def check_tar_member(path: Path, info: tarfile.TarInfo) -> None:
    """A tar member is refused for an unsafe name, a link, or anything but a regular file or folder."""
    check_member_name(info.name)
    if info.issym() or info.islnk():
        raise TreeError(f"{path.name}: member {info.name!r} is a {'symlink' if info.issym() else 'hard link'}; "
                        "refusing the archive")
    if not (info.isreg() or info.isdir()) or info.issparse():
        raise TreeError(f"{path.name}: member {info.name!r} is not a regular file or folder; refusing the archive")


def check_tar_end(path: Path, stream: io.BufferedIOBase, offset: int) -> None:
    """The end-of-archive marker (a zero block) follows the last member, and a compressed stream ends cleanly."""
    stream.seek(offset)
    marker = stream.read(TAR_BLOCK)
    if len(marker) < TAR_BLOCK or marker.count(0) != TAR_BLOCK:
        raise TreeError(f"{path.name} ends without the tar end-of-archive marker: the archive is truncated "
                        "(an interrupted download?); download it again")
    while stream.read(1 << 20):  # reaches the compressed stream's end, where gzip checks its CRC and length
        pass
