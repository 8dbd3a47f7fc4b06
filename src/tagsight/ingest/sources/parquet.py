"""Parquet in tagsight's own post schema: one file or a folder of ``*.parquet``, read batch by batch."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from tagsight.ingest.sources.base import SOURCES, Item, Source, SourceError
from tagsight.ingest.sources.jsonl import files_with_suffix, has_suffix_files, record_to_item

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("post_id", "author_id", "created_at", "visibility")
BATCH_ROWS = 1024


def row_to_record(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row as a mapping for ``Post.from_dict``.

    Accepts ``consent`` as a struct or a boolean column ``consent_ai_training``, and ``created_at``
    as a string, Unix seconds, or a timestamp/date column (naive timestamps are taken as UTC).
    """
    if "consent" not in row and "consent_ai_training" in row:
        row["consent"] = {"ai_training": row.pop("consent_ai_training")}
    created = row.get("created_at")
    if isinstance(created, (dt.datetime, dt.date)):
        row["created_at"] = created.isoformat()
    return row


@SOURCES.register("parquet")
class ParquetSource(Source):
    """A ``.parquet`` file, or a folder whose ``*.parquet`` files are read in sorted name order.

    Columns are named as the JSON fields of our schema; ``media`` is a list of structs
    (``path``, ``url``, ``sha256``, ``alt_text``) or a list of path strings. Media paths are
    relative to the folder holding the Parquet file(s). Rows are read in batches of
    ``BATCH_ROWS``; a bad row becomes a Rejected with ref ``file.parquet[ROW]`` (0-based).
    A file that is not Parquet, or lacks a required column, is a SourceError.
    """

    format = "parquet"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        if not has_suffix_files(self.path, ".parquet"):
            raise SourceError(f"{self.path} is neither a .parquet file nor a folder holding .parquet files")
        self.files = files_with_suffix(self.path, ".parquet")
        for file in self.files:
            with _open(file) as pf:
                _check_columns(file, pf.schema_arrow)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return has_suffix_files(Path(path), ".parquet")

    def __iter__(self) -> Iterator[Item]:
        for file in self.files:
            log.debug("reading %s", file)
            yield from self._read_file(file)

    def _read_file(self, file: Path) -> Iterator[Item]:
        row_index = 0
        try:
            with _open(file) as pf:
                for batch in pf.iter_batches(batch_size=BATCH_ROWS):
                    for row in batch.to_pylist():
                        yield record_to_item(row_to_record(row), f"{file.name}[{row_index}]", self.name)
                        row_index += 1
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {file} after row {row_index}: {exc}") from None


def _open(file: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{file} is not a readable Parquet file: {exc}") from None


def _check_columns(file: Path, schema: pa.Schema) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise SourceError(f"{file} lacks the required column(s) {', '.join(missing)}; "
                          f"it has {', '.join(schema.names)}")
