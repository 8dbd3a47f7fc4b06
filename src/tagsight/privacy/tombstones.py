"""Tombstones: the record that a person asked to be forgotten, and the one check every artifact makes.

A tombstone names an author, a post (``source/post_id`` or a bare ``post_id``) or a hashtag.
Tombstones of a dataset live in ``DATASET_DIR/catalog/tombstones.parquet`` (one row per request,
written atomically, never removed). Anything that holds or returns posts of a dataset — the
training loader, cached features, nearest-neighbour indexes, curated sets, review queues, the
server — asks ``Tombstones.forgets(post_key, author_id, hashtags)`` before it uses or returns a
post, and a ``TombstoneWatcher`` lets a long-running process see new tombstones without a restart.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tagsight.fsio import atomic_write_bytes
from tagsight.privacy.policy import tag_key

TOMBSTONE_FILE = Path("catalog") / "tombstones.parquet"
KINDS = ("author", "post", "hashtag")
_SCHEMA = pa.schema([("kind", pa.string()), ("value", pa.string()), ("reason", pa.string()),
                     ("requested_at", pa.string())])


@dataclass(frozen=True)
class Tombstone:
    """One forget request: ``kind`` in ``KINDS``; ``value`` an author id, a post key or id, or a hashtag."""

    kind: str
    value: str
    reason: str = "request"
    requested_at: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"tombstone kind {self.kind!r} is not one of {KINDS}")
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError(f"a {self.kind} tombstone needs a non-empty value, got {self.value!r}")

    @property
    def match_value(self) -> str:
        """The form compared at lookup: hashtags folded like opt-out tags (#No_AI == noai), others stripped."""
        value = self.value.strip()
        return tag_key(value.lstrip("#")) if self.kind == "hashtag" else value


@dataclass(frozen=True)
class Tombstones:
    """The tombstones of one dataset, as sets ready for lookups."""

    authors: frozenset[str] = frozenset()
    posts: frozenset[str] = frozenset()
    hashtags: frozenset[str] = frozenset()
    rows: tuple[Tombstone, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, rows: Iterable[Tombstone]) -> Tombstones:
        kept = tuple(rows)

        def pick(kind: str) -> frozenset[str]:
            return frozenset(r.match_value for r in kept if r.kind == kind)

        return cls(pick("author"), pick("post"), pick("hashtag"), kept)

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.authors or self.posts or self.hashtags)

    @property
    def digest(self) -> str:
        """A short hash of what is forgotten ("" when nothing is): caches key on it, so a new tombstone makes new keys."""
        if not self:
            return ""
        text = "\n".join(f"{k}\0{v}" for k in KINDS for v in sorted(getattr(self, f"{k}s")))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def forgets(self, post_key: str, author_id: str | None = None, hashtags: Iterable[str] = ()) -> bool:
        """Whether the post ``source/post_id`` (by ``author_id``, carrying ``hashtags``) is forgotten."""
        if post_key in self.posts or post_key.split("/", 1)[-1] in self.posts:
            return True
        if author_id is not None and author_id in self.authors:
            return True
        return bool(self.hashtags) and any(tag_key(t.lstrip("#")) in self.hashtags for t in hashtags)


def tombstone_path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / TOMBSTONE_FILE


def load_tombstones(dataset_dir: str | Path) -> Tombstones:
    """The dataset's tombstones (empty when it has none)."""
    path = tombstone_path(dataset_dir)
    if not path.is_file():
        return Tombstones()
    table = pq.read_table(path)
    return Tombstones.of(Tombstone(**row) for row in table.to_pylist())


def add_tombstones(dataset_dir: str | Path, new: Iterable[Tombstone]) -> int:
    """Record ``new`` tombstones (idempotent: a request already recorded is not added twice); returns how many were added."""
    current = load_tombstones(dataset_dir).rows
    seen = {(r.kind, r.match_value) for r in current}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    added: list[Tombstone] = []
    for t in new:
        if (t.kind, t.match_value) not in seen:
            seen.add((t.kind, t.match_value))
            added.append(Tombstone(t.kind, t.value.strip(), t.reason, t.requested_at or now))
    if added:
        rows = [vars(r) for r in (*current, *added)]
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=_SCHEMA), buf)
        atomic_write_bytes(tombstone_path(dataset_dir), buf.getvalue())
    return len(added)


class TombstoneWatcher:
    """The current tombstones of a dataset for a long-running process: reread when the file changes."""

    def __init__(self, dataset_dir: str | Path) -> None:
        self.path = tombstone_path(dataset_dir)
        self._stamp: tuple[int, int, int] | None = None
        self._current = Tombstones()
        self.current()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def current(self) -> Tombstones:
        """The tombstones as of now (one ``stat`` per call; the file is reread only when it changed)."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._current = load_tombstones(self.path.parent.parent) if stamp else Tombstones()
            self._stamp = stamp
        return self._current
