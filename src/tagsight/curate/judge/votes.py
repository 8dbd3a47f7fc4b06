"""Preference votes, stored as ``STUDY/votes.parquet``: one row per keypress that counted, history kept.

A vote names the rater, the opaque pair id, the side the rater saw as better (``left``, ``right``,
or ``none`` for no preference) and the time. Undoing appends an ``undo`` row; the latest row per
(pair, rater) counts (by time, then by position), and a pair whose latest row is ``undo`` is back in that
rater's queue.

Several raters may vote on one server (each opens the page with their own ``?rater=NAME``) or on
copies of the study folder on their own machines; ``merge_votes`` brings the copies' votes into one
table (rows already there are not added twice), refusing a folder that is not a copy of the same study.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagsight.fsio import ReasonError, append_parquet_rows, read_parquet_rows

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
    """The standing choice of each (pair, rater): the latest row by time (then position), undone ones left out."""
    out: dict[tuple[str, str], str] = {}
    for r in sorted(rows, key=lambda r: r.get("at") or ""):
        out[(r["pair"], r["rater"])] = r["choice"]
    return {k: v for k, v in out.items() if v != UNDO}


def _source_rows(study_dir: Path, source: Path) -> list[dict[str, Any]]:
    """The vote rows of ``source`` (a copy of the study folder, or a votes table), checked against the study."""
    if source.is_dir():
        if source.resolve() == study_dir.resolve():
            raise ReasonError("same_study", f"{source} is the study itself")
        mine, theirs = study_dir / "pairs.json", source / "pairs.json"
        if not theirs.is_file() or theirs.read_bytes() != mine.read_bytes():
            raise ReasonError("different_study", f"{source} is not a copy of the study {study_dir} (its pairs.json "
                                                 "differs or is missing)")
        source = source / VOTES_FILE
    if not source.is_file():
        raise ReasonError("no_votes", f"{source} does not exist")
    return [check_vote(r) for r in read_parquet_rows(source)]


def merge_votes(study_dir: str | Path, sources: Iterable[str | Path]) -> dict[str, Any]:
    """Append the votes of ``sources`` not yet in the study's table; every source is checked before any is added."""
    study_dir = Path(study_dir)
    known = {p["pair"] for p in json.loads((study_dir / "pairs.json").read_text())["pairs"]}
    have = {tuple(r[k] for k in SCHEMA.names) for r in read_votes(study_dir)}
    new: list[dict[str, Any]] = []
    per_source = {}
    for source in map(Path, sources):
        rows = _source_rows(study_dir, source)
        unknown = sorted({r["pair"] for r in rows} - known)
        if unknown:
            raise ReasonError("unknown_pair", f"{source}: votes name pairs the study does not have: {unknown[:5]}")
        fresh = [r for r in rows if tuple(r[k] for k in SCHEMA.names) not in have]
        have.update(tuple(r[k] for k in SCHEMA.names) for r in fresh)
        new += fresh
        per_source[str(source)] = {"rows": len(rows), "added": len(fresh),
                                   "raters": sorted({r["rater"] for r in rows})}
    append_votes(study_dir, new)
    return {"added": len(new), "sources": per_source, "rows": len(read_votes(study_dir)),
            "raters": sorted({r["rater"] for r in read_votes(study_dir)})}
