"""Build archives of a folder as the services hand them out (zip, tar, tar.gz), and hostile ones, in tmp_path."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path


def folder_files(root: Path) -> list[tuple[str, bytes]]:
    """(posix path under ``root``, content) of every file, sorted."""
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def zip_folder(root: Path, out: Path, prefix: str = "", dirs: bool = True) -> Path:
    """``root``'s files into a deflated zip, under ``prefix`` (e.g. ``"export/"``), with folder entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        seen: set[str] = set()
        for rel, data in folder_files(root):
            parts = (prefix + rel).split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i]) + "/"
                if dirs and d not in seen:
                    seen.add(d)
                    zf.writestr(d, b"")
            zf.writestr(prefix + rel, data)
    return out


def tar_folder(root: Path, out: Path, compression: str = "gz", prefix: str = "") -> Path:
    """``root``'s files into a tar (``compression`` "", "gz", "bz2" or "xz"), under ``prefix``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, f"w:{compression}" if compression else "w") as tar:
        for rel, data in folder_files(root):
            add_tar_member(tar, prefix + rel, data)
    return out


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
                   linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, linkname, 1_700_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def zip_with(out: Path, members: list[tuple[str, bytes]], symlink: tuple[str, str] | None = None) -> Path:
    """A zip of ``members`` and, optionally, a unix symlink member (name, target)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink[0])
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, symlink[1])
    return out


def tar_with(out: Path, members: list[tuple[str, bytes]], link: tuple[str, str, bytes] | None = None,
             compression: str = "gz") -> Path:
    """A tar of ``members`` and, optionally, a link member (name, target, tarfile.SYMTYPE/LNKTYPE)."""
    with tarfile.open(out, f"w:{compression}" if compression else "w") as tar:
        for name, data in members:
            add_tar_member(tar, name, data)
        if link is not None:
            add_tar_member(tar, link[0], kind=link[2], linkname=link[1])
    return out


def declare_size(zip_path: Path, member: str, size: int) -> Path:
    """Rewrite the uncompressed size a zip declares for ``member`` (local header and central directory)."""
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)               # local file header
    central = data.rfind(b"PK\x01\x02")  # central directory entries, from the last one back
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, central + 24, size)
            break
        central = data.rfind(b"PK\x01\x02", 0, central)
    zip_path.write_bytes(bytes(data))
    return zip_path


def truncate(path: Path, keep: float = 0.6) -> Path:
    """Cut ``path`` to a fraction of its size, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path
