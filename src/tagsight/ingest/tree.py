"""A source's files, whether a folder or a downloaded archive (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``).

Archives are read in place, never unpacked to disk, with the safety of a folder:

* every member name is checked when the archive is opened: an absolute name, a drive letter, a
  ``..`` component or a NUL byte refuses the whole archive, as does a symlink, hard link, device
  or FIFO member, a duplicate name, an encrypted member or (zip) overlapping member data;
* size and count limits (``TreeLimits``) refuse zip bombs before anything is inflated: the number
  of members, their total declared size, and the compression ratio (per member and overall);
* a truncated archive is refused (zip: no central directory, or member data past the end of the
  file; tar: no end-of-archive marker, or a compressed stream cut short).

When the archive's only top-level entry is a folder, that folder is the root. ``__MACOSX/`` and
``._name`` entries (resource forks macOS adds when it re-archives a folder) are left out. The format is told
by magic bytes, not by the file name. A ``Tree`` pickles without open handles (worker processes
reopen the archive on first read) and refuses to read an archive that changed since it was opened.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import logging
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

# TreeError, MemberTooLarge, TreeLimits, DEFAULT_LIMITS and check_member_name are also read from here by the sources.
from tagsight.ingest.tree_safety import (  # noqa: F401
    DEFAULT_LIMITS, MemberTooLarge, TAR_BLOCK, TreeError, TreeLimits,
    check_count, check_member_name, check_no_overlap, check_size, check_tar_end, check_tar_member, check_total,
    check_zip_member, safe_rel)

log = logging.getLogger(__name__)


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
_COMPRESSED = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
class Tree(ABC):
    """The regular files under one root, addressed by posix paths relative to it."""

    name: str      # display/source name: the folder's name, or the archive's file name without its suffix
    location: str  # the path as given, for messages
    kind: str      # "folder" | "zip" | "tar"

    @abstractmethod
    def files(self) -> list[str]:
        """Sorted posix paths of the regular files, relative to the root."""

    @abstractmethod
    def is_file(self, rel: str) -> bool:
        """True when ``rel`` is a regular file of the tree (False for unsafe paths, never raises)."""

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a folder of the tree."""
        return False

    @abstractmethod
    def listdir(self, rel: str) -> list[str]:
        """Sorted names of the regular files directly in folder ``rel`` ("" is the root); [] when none."""

    @abstractmethod
    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        """The content of ``rel``. FileNotFoundError when absent, IsADirectoryError for a folder,
        MemberTooLarge above ``max_bytes``, TreeError when unsafe or unreadable."""

    def read_head(self, rel: str, n: int) -> bytes:
        """The first ``n`` bytes of ``rel`` (to tell a file by its start); same errors as ``read_bytes``."""
        try:
            return self.read_bytes(rel, n)
        except MemberTooLarge:
            return self._head(rel, n)

    @abstractmethod
    def _head(self, rel: str, n: int) -> bytes: ...

    @abstractmethod
    def stamp(self, rel: str) -> str:
        """A short string that changes when the file's content may have changed (cache keys)."""

    def position(self, rel: str) -> int:
        """Where the file's data starts in the archive (reading in this order avoids seeking back)."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


# --------------------------------------------------------------------------------------- folders


class FolderTree(Tree):
    """A folder on disk. Files are listed lazily; symlinked files count when they resolve inside the root,
    symlinked folders are not followed; every read checks that the real path stays inside the root."""

    kind = "folder"

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        self.location = str(path)
        if not self.root.is_dir():
            raise TreeError(f"{self.root} is not a folder")
        self.name = self.root.resolve().name
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        if self._files is None:
            self._files = sorted(self._walk())
        return list(self._files)

    def _walk(self) -> list[str]:
        out, stack = [], [""]
        while stack:
            rel_dir = stack.pop()
            try:
                with os.scandir(self.root / rel_dir if rel_dir else self.root) as it:
                    entries = list(it)
            except OSError as exc:
                raise TreeError(f"cannot list {self.root / rel_dir}: {exc.strerror}") from None
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file(follow_symlinks=False) or (entry.is_symlink() and self.is_file(rel)):
                    out.append(rel)
        return out

    def _real(self, rel: str) -> str | None:
        """The real path of ``rel`` when it is safe and stays inside the root, else None."""
        clean = safe_rel(rel)
        if clean is None:
            return None
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(real_root, clean))
        return real if real.startswith(real_root.rstrip(os.sep) + os.sep) else None

    def is_file(self, rel: str) -> bool:
        real = self._real(rel)
        return real is not None and os.path.isfile(real)

    def is_dir(self, rel: str) -> bool:
        real = self._real(rel)
        return real is not None and os.path.isdir(real)

    def listdir(self, rel: str) -> list[str]:
        real = self._real(rel) if rel else os.path.realpath(self.root)
        if real is None or not os.path.isdir(real):
            return []
        try:
            with os.scandir(real) as it:
                return sorted(e.name for e in it if e.is_file(follow_symlinks=False))
        except OSError:
            return []

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        real = self._real(rel)
        if real is None:
            raise TreeError(f"{rel!r} is not a path inside {self.location}")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(real, flags)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"{rel} does not exist in {self.location}") from None
        except OSError as exc:
            raise TreeError(f"cannot open {rel} in {self.location}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(f"{rel} is a folder in {self.location}")
            if not stat.S_ISREG(st.st_mode):
                raise TreeError(f"{rel} in {self.location} is not a regular file")
            check_size(rel, st.st_size, max_bytes)
            try:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
            except OSError as exc:
                raise TreeError(f"cannot read {rel} in {self.location}: {exc.strerror}") from None
        check_size(rel, len(data), max_bytes)
        return data

    def _head(self, rel: str, n: int) -> bytes:
        real = self._real(rel)
        if real is None:
            raise TreeError(f"{rel!r} is not a path inside {self.location}")
        with open(real, "rb") as f:
            return f.read(n)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": None}  # the listing is not needed to read, and may be large

    def stamp(self, rel: str) -> str:
        try:
            st = os.lstat(self.root / rel)
        except OSError as exc:
            return type(exc).__name__
        return f"{st.st_size}:{st.st_mtime_ns}"


# --------------------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class _Member:
    """One regular file of an archive: its full member name, uncompressed size and where its data starts."""

    member: str
    size: int
    offset: int
    crc: int = 0


_Entry = tuple[str, _Member | None]   # a member's name and its data, None for a folder


@dataclass(frozen=True)
class _Index:
    """What opening an archive learnt: its files and folders (paths relative to the root) and its stat."""

    files: dict[str, _Member]
    dirs: frozenset[str]
    stat: tuple[int, int]


_H = TypeVar("_H", zipfile.ZipFile, io.BufferedIOBase)   # an archive's open handle: the zip file, or the tar stream


class ArchiveTree(Tree, Generic[_H]):
    """Common part of zip and tar trees: the index built (and checked) once, reads by member."""

    def __init__(self, path: Path, key: tuple[Any, ...], index: _Index) -> None:
        self.path, self.location, self._key = path, str(path), key
        self._idx: _Index | None = index       # None after unpickling, until first use
        self.name = archive_stem(path.name)

    @property
    def _index(self) -> _Index:
        """The checked index; after unpickling, taken from this process's cache (a forked worker inherits
        it) or rebuilt, so that a large index never travels with every chunk of work."""
        if self._idx is None:
            self._idx = _cached_index(*self._key)
        return self._idx

    def files(self) -> list[str]:
        return sorted(self._index.files)

    def is_file(self, rel: str) -> bool:
        return safe_rel(rel) in self._index.files

    def is_dir(self, rel: str) -> bool:
        clean = safe_rel(rel)
        return clean is not None and (clean == "" or clean in self._index.dirs)

    def listdir(self, rel: str) -> list[str]:
        prefix = f"{safe_rel(rel)}/" if rel else ""
        return sorted(f[len(prefix):] for f in self._index.files if f.startswith(prefix) and "/" not in f[len(prefix):])

    def stamp(self, rel: str) -> str:
        m = self._index.files.get(safe_rel(rel) or "")
        size, mtime = self._index.stat
        return f"{size}:{mtime}:{m.size}:{m.offset}:{m.crc}" if m else "missing"

    def position(self, rel: str) -> int:
        m = self._index.files.get(safe_rel(rel) or "")
        return m.offset if m else 0

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        clean = safe_rel(rel)
        if clean is None:
            raise TreeError(f"{rel!r} is not a path inside {self.location}")
        member = self._index.files.get(clean)
        if member is None:
            if clean in self._index.dirs:
                raise IsADirectoryError(f"{rel} is a folder in {self.location}")
            raise FileNotFoundError(f"{rel} is not in {self.location}")
        check_size(rel, member.size, max_bytes)
        data = self._read_checked(rel, member)
        if len(data) != member.size:
            raise TreeError(f"{rel} in {self.location} is cut short ({len(data)} of {member.size} bytes): "
                            "the archive is truncated")
        return data

    @abstractmethod
    def _read(self, member: _Member, n: int | None = None) -> bytes: ...

    def _head(self, rel: str, n: int) -> bytes:
        return self._read_checked(rel, self._index.files[safe_rel(rel) or ""], n)

    def _read_checked(self, rel: str, member: _Member, n: int | None = None) -> bytes:
        """``_read`` of an archive that has not changed; a read error closes the handle and is a TreeError."""
        self._check_unchanged()
        try:
            return self._read(member, n)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, NotImplementedError) as exc:
            self.close()  # a stream left mid-error is not reused
            raise TreeError(f"cannot read {rel} from {self.location}: {type(exc).__name__}: {exc}") from None

    def _check_unchanged(self) -> None:
        try:
            now = _stat_key(self.path)
        except OSError as exc:
            raise TreeError(f"cannot read {self.location}: {exc.strerror}") from None
        if now != self._index.stat:
            raise TreeError(f"{self.location} changed while it was being read; run again")

    def close(self) -> None:
        """Close this process's open handle on the archive (it is reopened on the next read)."""
        handle = _HANDLES.pop((os.getpid(), self._key), None)
        if handle is not None:
            handle.close()

    def _handle(self) -> _H:
        return _shared_handle((os.getpid(), self._key), self._open)

    @abstractmethod
    def _open(self) -> _H: ...

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_idx": None}  # no open file (there is none on the object) and no index


class ZipTree(ArchiveTree[zipfile.ZipFile]):
    kind = "zip"

    def _open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.path)

    def _read(self, member: _Member, n: int | None = None) -> bytes:
        with self._handle().open(member.member) as f:
            return f.read(member.size + 1 if n is None else n)


class TarTree(ArchiveTree[io.BufferedIOBase]):
    kind = "tar"

    def __init__(self, path: Path, key: tuple[Any, ...], index: _Index, compression: str | None) -> None:
        super().__init__(path, key, index)
        self.compression = compression

    def _open(self) -> io.BufferedIOBase:
        return _decompressed(self.path, self.compression)

    def _read(self, member: _Member, n: int | None = None) -> bytes:
        stream = self._handle()
        stream.seek(member.offset)  # forward seeks decompress; reading in position order avoids going back
        return stream.read(member.size if n is None else min(n, member.size))


# (process id, archive key) -> open handle; the archive key names the kind (zip, tar and its compression)
_HANDLES: "OrderedDict[tuple[int, tuple[Any, ...]], Any]" = OrderedDict()
_MAX_HANDLES = 4


def _shared_handle(key: tuple[int, tuple[Any, ...]], opener: Callable[[], _H]) -> _H:
    """One open handle per archive and process, kept between Tree objects (a worker reads chunk after
    chunk without reopening, and a compressed tar stream goes on from where it stopped). Keyed by
    process id: a forked worker never uses its parent's file position."""
    handle: _H | None = _HANDLES.pop(key, None)  # cached under the same key: made by the same kind's opener
    if handle is None:
        handle = opener()
    _HANDLES[key] = handle
    while len(_HANDLES) > _MAX_HANDLES:
        (pid, _), old = _HANDLES.popitem(last=False)
        if pid == os.getpid():
            old.close()
    return handle


# --------------------------------------------------------------------------------------- opening


def archive_stem(filename: str) -> str:
    """``export.tar.gz`` -> ``export``; a name without a known archive suffix loses its last suffix only."""
    lower = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[:-len(suffix)]
    return Path(filename).stem


def archive_kind(path: str | Path) -> tuple[str, str | None] | None:
    """``("zip", None)``, ``("tar", compression)`` with compression None/gz/bz2/xz, or None, from magic bytes."""
    p = Path(path)
    try:
        if not p.is_file():
            return None
        with p.open("rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(_ZIP_MAGIC):
        return "zip", None
    for magic, compression in _COMPRESSED.items():
        if head.startswith(magic):
            return ("tar", compression) if _looks_like_tar(p, compression) else None
    return ("tar", None) if _looks_like_tar(p, None) else None


def _looks_like_tar(path: Path, compression: str | None) -> bool:
    """The first 512 (decompressed) bytes are a tar header: ``ustar`` magic or a valid header checksum."""
    try:
        with _decompressed(path, compression) as f:
            block = f.read(TAR_BLOCK)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return False
    if len(block) < TAR_BLOCK or block[257:262] == b"ustar":
        return len(block) == TAR_BLOCK
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def is_archive(path: str | Path) -> bool:
    """True for a zip or (compressed) tar file, told by its magic bytes."""
    return archive_kind(path) is not None


def sniff_tree(path: str | Path) -> Tree | None:
    """For an adapter's ``sniff``: the tree of a folder or a safe archive, else None (never raises)."""
    p = Path(path)
    try:
        return open_tree(p) if p.is_dir() or is_archive(p) else None
    except (TreeError, OSError):
        return None


def open_tree(path: str | Path, limits: TreeLimits = DEFAULT_LIMITS) -> Tree:
    """A folder or archive as a Tree; TreeError when it is neither or cannot be read safely."""
    p = Path(path)
    if p.is_dir():
        return FolderTree(p)
    if not p.exists():
        raise TreeError(f"{p} does not exist")
    kind = archive_kind(p)
    if kind is None:
        raise TreeError(f"{p} is neither a folder nor a zip or tar archive")
    key = (str(p.resolve()), _stat_key(p), kind, limits)
    index = _cached_index(*key)
    return ZipTree(p, key, index) if kind[0] == "zip" else TarTree(p, key, index, kind[1])


def _stat_key(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _cached_index(path: str, stat_key: tuple[int, int], kind: tuple[str, str | None], limits: TreeLimits) -> _Index:
    """The checked index of an archive, built once per process for the same file, size and mtime."""
    p = Path(path)
    log.debug("indexing %s archive %s", kind[0], p)
    try:
        entries = _zip_entries(p, limits) if kind[0] == "zip" else _tar_entries(p, kind[1], limits)
    except TreeError:
        raise
    except (OSError, EOFError, lzma.LZMAError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise TreeError(f"{p.name} cannot be read as a {_label(kind)} archive ({type(exc).__name__}: {exc}); "
                        "it is probably truncated or damaged: download it again") from None
    return _build_index(p, entries, stat_key)


def _is_mac_residue(rel: str) -> bool:
    """``__MACOSX/...`` and ``._name``: resource forks macOS adds when it re-archives a folder (not content)."""
    return rel.split("/", 1)[0] == "__MACOSX" or rel.rsplit("/", 1)[-1].startswith("._")


def _label(kind: tuple[str, str | None]) -> str:
    return kind[0] if kind[1] is None else f"{kind[0]}.{kind[1]}"


def _build_index(path: Path, entries: list[_Entry], stat_key: tuple[int, int]) -> _Index:
    """Names cleaned and de-duplicated, and the single top-level folder (if any) taken as the root."""
    files: dict[str, _Member] = {}
    dirs: set[str] = set()
    for name, member in entries:
        clean = check_member_name(name)
        if not clean or _is_mac_residue(clean):
            continue
        if member is None:
            dirs.add(clean)
        elif clean in files:
            raise TreeError(f"{path.name} holds {clean!r} twice; refusing an ambiguous archive")
        else:
            files[clean] = member
    for rel in files:
        parts = rel.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    tops = {rel.split("/", 1)[0] for rel in [*files, *dirs]}
    if len(tops) == 1 and (top := next(iter(tops))) in dirs:
        cut = len(top) + 1
        files = {rel[cut:]: m for rel, m in files.items()}
        dirs = {d[cut:] for d in dirs if d != top}
    return _Index(files, frozenset(dirs), stat_key)


def _zip_entries(path: Path, limits: TreeLimits) -> list[_Entry]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise TreeError(f"{path.name} is not a readable zip archive ({exc}): no central directory, so it is "
                        "probably truncated (an interrupted download): download it again") from None
    with zf:
        infos = zf.infolist()
    check_count(path, len(infos), limits)
    size = path.stat().st_size
    entries: list[_Entry] = []
    total, ends = 0, []
    for info in infos:
        check_zip_member(path, info, size, limits)
        if info.is_dir():
            entries.append((info.filename, None))
            continue
        total += info.file_size
        ends.append((info.header_offset, info.header_offset + 30 + info.compress_size))
        entries.append((info.filename, _Member(info.filename, info.file_size, info.header_offset, info.CRC)))
    check_total(path, total, size, limits)
    check_no_overlap(path, ends)
    return entries


def _decompressed(path: Path, compression: str | None) -> io.BufferedIOBase:
    """A seekable binary stream of the (decompressed) tar bytes."""
    if compression is None:
        return open(path, "rb")
    openers: dict[str, Callable[[Path], io.BufferedIOBase]] = {"gz": lambda p: gzip.GzipFile(p, "rb"),
                                                               "bz2": lambda p: bz2.BZ2File(p, "rb"),
                                                               "xz": lambda p: lzma.LZMAFile(p, "rb")}
    return openers[compression](path)


def _tar_entries(path: Path, compression: str | None, limits: TreeLimits) -> list[_Entry]:
    """Members of a tar, checked one by one before their data is skipped (so a bomb is never inflated)."""
    archive_size = path.stat().st_size
    entries: list[_Entry] = []
    total = 0
    with _decompressed(path, compression) as stream:
        tar = tarfile.open(fileobj=stream, mode="r:")
        while (info := tar.next()) is not None:
            check_count(path, len(entries) + 1, limits)
            check_tar_member(path, info)
            if info.isdir():
                entries.append((info.name, None))
                continue
            total += info.size
            check_total(path, total, archive_size, limits)
            entries.append((info.name, _Member(info.name, info.size, info.offset_data)))
        check_tar_end(path, stream, tar.offset)
    return entries
