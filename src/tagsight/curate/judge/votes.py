"""Preference votes, stored as ``STUDY/votes.parquet``: one row per keypress that counted, history kept.

A vote names the rater, the opaque pair id, the side the rater saw as better (``left``, ``right``,
or ``none`` for no preference) and the time. Undoing appends an ``undo`` row; the latest row per
(pair, rater) counts, and a pair whose latest row is ``undo`` is back in that rater's queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagsight.fsio import append_parquet_rows, read_parquet_rows

VOTES_FILE = "votes.parquet"
CHOICES = ("left", "right", "none")
UNDO = "undo"
SCHEMA = pa.schema([("rater", pa.string()), ("pair", pa.string()), ("choice", pa.string()), ("at", pa.string())])


def check_vote(row: dict[str, Any]) -> dict[str, Any]:
    """A complete, validated vote row (ValueError names the bad field)."""
    out: dict[str, Any] = {name: row.get(name) for name in SCHEMA.names}
    for name in ("rater", "pair"):
        if not isinstance(out[name], str) or not out[name].strip():
            raise ValueError(f"a vote needs a non-empty {name}")
    out["rater"] = out["rater"].strip()
    if out["choice"] not in (*CHOICES, UNDO):
        raise ValueError(f"choice must be one of {(*CHOICES, UNDO)}, got {out['choice']!r}")
    out["at"] = out["at"] or datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return out


def read_votes(study_dir: str | Path) -> list[dict[str, Any]]:
    return read_parquet_rows(Path(study_dir) / VOTES_FILE)


def append_votes(study_dir: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Validate and append vote rows (atomic rewrite of the table); returns how many were added."""
    return append_parquet_rows(Path(study_dir) / VOTES_FILE, [check_vote(r) for r in rows], SCHEMA)


def latest_votes(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """The standing choice of each (pair, rater): the latest row, undone ones left out."""
    out: dict[tuple[str, str], str] = {}
    for r in rows:
        out[(r["pair"], r["rater"])] = r["choice"]
    return {k: v for k, v in out.items() if v != UNDO}
