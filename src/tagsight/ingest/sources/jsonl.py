"""JSONL in tagsight's own post schema: one JSON object per line, one file or a folder of ``*.jsonl``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

from tagsight.schema.posts import Post, SchemaError
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError

log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"


def record_ids(record: Any) -> tuple[str | None, str | None]:
    """``(post_id, author_id)`` of a raw record when they can be read, for exact rejection reports."""
    if not isinstance(record, Mapping):
        return None, None
    ids = []
    for name in ("post_id", "author_id"):
        value = record.get(name)
        ok = isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip()
        ids.append(str(value) if ok else None)
    return ids[0], ids[1]


def record_to_item(record: Any, ref: str, source: str, extra: Mapping[str, Any] | None = None) -> Item:
    """A raw mapping in our schema as a Post, or a Rejected carrying the SchemaError's reason code.

    Shared by the adapters: whatever goes wrong with one record becomes a Rejected, never a crash.
    """
    try:
        return Post.from_dict(record, source=source, extra=extra)
    except SchemaError as exc:
        return Rejected(ref, exc.reason, str(exc), *record_ids(record))
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        return Rejected(ref, "invalid_record", f"{type(exc).__name__}: {exc}", *record_ids(record))


def files_with_suffix(path: Path, suffix: str) -> list[Path]:
    """``path`` itself when it is a file, else the non-hidden ``*suffix`` files directly in it, sorted."""
    if path.is_file():
        return [path]
    found = [p for p in path.iterdir() if p.suffix.lower() == suffix and p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.name)


def has_suffix_files(path: Path, suffix: str) -> bool:
    """True for a ``*suffix`` file, or a folder directly holding one (used by ``sniff``)."""
    if path.is_file():
        return path.suffix.lower() == suffix
    if not path.is_dir():
        return False
    try:
        return any(p.suffix.lower() == suffix and not p.name.startswith(".") and p.is_file()
                   for p in path.iterdir())
    except OSError:
        return False


@SOURCES.register("jsonl")
class JsonlSource(Source):
    """A ``.jsonl`` file, or a folder whose ``*.jsonl`` files are read in sorted name order.

    Each non-blank line is one post in our schema (see ``Post.from_dict``). Media paths are relative
    to the folder holding the JSONL file(s), which is ``self.root``. A line that is not valid UTF-8,
    not valid JSON or not a valid post becomes a Rejected (``invalid_utf8``, ``malformed_json`` or
    the schema's reason code) and the other lines still load. Rejection refs are ``name.jsonl:LINE``.
    """

    format = "jsonl"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        if not has_suffix_files(self.path, ".jsonl"):
            raise SourceError(f"{self.path} is neither a .jsonl file nor a folder holding .jsonl files")
        self.files = files_with_suffix(self.path, ".jsonl")

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return has_suffix_files(Path(path), ".jsonl")

    def __iter__(self) -> Iterator[Item]:
        for file in self.files:
            log.debug("reading %s", file)
            yield from self._read_file(file)

    def _read_file(self, file: Path) -> Iterator[Item]:
        try:
            handle = file.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot open {file}: {exc.strerror}") from None
        with handle:
            for lineno, raw in enumerate(handle, start=1):
                if lineno == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM):]
                if raw.strip():
                    yield self._parse_line(raw, f"{file.name}:{lineno}")

    def _parse_line(self, raw: bytes, ref: str) -> Item:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(ref, "invalid_utf8", f"the line is not valid UTF-8 (byte {exc.start})")
        try:
            record = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return Rejected(ref, "malformed_json", f"the line is not valid JSON: {exc}")
        return record_to_item(record, ref, self.name)
