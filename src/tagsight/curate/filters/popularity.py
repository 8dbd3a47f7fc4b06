"""Popularity: posts that people liked, where the source records likes (Emu's popularity signal).

The share of candidates with fewer likes (a percentile in [0, 1]) is compared with
``min_percentile``; ``min_likes`` is an absolute floor. Posts without a like count are skipped
(recorded as such), never rejected for lacking it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from tagsight.curate.filters.base import FILTERS, Candidate, Filter


@FILTERS.register("popularity")
@dataclass
class PopularityFilter(Filter):
    min_likes: int = 0
    min_percentile: float = 0.0
    name = "popularity"
    metrics = ("likes", "likes_percentile")
    _sorted: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.min_likes < 0 or not 0.0 <= self.min_percentile < 1.0:
            raise ValueError("popularity: min_likes must be >= 0 and min_percentile in [0, 1)")

    def prepare(self, candidates: list[Candidate]) -> None:
        self._sorted = sorted(int(c.post["likes"]) for c in candidates if self.applies(c))

    def applies(self, c: Candidate) -> bool:
        return c.post.get("likes") is not None

    def score(self, c: Candidate) -> dict[str, float]:
        likes = int(c.post["likes"])
        below = bisect.bisect_left(self._sorted, likes)
        return {"likes": float(likes), "likes_percentile": below / max(1, len(self._sorted))}

    def reject(self, s: dict[str, float]) -> str | None:
        if s["likes"] < self.min_likes or s["likes_percentile"] < self.min_percentile:
            return "unpopular"
        return None
