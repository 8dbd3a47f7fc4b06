"""Near-duplicates among the candidates, stricter than ingest's: keep the most liked photo of each group.

Ingest already removed exact and very close copies (perceptual-hash radius 3). A curated set
wants variety, so this filter groups candidates within ``radius`` bits of each other (64-bit
DCT perceptual hash from the catalog) and keeps one per group: the most liked, then the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tagsight.curate.filters.base import FILTERS, Candidate, Filter
from tagsight.ingest.dedup import NearIndex


@FILTERS.register("near_duplicates")
@dataclass
class NearDuplicateFilter(Filter):
    radius: int = 8
    name = "near_duplicates"
    metrics = ("dup_distance",)
    _distance: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.radius < 32:
            raise ValueError(f"near_duplicates: radius must be in [0, 32), got {self.radius}")

    def prepare(self, candidates: list[Candidate]) -> None:
        order = sorted(range(len(candidates)), key=lambda i: (-(candidates[i].post.get("likes") or 0), i))
        index, self._distance = NearIndex(self.radius), {}
        for i in order:
            c = candidates[i]
            h = int(c.media["phash"], 16) if c.media.get("phash") else None
            if h is None:
                continue
            hit = index.closest(h)
            if hit is not None:
                self._distance[c.key] = float(hit[1])
            else:
                index.add(i, h)

    def score(self, c: Candidate) -> dict[str, float]:
        return {"dup_distance": self._distance.get(c.key, -1.0)}

    def reject(self, s: dict[str, float]) -> str | None:
        return "near_duplicate" if s["dup_distance"] >= 0 else None
