"""Calibration on HARRISON: the co-tag sampler and the tags left out because they name a class concept."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tagsight.datasets.harrison_stats import DatasetError, HarrisonStats, load_harrison, template_usage
from tagsight.datasets.social_imagenette.concepts import Concept, ancestors_of
from tagsight.datasets.social_imagenette.hashtags import concept_words

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- HARRISON calibration

def related_synsets(concepts: Iterable[Concept], wn: Any) -> dict[str, str]:
    """Synset name -> why it is related to a class: the class itself, its hypernyms and its hyponyms."""
    related: dict[str, str] = {}
    for c in concepts:
        synset = wn.synset(c.synset)
        hyponyms = synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms())
        for s in sorted(hyponyms, key=lambda s: s.name()):
            related.setdefault(s.name(), f"hyponym of {c.synset}")
        for s in sorted(ancestors_of(synset), key=lambda s: s.name()):
            related.setdefault(s.name(), f"hypernym of {c.synset}")
        related[c.synset] = f"is {c.synset}"
    return related


def exclusion_reason(tag: str, related: Mapping[str, str], words: Mapping[str, str], wn: Any,
                     segment: Callable[[str], list[str]]) -> str | None:
    """Why a HARRISON tag may not be used as a noise tag, or None when it may.

    Excluded: a word that names a class (``concept_words``) or has a noun sense related to a class
    (``related_synsets``), as the whole tag, as a part of 3+ letters of its word segmentation, or
    as two adjacent parts joined (#golfball -> golf_ball).
    """
    segs = segment(tag)
    pairs = ["_".join(segs[i:i + 2]) for i in range(len(segs) - 1)]
    parts = [tag] + [p for p in segs if len(p) >= 3 and p != tag] + pairs
    for part in parts:
        where = "" if part == tag else f"part {part!r}: "
        if part.replace("_", "") in words:
            return f"{where}{words[part.replace('_', '')]}"
        for s in wn.synsets(part, "n"):
            if s.name() in related:
                return f"{where}{s.name()} {related[s.name()]}"
    return None


def excluded_tags(tags: Iterable[str], concepts: list[Concept], wn: Any,
                  segment: Callable[[str], list[str]]) -> dict[str, str]:
    """HARRISON tags that name, or are synonyms, hypernyms or hyponyms of, any class: tag -> reason."""
    related = related_synsets(concepts, wn)
    words: dict[str, str] = {}
    for c in concepts:
        words.update({w: r for w, r in concept_words(c).items() if w not in words})
    reasons = {t: exclusion_reason(t, related, words, wn, segment) for t in sorted(tags)}
    return {t: r for t, r in reasons.items() if r is not None}


@dataclass(frozen=True)
class TagSampler:
    """Draws tags-per-post from HARRISON's histogram and noise tags from its co-tag frequencies."""

    counts: tuple[int, ...]
    count_cum: tuple[float, ...]
    pool: tuple[str, ...]
    pool_cum: tuple[float, ...]

    @classmethod
    def from_stats(cls, stats: HarrisonStats, excluded: Mapping[str, str]) -> "TagSampler":
        if not stats.tags_per_post:
            raise DatasetError("harrison_empty", "HARRISON tag list has no post with a tag")
        hist = sorted(stats.tags_per_post.items())
        items = sorted(((t, c) for t, c in stats.cotag_counts.items() if t not in excluded and c > 0),
                       key=lambda tc: (-tc[1], tc[0]))
        if len(items) < max(stats.tags_per_post):
            raise DatasetError("harrison_pool_small", f"only {len(items)} usable HARRISON tags after excluding class-"
                                                      f"related ones; posts need up to {max(stats.tags_per_post)}")
        return cls(tuple(k for k, _ in hist), tuple(cumulative(c for _, c in hist)),
                   tuple(t for t, _ in items), tuple(cumulative(c for _, c in items)))

    def n_tags(self, rng: random.Random) -> int:
        return rng.choices(self.counts, cum_weights=self.count_cum)[0]

    def noise(self, rng: random.Random, k: int, avoid: set[str]) -> list[str]:
        """``k`` distinct tags by frequency, none whose casefold is in ``avoid``."""
        out: list[str] = []
        while len(out) < k:
            tag = rng.choices(self.pool, cum_weights=self.pool_cum)[0]
            if tag.casefold() not in avoid:
                out.append(tag)
                avoid.add(tag.casefold())
        return out


def cumulative(values: Iterable[float]) -> list[float]:
    """Running sums of ``values`` (the cumulative weights ``random.choices`` takes)."""
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


@dataclass(frozen=True)
class Calibration:
    """Everything measured on HARRISON that the simulation uses."""

    stats: HarrisonStats
    excluded: dict[str, str]
    sampler: TagSampler
    template_usage: dict[str, list[str]]

    @property
    def template_weights(self) -> dict[str, float]:
        """Distinct HARRISON tags per template, plus one (so an unseen template stays possible)."""
        return {name: len(tags) + 1.0 for name, tags in self.template_usage.items()}

    def to_dict(self) -> dict[str, Any]:
        pool_mass = sum(self.stats.cotag_counts.values())
        excluded_mass = sum(self.stats.cotag_counts.get(t, 0) for t in self.excluded)
        return {
            "statistics": self.stats.to_dict(),
            "compound_templates": {n: {"weight": self.template_weights[n], "harrison_tags": tags}
                                   for n, tags in self.template_usage.items()},
            "excluded_tags": self.excluded,
            "noise_pool": {"n_tags": len(self.sampler.pool),
                           "excluded_share_of_cotag_mass": round(excluded_mass / pool_mass, 4) if pool_mass else 0.0},
        }


def calibrate(harrison_dir: Path, concepts: list[Concept], wn: Any) -> Calibration:
    """Measure HARRISON and derive the noise pool that leaves every class concept out."""
    import wordsegment

    if not wordsegment.UNIGRAMS:
        wordsegment.load()
    # every base form of a query (friends -> friend, eyes -> eyes and eye): nltk's _morphy lists them all
    stats = load_harrison(harrison_dir, lambda q: {q, *wn._morphy(q, "n")})
    excluded = excluded_tags(stats.tag_counts, concepts, wn, wordsegment.segment)
    usage = template_usage(stats.tag_counts, lambda w: bool(wn.synsets(w, "n")))
    log.info("HARRISON: %d posts, %d tags, %.2f tags/post; %d tags excluded as class-related",
             stats.n_posts, len(stats.tag_counts), stats.mean_tags_per_post, len(excluded))
    return Calibration(stats, excluded, TagSampler.from_stats(stats, excluded), usage)
