"""Resolution and aspect ratio of the ORIGINAL photo (the catalog's source size, not the stored thumbnail)."""

from __future__ import annotations

from dataclasses import dataclass

from tagsight.curate.filters.base import FILTERS, Candidate, Filter


@FILTERS.register("resolution")
@dataclass
class ResolutionFilter(Filter):
    """Reject photos whose short side is below ``min_side`` or whose aspect ratio exceeds ``max_aspect``."""

    min_side: int = 128
    max_aspect: float = 2.0
    name = "resolution"
    metrics = ("short_side", "aspect")

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.max_aspect < 1.0:
            raise ValueError(f"resolution: min_side must be >= 1 and max_aspect >= 1, got {self.min_side}, {self.max_aspect}")

    def score(self, c: Candidate) -> dict[str, float]:
        w = c.media.get("source_width") or c.image.width
        h = c.media.get("source_height") or c.image.height
        return {"short_side": float(min(w, h)), "aspect": max(w, h) / max(1, min(w, h))}

    def reject(self, s: dict[str, float]) -> str | None:
        if s["short_side"] < self.min_side:
            return "low_resolution"
        return "extreme_aspect" if s["aspect"] > self.max_aspect else None
