"""Hashtag-only corpora (no images), for vocabulary building: the HARRISON layout or a plain ``.txt``."""

from __future__ import annotations

import logging
from itertools import zip_longest
from pathlib import Path
from typing import BinaryIO, Iterator

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item

log = logging.getLogger(__name__)

TAG_LIST = "tag_list.txt"
DATA_LIST = "data_list.txt"


def query_of(image_path: str) -> str | None:
    """The collection query of a HARRISON image path (``instagram_dataset/<query>/image_n.jpg``)."""
    parts = image_path.strip().replace("\\", "/").split("/")
    return parts[-2] if len(parts) >= 2 and parts[-2] else None


@SOURCES.register("tagsonly")
class TagsOnlySource(Source):
    """One post per line, hashtags separated by spaces; never sniffed, choose it with ``tagsonly``.

    ``path`` is a folder holding ``tag_list.txt`` (and optionally ``data_list.txt``, whose line i is
    the image path of post i: its folder name goes into ``extra["query"]``), or any ``.txt`` file.
    ``post_id`` is the 1-based line number; author ``"unknown"``; public; no media (the ingest
    pipeline rejects such posts as ``no_media``: this source is for vocabulary statistics).
    ``created_at`` is the tag file's modification time (the format has no dates). Every line is a
    post, an empty one has no hashtags; a line that is not UTF-8 gives Rejected ``invalid_utf8``.
    """

    format = "tagsonly"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        if self.path.is_dir():
            self.tag_file, data = self.path / TAG_LIST, self.path / DATA_LIST
            self.data_file = data if data.is_file() else None
        else:
            self.tag_file, self.data_file = self.path, None
        if not self.tag_file.is_file() or self.tag_file.suffix.lower() != ".txt":
            raise SourceError(f"{self.path} is neither a folder holding {TAG_LIST} nor a .txt file")

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return False

    def __iter__(self) -> Iterator[Item]:
        try:
            created_at = self.tag_file.stat().st_mtime
            with self.tag_file.open("rb") as tags, _open_optional(self.data_file) as images:
                for lineno, (raw, image) in enumerate(zip_longest(tags, images), start=1):
                    if raw is None:
                        break
                    yield self._item(raw, image, lineno, created_at)
        except OSError as exc:
            raise SourceError(f"cannot read {self.tag_file}: {exc.strerror}") from None

    def _item(self, raw: bytes, image: bytes | None, lineno: int, created_at: float) -> Item:
        ref = f"{self.tag_file.name}:{lineno}"
        try:
            tags = raw.decode("utf-8-sig").split()
        except UnicodeDecodeError as exc:
            return Rejected(ref, "invalid_utf8", f"the line is not valid UTF-8 (byte {exc.start})", str(lineno))
        query = query_of(image.decode("utf-8", "replace")) if image else None
        record = {"post_id": str(lineno), "author_id": "unknown", "created_at": created_at,
                  "visibility": "public", "hashtags": tags}
        return record_to_item(record, ref, self.name, {"query": query} if query else None)


class _NoFile:
    """An empty line source standing in for a missing ``data_list.txt``."""

    def __enter__(self) -> list[bytes]:
        return []

    def __exit__(self, *exc: object) -> None:
        return None


def _open_optional(path: Path | None) -> BinaryIO | _NoFile:
    return path.open("rb") if path is not None else _NoFile()
