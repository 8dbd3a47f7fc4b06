"""Export a curated set as a new dataset version (its manifest names its parent and how it was chosen).

Stages: ``filter`` keeps what passed the automatic filters; ``generalist`` keeps what also got at
least ``min_keep_votes`` keep votes in the fast review (recall first: one vote is enough by
default); ``specialist`` keeps what the specialists rated at least ``min_rating`` on average (1-5),
optionally only the ``top`` best. Everything else is dropped with the stage's reason code.

A stage that keeps nothing is refused (``ReasonError`` ``empty_stage``, naming why every sample was
left out, e.g. ``specialist_unrated`` when no specialist reviewed anything): an empty dataset is
never written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tagsight.curate.chain import read_curation
from tagsight.curate.reviews import latest, read_reviews, specialist_means
from tagsight.data.derive import DerivedSummary, Drop, Keep, derive_dataset
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError

EXPORT_STAGES = ("filter", "generalist", "specialist")


@dataclass(frozen=True)
class ExportConfig:
    stage: str = "filter"
    min_keep_votes: int = 1
    min_rating: float = 3.5
    top: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in EXPORT_STAGES:
            raise ValueError(f"export stage must be one of {EXPORT_STAGES}, got {self.stage!r}")
        if self.min_keep_votes < 1 or not 1.0 <= self.min_rating <= 5.0 or (self.top is not None and self.top < 1):
            raise ValueError("need min_keep_votes >= 1, min_rating in [1, 5] and top >= 1 or None")


def selection(dataset_dir: str | Path, cfg: ExportConfig) -> dict[str, str | None]:
    """Map every sample key to None (kept) or the reason it is left out at ``cfg.stage``."""
    table = read_curation(dataset_dir).select(["key", "reason"]).to_pylist()
    out: dict[str, str | None] = {r["key"]: (f"filter_{r['reason']}" if r["reason"] else None) for r in table}
    reviews = read_reviews(dataset_dir)
    if cfg.stage in ("generalist", "specialist"):
        votes = Counter(k for (k, _), r in latest(reviews, "generalist").items() if r["decision"] == "keep")
        for k, why in out.items():
            if why is None and votes[k] < cfg.min_keep_votes:
                out[k] = "generalist_rejected"
    if cfg.stage == "specialist":
        means = specialist_means(reviews)
        ranked = sorted((k for k, w in out.items() if w is None and means.get(k, 0.0) >= cfg.min_rating),
                        key=lambda k: (-means[k], k))
        chosen = set(ranked[: cfg.top] if cfg.top else ranked)
        for k, why in out.items():
            if why is None and k not in chosen:
                out[k] = "specialist_unrated" if k not in means else "specialist_below"
    return out


def export_curated(dataset_dir: str | Path, out_dir: str | Path, cfg: ExportConfig) -> DerivedSummary:
    """Write the curated set of ``dataset_dir`` at ``cfg.stage`` to ``out_dir`` as a new dataset version."""
    chosen = selection(dataset_dir, cfg)
    check_not_empty(dataset_dir, chosen, cfg)
    index = SampleIndex.build(dataset_dir)

    def edit(i: int, meta: dict[str, Any]) -> Keep | Drop:
        why = chosen.get(index.keys[i], "forgotten_or_unscored")
        return Keep() if why is None else Drop(why)

    return derive_dataset(dataset_dir, out_dir, edit, kind=f"curate_{cfg.stage}", settings=asdict(cfg))


_HINTS = {"generalist_rejected": "record generalist keep votes ('tagsight curate review DATASET', ?stage=generalist)",
          "specialist_unrated": "record specialist ratings ('tagsight curate review DATASET', ?stage=specialist)",
          "specialist_below": "lower --min-rating"}


def check_not_empty(dataset_dir: str | Path, chosen: dict[str, str | None], cfg: ExportConfig) -> None:
    """``ReasonError('empty_stage')`` when no sample passes ``cfg.stage``: the reasons counted, and what to do."""
    if any(why is None for why in chosen.values()):
        return
    reasons = Counter(why for why in chosen.values())
    hint = next((_HINTS[r] for r, _ in reasons.most_common() if r in _HINTS), "run 'tagsight curate filter' first")
    counts = ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "the curation table is empty"
    raise ReasonError("empty_stage", f"{dataset_dir}: no sample passes the {cfg.stage} stage ({counts}); "
                                     f"nothing written. To export, {hint}")
