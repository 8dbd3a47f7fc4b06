"""What a reviewer sees next: the review queues of both stages, resumable and tombstone-aware.

Stage 1 (generalist) offers every sample that passed the automatic filters; stage 2 (specialist)
offers the samples that got at least ``min_keep_votes`` keep votes in stage 1. Both are ordered
by the aesthetic score (best first, then key), so every reviewer walks the same order and
overlapping judgements exist for agreement statistics. A sample the reviewer already judged at
that stage is not offered again (closing the page and coming back resumes), and a sample whose
post has been forgotten disappears from the queue at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tagsight.curate.chain import read_curation
from tagsight.curate.reviews import STAGES, append_reviews, latest, read_reviews
from tagsight.data.index import SampleIndex
from tagsight.privacy.tombstones import TombstoneWatcher


class ReviewQueue:
    """The review state of one dataset for a server process (reviews are appended under a lock)."""

    def __init__(self, dataset_dir: str | Path, min_keep_votes: int = 1) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.min_keep_votes = min_keep_votes
        self.index = SampleIndex.build(self.dataset_dir)
        self.row_of = {k: i for i, k in enumerate(self.index.keys)}
        passed = [r for r in read_curation(self.dataset_dir).to_pylist() if r["status"] == "passed"]
        passed.sort(key=lambda r: (-(r.get("aesthetic") or 0.0), r["key"]))
        self.order = [r["key"] for r in passed if r["key"] in self.row_of]
        self.authors = {k: self.index.author_ids[self.row_of[k]] for k in self.order}
        self.tombstones = TombstoneWatcher(self.dataset_dir)
        self._lock = threading.Lock()
        self._rows = read_reviews(self.dataset_dir)

    def _visible(self, key: str) -> bool:
        i = self.row_of[key]
        return not self.tombstones.current().forgets(self.index.post_keys[i], self.authors.get(key),
                                                     self.index.hashtags[i])

    def eligible(self, stage: str) -> list[str]:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if stage == "generalist":
            keys = self.order
        else:
            votes = Counter(k for (k, _), r in latest(self._rows, "generalist").items() if r["decision"] == "keep")
            keys = [k for k in self.order if votes[k] >= self.min_keep_votes]
        return [k for k in keys if self._visible(k)]

    def next_items(self, stage: str, reviewer: str, n: int = 8) -> dict[str, Any]:
        eligible = self.eligible(stage)
        done = {k for (k, who) in latest(self._rows, stage) if who == reviewer}
        todo = [k for k in eligible if k not in done]
        return {"items": [self.item(k) for k in todo[:n]], "remaining": len(todo),
                "done": len(done & set(eligible)), "total": len(eligible)}

    def item(self, key: str) -> dict[str, Any]:
        meta = self.index.read_meta(self.row_of[key])
        return {"key": key, "post_key": self.index.post_keys[self.row_of[key]],
                "hashtags": list(meta.get("hashtags") or []), "caption": meta.get("caption") or ""}

    def image(self, key: str) -> bytes:
        if key not in self.row_of or not self._visible(key):
            raise KeyError(key)
        return self.index.read_jpeg(self.row_of[key])

    def record(self, review: dict[str, Any]) -> None:
        """Validate and store one judgement (ValueError for bad input or a key not in the stage's queue)."""
        key, stage = review.get("key"), review.get("stage")
        if key not in self.row_of:
            raise ValueError(f"unknown sample key {key!r}")
        if not isinstance(stage, str):
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if key not in set(self.eligible(stage)):
            raise ValueError(f"sample {key} is not in the {stage} queue")
        with self._lock:
            append_reviews(self.dataset_dir, [{**review, "post_key": self.index.post_keys[self.row_of[key]]}])
            self._rows = read_reviews(self.dataset_dir)

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)
