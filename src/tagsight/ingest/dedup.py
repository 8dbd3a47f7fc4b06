"""De-duplication: exact (content hash) and near (perceptual hash within a Hamming radius).

Items are taken in order; the first of a group is kept and each later one records which kept
item it duplicates. Near matches use multi-index hashing: the 64-bit hash is cut into
``radius + 1`` bands, and by the pigeonhole principle two hashes within ``radius`` bits agree
exactly on at least one band, so only items sharing a band value are compared.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class DupMatch:
    index: int
    of: int
    kind: str  # "exact" | "near"
    distance: int


def _bands(radius: int) -> list[tuple[int, int]]:
    """(shift, mask) pairs cutting 64 bits into radius+1 nearly equal bands."""
    n = radius + 1
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]


class NearIndex:
    """Kept perceptual hashes, queryable for the closest one within ``radius`` bits."""

    def __init__(self, radius: int) -> None:
        if not 0 <= radius < 32:
            raise ValueError(f"near-duplicate radius must be in [0, 32), got {radius}")
        self.radius = radius
        self.bands = _bands(radius)
        self.buckets: list[dict[int, list[int]]] = [defaultdict(list) for _ in self.bands]
        self.hashes: dict[int, int] = {}

    def add(self, item: int, h: int) -> None:
        self.hashes[item] = h
        for (shift, mask), bucket in zip(self.bands, self.buckets):
            bucket[(h >> shift) & mask].append(item)

    def closest(self, h: int) -> tuple[int, int] | None:
        """(item, distance) of the nearest kept hash within the radius; ties go to the earliest item."""
        best: tuple[int, int] | None = None
        for (shift, mask), bucket in zip(self.bands, self.buckets):
            for item in bucket.get((h >> shift) & mask, ()):
                d = (self.hashes[item] ^ h).bit_count()
                if d <= self.radius and (best is None or (d, item) < (best[1], best[0])):
                    best = (item, d)
        return best


def find_duplicates(sha256s: Sequence[str], phashes: Sequence[int], radius: int | None) -> dict[int, DupMatch]:
    """Map index -> DupMatch for every item that duplicates an earlier kept item.

    ``radius=None`` disables near-duplicate detection (exact matches only).
    """
    exact: dict[str, int] = {}
    near = NearIndex(radius) if radius is not None else None
    dups: dict[int, DupMatch] = {}
    for i, (sha, h) in enumerate(zip(sha256s, phashes)):
        if sha in exact:
            dups[i] = DupMatch(i, exact[sha], "exact", 0)
            continue
        hit = near.closest(h) if near else None
        if hit is not None:
            dups[i] = DupMatch(i, hit[0], "near", hit[1])
            continue
        exact[sha] = i
        if near:
            near.add(i, h)
    return dups
