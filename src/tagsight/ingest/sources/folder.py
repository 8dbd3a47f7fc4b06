"""An image folder: one image = one post, with optional ``.txt`` / ``.json`` sidecars next to it."""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, check_visibility
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.schema.text import parse_hashtags
from tagsight.tags.wordnet import wnid_hashtag

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"})
MAX_SIDECAR_BYTES = 1 << 20


class _SidecarError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Entry:
    """One listed file: ``rel`` is its posix path under the root; ``kind`` says what to do with it."""

    rel: str
    kind: str  # "image", "other" (not an image, not a sidecar) or "symlinked_folder"
    sidecars: tuple[str, ...] = ()  # rel paths, applied in order (later ones override earlier ones)


def is_image_name(name: str) -> bool:
    """True when the file name has one of ``IMAGE_EXTENSIONS`` (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def sidecar_names(image_name: str) -> tuple[str, ...]:
    """Sidecar names of an image, least specific first: ``photo.txt``, ``photo.jpg.txt``, ``.json`` ones."""
    stem = os.path.splitext(image_name)[0]
    return (f"{stem}.txt", f"{image_name}.txt", f"{stem}.json", f"{image_name}.json")


def list_folder(root: Path) -> list[Entry]:
    """Every non-hidden file under ``root`` (recursive, one ``os.scandir`` per folder), sorted by path.

    Symlinked files are listed as found; symlinked folders are not followed (``symlinked_folder``).
    """
    entries: list[Entry] = []
    stack = [("", os.fspath(root))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        files, subdirs = _scan_dir(abs_dir)
        prefix = f"{rel_dir}/" if rel_dir else ""
        entries += _classify(prefix, files)
        for name, is_link in subdirs:
            if is_link:
                entries.append(Entry(prefix + name, "symlinked_folder"))
            else:
                stack.append((prefix + name, os.path.join(abs_dir, name)))
    return sorted(entries, key=lambda e: e.rel)


def _scan_dir(abs_dir: str) -> tuple[list[str], list[tuple[str, bool]]]:
    """File names and ``(folder name, is_symlink)`` of one folder, hidden names skipped."""
    files, subdirs = [], []
    with os.scandir(abs_dir) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((entry.name, False))
            elif entry.is_symlink() and entry.is_dir():
                subdirs.append((entry.name, True))
            else:
                files.append(entry.name)
    return files, subdirs


def _classify(prefix: str, files: list[str]) -> list[Entry]:
    names = set(files)
    images = [n for n in files if is_image_name(n)]
    used: set[str] = set()
    out = []
    for image in images:
        sidecars = tuple(s for s in sidecar_names(image) if s in names)
        used.update(sidecars)
        out.append(Entry(prefix + image, "image", tuple(prefix + s for s in sidecars)))
    out += [Entry(prefix + n, "other") for n in files if n not in used and not is_image_name(n)]
    return out


def read_sidecar(path: Path, root: Path) -> dict[str, Any]:
    """The fields a sidecar gives: ``{"caption": text}`` for ``.txt``, the object itself for ``.json``.

    A sidecar that resolves outside ``root`` (a symlink) or is not a regular file is not read.
    """
    data = _sidecar_bytes(path, root)
    if len(data) > MAX_SIDECAR_BYTES:
        raise _SidecarError("malformed_sidecar", f"sidecar {path.name} is larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _SidecarError("malformed_sidecar", f"sidecar {path.name} is not UTF-8 (byte {exc.start})") from None
    if path.suffix == ".txt":
        return {"caption": text.strip()}
    try:
        fields = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _SidecarError("malformed_sidecar", f"sidecar {path.name} is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise _SidecarError("malformed_sidecar", f"sidecar {path.name} must hold a JSON object of post fields")
    return fields


def _sidecar_bytes(path: Path, root: Path) -> bytes:
    real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real_root not in real.parents:
        raise _SidecarError("sidecar_escapes_root", f"sidecar {path.name} resolves outside the source folder")
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            raise _SidecarError("unreadable_sidecar", f"sidecar {path.name} is not a regular file")
        with real.open("rb") as f:
            return f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise _SidecarError("unreadable_sidecar", f"cannot read sidecar {path.name}: {exc.strerror}") from None


@SOURCES.register("folder")
class FolderSource(Source):
    """A folder of images (recursive), one post per image, in sorted path order.

    * ``post_id`` is the image path under the root without its extension (``cats/001``).
    * Sidecars: ``photo.txt`` / ``photo.jpg.txt`` hold the caption (hashtags are parsed from it);
      ``photo.json`` / ``photo.jpg.json`` hold any Post fields (``hashtags``, ``visibility``,
      ``author_id``, ``created_at``, ``consent``, ``caption``, ...; ``alt_text`` becomes the image's
      alt text; a ``media`` key is ignored: the image is the media). JSON beats text; the
      ``photo.jpg.*`` form beats ``photo.*``.
    * Defaults: ``author_id`` = ``author`` (``"unknown"``), ``visibility`` = ``visibility``
      (``"public"``: a folder the user points at is taken to be theirs to publish; pass another
      visibility when it is not), ``created_at`` = the file's modification time.
    * Images in a subfolder carry the folder's name in ``extra["label"]`` (``root/<class>/x.jpg``);
      it also becomes a hashtag only when ``class_as_hashtag`` is true (a WordNet noun id such as
      ``n01440764``, the ImageNet folder layout, becomes its noun: ``#tench``).
    * Not silently dropped: a non-image file that is no sidecar gives Rejected ``unsupported_file``;
      a symlinked folder (never followed) gives ``symlinked_folder``; a bad sidecar gives
      ``malformed_sidecar`` / ``unreadable_sidecar`` for its image, and a sidecar that resolves
      outside the folder is not read (``sidecar_escapes_root``). Hidden names (``.x``) are skipped.
    * Symlinked images are yielded as found; the pipeline's path-safety check decides about them.
    """

    format = "folder"
    user_options = ("author", "visibility", "class_as_hashtag")

    def __init__(self, path: str | Path, *, name: str | None = None, author: str = "unknown",
                 visibility: str = "public", class_as_hashtag: bool = False) -> None:
        super().__init__(path, name=name)
        if not self.path.is_dir():
            raise SourceError(f"{self.path} is not a folder")
        if not isinstance(author, str) or not author.strip():
            raise ValueError(f"author must be a non-empty string, got {author!r}")
        check_visibility(visibility)
        self.author, self.visibility, self.class_as_hashtag = author, visibility, class_as_hashtag

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return Path(path).is_dir() and _holds_an_image(os.fspath(path))

    def __iter__(self) -> Iterator[Item]:
        try:
            entries = list_folder(self.root)
        except OSError as exc:
            raise SourceError(f"cannot list {self.root}: {exc}") from None
        log.debug("%s: %d files listed", self.root, len(entries))
        for entry in entries:
            yield self._item(entry)

    def _item(self, entry: Entry) -> Item:
        if entry.kind == "symlinked_folder":
            return Rejected(entry.rel, "symlinked_folder", "a symlinked folder is not followed; "
                            "point tagsight at its target instead")
        if entry.kind == "other":
            return Rejected(entry.rel, "unsupported_file", "not an image by its extension "
                            f"({', '.join(sorted(IMAGE_EXTENSIONS))}) and not the sidecar of an image")
        return self._image_item(entry)

    def _image_item(self, entry: Entry) -> Item:
        post_id = os.path.splitext(entry.rel)[0]
        record: dict[str, Any] = {"post_id": post_id, "author_id": self.author, "visibility": self.visibility}
        try:
            for sidecar in entry.sidecars:
                record.update(read_sidecar(self.root / sidecar, self.root))
            if record.get("created_at") in (None, ""):
                record["created_at"] = os.lstat(self.root / entry.rel).st_mtime
        except _SidecarError as exc:
            return Rejected(entry.rel, exc.reason, exc.detail, post_id=post_id, author_id=self.author)
        except OSError as exc:
            return Rejected(entry.rel, "unreadable_file", f"cannot stat the image: {exc.strerror}",
                            post_id=post_id, author_id=self.author)
        record["media"] = [{"path": entry.rel, "alt_text": record.get("alt_text")}]
        label = entry.rel.rsplit("/", 2)[-2] if "/" in entry.rel else None
        if label and self.class_as_hashtag:   # a WordNet id folder (ImageNet layout) gives its noun: #tench
            _add_hashtag(record, wnid_hashtag(label) or label)
        return record_to_item(record, entry.rel, self.name, {"label": label} if label else None)


def _add_hashtag(record: dict[str, Any], tag: str) -> None:
    """Append ``tag`` to the record's hashtags (parsed from the caption when absent) unless present."""
    tags, caption = record.get("hashtags"), record.get("caption") or ""
    if tags is None and isinstance(caption, str):
        tags = parse_hashtags(caption)
    if isinstance(tags, list) and tag not in [t.lstrip("#＃") if isinstance(t, str) else t for t in tags]:
        record["hashtags"] = [*tags, tag]


def _holds_an_image(top: str) -> bool:
    """True as soon as one non-hidden image is found under ``top`` (symlinked folders not followed)."""
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif is_image_name(entry.name):
                        return True
        except OSError:
            continue
    return False
