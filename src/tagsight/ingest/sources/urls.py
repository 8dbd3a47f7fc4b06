"""URL + caption lists as img2dataset takes them: one post per row, its one image fetched from the URL.

Formats, by file suffix (a folder is read file by file in sorted name order): ``.txt`` (one URL a
line, no caption), ``.csv``, ``.tsv``, ``.jsonl`` (each optionally ``.gz``) and ``.parquet``. The URL
and caption columns are named by ``url_col`` and ``caption_col`` (img2dataset's ``--url_col`` and
``--caption_col``; defaults ``url`` and ``caption``; a missing caption column means no captions).

Each row becomes a post in our schema:

- ``post_id``: the first 24 hex digits of the URL's SHA-256 (a URL listed twice is a
  ``duplicate_post_id``), so ids do not change when rows are added or removed;
- ``author_id``: the URL's host name (so an opt-out list can name a whole site);
- ``visibility``: ``public`` (the image is on the open web); consent is unknown (the policy default
  applies) and the sites' own opt-outs are checked when the image is fetched;
- ``created_at``: the list file's modification time (URL lists carry no dates);
- ``caption``: the caption column (hashtags are parsed from it); ``media``: ``[{"url": URL}]``.

A row without a usable URL is a Rejected (``missing_field:url`` or ``invalid_url``); a file that
lacks the URL column is a SourceError. Refs are ``file:LINE`` for text files (the header is line 1)
and ``file[ROW]`` (0-based) for Parquet.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import IO, Any, Iterator
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from tagsight.ingest.fetch import check_url
from tagsight.ingest.images import ImageRejected
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
BATCH_ROWS = 4096


def _kind(path: Path) -> str | None:
    """The list format of a file by its suffix (``.gz`` allowed for text formats), else None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        return next((s for s in SUFFIXES if name.endswith(s) and s != ".parquet"), None)
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def list_files(path: Path) -> list[Path]:
    """``path`` itself, or the non-hidden URL-list files directly in a folder, sorted by name."""
    if path.is_file():
        if _kind(path) is None:
            raise SourceError(f"{path} is not a URL list ({', '.join(SUFFIXES)}, text formats optionally .gz)")
        return [path]
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and _kind(p)),
                   key=lambda p: p.name)
    if not files:
        raise SourceError(f"{path} holds no URL list ({', '.join(SUFFIXES)})")
    return files


@SOURCES.register("urls")
class UrlListSource(Source):
    """A URL list (or a folder of them) in img2dataset's input formats; see the module doc."""

    format = "urls"
    user_options = ("url_col", "caption_col")

    def __init__(self, path: str | Path, *, name: str | None = None, url_col: str | None = None,
                 caption_col: str | None = None) -> None:
        super().__init__(path, name=name)
        self.url_col, self.caption_col = url_col or "url", caption_col or "caption"
        self.files = list_files(self.path)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return False  # a .jsonl/.parquet/.csv may as well hold posts or tags: URL lists are named with --format urls

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "url column": self.url_col, "caption column": self.caption_col}

    def __iter__(self) -> Iterator[Item]:
        for file in self.files:
            log.debug("reading %s", file)
            made = dt.datetime.fromtimestamp(file.stat().st_mtime, dt.timezone.utc).isoformat()
            for ref, row in self._rows(file):
                yield self._post(row, ref, made)

    def _rows(self, file: Path) -> Iterator[tuple[str, Any]]:
        kind = _kind(file)
        if kind == ".parquet":
            yield from self._parquet_rows(file)
            return
        try:
            with _open_text(file) as handle:
                if kind == ".txt":
                    yield from ((f"{file.name}:{n}", {self.url_col: line.strip()})
                                for n, line in enumerate(handle, start=1) if line.strip())
                elif kind == ".jsonl":
                    yield from ((f"{file.name}:{n}", _json_row(line)) for n, line in enumerate(handle, start=1)
                                if line.strip())
                else:
                    yield from self._csv_rows(file, handle, "\t" if kind == ".tsv" else ",")
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise SourceError(f"cannot read {file}: {exc}") from None

    def _csv_rows(self, file: Path, handle: IO[str], delimiter: str) -> Iterator[tuple[str, Any]]:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if reader.fieldnames is None or self.url_col not in reader.fieldnames:
            raise SourceError(f"{file} has no {self.url_col!r} column (it has {', '.join(reader.fieldnames or [])}); "
                              "name the URL column with --url-col")
        for row in reader:
            yield f"{file.name}:{reader.line_num}", row

    def _parquet_rows(self, file: Path) -> Iterator[tuple[str, Any]]:
        try:
            pf = pq.ParquetFile(file)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{file} is not a readable Parquet file: {exc}") from None
        names = pf.schema_arrow.names
        if self.url_col not in names:
            raise SourceError(f"{file} has no {self.url_col!r} column (it has {', '.join(names)}); "
                              "name the URL column with --url-col")
        columns = [c for c in (self.url_col, self.caption_col) if c in names]
        index = 0
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                for row in batch.to_pylist():
                    yield f"{file.name}[{index}]", row
                    index += 1
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {file} after row {index}: {exc}") from None

    def _post(self, row: Any, ref: str, made: str) -> Item:
        if isinstance(row, Rejected):
            return Rejected(ref, row.reason, row.detail)
        url = row.get(self.url_col) if isinstance(row, dict) else None
        if not isinstance(url, str) or not url.strip():
            return Rejected(ref, "missing_field:url", f"the row has no {self.url_col!r} value")
        url = url.strip()
        try:
            check_url(url)
        except ImageRejected as exc:
            return Rejected(ref, exc.reason, str(exc))
        caption = row.get(self.caption_col)
        record = {"post_id": hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:24],
                  "author_id": urlsplit(url).hostname, "created_at": made, "visibility": "public",
                  "caption": caption if isinstance(caption, str) else "", "media": [{"url": url}]}
        return record_to_item(record, ref, self.name)


def _open_text(file: Path) -> IO[str]:
    if file.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(file, "rb"), encoding="utf-8-sig", newline="")
    return file.open("r", encoding="utf-8-sig", newline="")


def _json_row(line: str) -> Any:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return Rejected("", "malformed_json", f"the line is not valid JSON: {exc}")
    return row if isinstance(row, dict) else Rejected("", "invalid_record", "the line is not a JSON object")
