"""Atomic file writes and reason-coded errors shared by every layer (the lowest layer: no tagsight imports)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


class ReasonError(ValueError):
    """Bad input with a stable ``reason`` code for records and reports, and a human message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def private_temp(path: Path) -> Path:
    """A temporary name beside ``path`` that is this process's and thread's own (``.NAME.PID.THREAD.tmp``), so
    writers of one path at once never share it: each renames a whole file of theirs and the last rename wins."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename: readers see old or new, never half.
    The temporary file is ``private_temp``'s, so torchrun ranks filling one cache or threads can write one path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_temp(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_parquet_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a Parquet table as dicts (empty when the file does not exist)."""
    import pyarrow.parquet as pq

    path = Path(path)
    return pq.read_table(path).to_pylist() if path.is_file() else []


def append_parquet_rows(path: str | Path, rows: list[dict[str, Any]], schema: pa.Schema) -> int:
    """Append ``rows`` to a small append-only Parquet table by an atomic rewrite; returns how many were added."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(read_parquet_rows(path) + list(rows), schema=schema), buf)
        atomic_write_bytes(path, buf.getvalue())
    return len(rows)
