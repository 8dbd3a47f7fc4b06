"""Human review decisions, stored in the catalog as ``catalog/reviews.parquet`` (one row per judgement).

Stage ``generalist``: a fast keep/reject. Stage ``specialist``: 1-5 ratings of composition,
lighting, colour and contrast, subject and background, and storytelling, plus a caption the
reviewer writes. Rows are only ever appended (a reviewer changing their mind adds a newer row;
the latest row per (key, reviewer, stage) counts), so the history of every decision is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagsight.fsio import append_parquet_rows, read_parquet_rows

REVIEWS_FILE = Path("catalog") / "reviews.parquet"
STAGES = ("generalist", "specialist")
DECISIONS = ("keep", "reject")
ASPECTS = ("composition", "lighting", "colour", "subject", "storytelling")
_COLUMNS: list[tuple[str, pa.DataType]] = [("key", pa.string()), ("post_key", pa.string()), ("reviewer", pa.string()),
                                           ("stage", pa.string()), ("decision", pa.string()),
                                           *[(a, pa.int8()) for a in ASPECTS], ("caption", pa.string()),
                                           ("at", pa.string())]
SCHEMA = pa.schema(_COLUMNS)


def check_review(row: dict[str, Any]) -> dict[str, Any]:
    """A complete, validated review row (ValueError names the bad field)."""
    out: dict[str, Any] = {name: row.get(name) for name in SCHEMA.names}
    for name in ("key", "post_key", "reviewer"):
        text = out[name]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"review needs a non-empty {name}")
    if out["stage"] not in STAGES:
        raise ValueError(f"review stage must be one of {STAGES}, got {out['stage']!r}")
    if out["stage"] == "generalist" and out["decision"] not in DECISIONS:
        raise ValueError(f"a generalist review decides one of {DECISIONS}, got {out['decision']!r}")
    if out["stage"] == "specialist":
        for a in ASPECTS:
            rating = out[a]   # a JSON true is an int to Python: refused, not stored as 1
            if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
                raise ValueError(f"specialist rating {a} must be an integer 1-5, got {out[a]!r}")
    out["at"] = out["at"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


def read_reviews(dataset_dir: str | Path) -> list[dict[str, Any]]:
    return read_parquet_rows(Path(dataset_dir) / REVIEWS_FILE)


def append_reviews(dataset_dir: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Validate and append review rows (atomic rewrite of the table); returns how many were added."""
    return append_parquet_rows(Path(dataset_dir) / REVIEWS_FILE, [check_review(r) for r in rows], SCHEMA)


def latest(rows: Iterable[dict[str, Any]], stage: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest row of each (key, reviewer) at ``stage``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r["stage"] == stage:
            out[(r["key"], r["reviewer"])] = r
    return out


def specialist_means(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Mean specialist rating (over aspects and reviewers) of each rated key, on the 1-5 scale."""
    sums: dict[str, list[float]] = {}
    for (key, _), r in latest(rows, "specialist").items():
        sums.setdefault(key, []).append(sum(r[a] for a in ASPECTS) / len(ASPECTS))
    return {k: sum(v) / len(v) for k, v in sums.items()}
