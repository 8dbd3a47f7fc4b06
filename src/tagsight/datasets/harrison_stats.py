"""HARRISON hashtag statistics: what real Instagram tag lists look like, measured to calibrate simulations.

HARRISON (Park et al. 2016) holds 57,383 real Instagram posts as lines of space-separated,
lower-cased, lemmatised hashtags (``tag_list.txt``) and, line for line, the image path whose
folder is the hashtag the post was collected under (``data_list.txt``). The images are not
available; the lists are used here only to measure how people tag:

- the distribution of the number of tags per post;
- tag frequencies, both raw and as *co-tags* (each post's own query tag left out: the query tag is
  on almost every post because posts were collected by searching for it, so the raw counts
  over-represent the 50 query tags);
- which compound templates people build hashtags with (#instadog, #dogsofinstagram, #doglover).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tagsight.fsio import ReasonError

log = logging.getLogger(__name__)

TAG_LIST = "tag_list.txt"
DATA_LIST = "data_list.txt"


class DatasetError(ReasonError):
    """Input data for a dataset builder is missing or malformed; ``reason`` is a stable code."""


@dataclass(frozen=True)
class CompoundTemplate:
    """How a hashtag is built around a noun stem: prefix words + stem (pluralised or not) + suffix words.

    ``{}sofinstagram`` is ``CompoundTemplate("{}sofinstagram", suffix=("of", "instagram"), plural=True)``.
    """

    name: str
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    plural: bool = False

    def words(self, stem: list[str], plural_stem: list[str]) -> list[str]:
        """The words of the hashtag around ``stem`` (``plural_stem`` when the template pluralises)."""
        return [*self.prefix, *(plural_stem if self.plural else stem), *self.suffix]

    def stem_of(self, tag: str) -> str | None:
        """The (singular) stem of a joined lower-case ``tag`` fitting this template, else None."""
        pre, suf = "".join(self.prefix), "".join(self.suffix)
        m = re.fullmatch(f"{re.escape(pre)}([a-z]{{3,}}){re.escape(suf)}", tag)
        if not m:
            return None
        stem = m.group(1)
        if self.plural:
            return stem[:-1] if stem.endswith("s") and len(stem) > 3 else None
        return stem


COMPOUND_TEMPLATES: tuple[CompoundTemplate, ...] = (
    CompoundTemplate("insta{}", prefix=("insta",)),
    CompoundTemplate("{}sofinstagram", suffix=("of", "instagram"), plural=True),
    CompoundTemplate("{}stagram", suffix=("stagram",)),
    CompoundTemplate("{}oftheday", suffix=("of", "the", "day")),
    CompoundTemplate("{}lover", suffix=("lover",)),
    CompoundTemplate("{}life", suffix=("life",)),
    CompoundTemplate("my{}", prefix=("my",)),
    CompoundTemplate("{}art", suffix=("art",)),
)


@dataclass(frozen=True)
class HarrisonStats:
    """Statistics of the HARRISON tag lists (see the module docstring)."""

    n_posts: int
    n_empty_posts: int
    tags_per_post: dict[int, int]
    tag_counts: dict[str, int]
    cotag_counts: dict[str, int]
    query_counts: dict[str, int] = field(default_factory=dict)
    query_presence: float | None = None

    @property
    def mean_tags_per_post(self) -> float:
        n = sum(self.tags_per_post.values())
        return sum(k * c for k, c in self.tags_per_post.items()) / n if n else 0.0

    def to_dict(self, top: int = 25) -> dict[str, Any]:
        """A JSON-ready summary (the ``top`` most frequent tags, not all of them)."""
        return {
            "n_posts": self.n_posts,
            "n_empty_posts": self.n_empty_posts,
            "n_distinct_tags": len(self.tag_counts),
            "tags_per_post": {str(k): v for k, v in sorted(self.tags_per_post.items())},
            "mean_tags_per_post": round(self.mean_tags_per_post, 4),
            "n_queries": len(self.query_counts),
            "query_presence": None if self.query_presence is None else round(self.query_presence, 4),
            "top_tags": _top(self.tag_counts, top),
            "top_cotags": _top(self.cotag_counts, top),
        }


def _top(counts: dict[str, int], k: int) -> list[list[Any]]:
    return [[t, c] for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def read_tag_lists(harrison_dir: Path) -> list[list[str]]:
    """One list of hashtags per post, in file order; DatasetError when the file is absent."""
    path = Path(harrison_dir) / TAG_LIST
    if not path.is_file():
        raise DatasetError("harrison_missing", f"HARRISON tag list {path} not found")
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def read_queries(harrison_dir: Path, n_posts: int) -> list[str] | None:
    """The query folder of each post from ``data_list.txt``; None (with a warning) when absent."""
    path = Path(harrison_dir) / DATA_LIST
    if not path.is_file():
        log.warning("%s not found: co-tag counts fall back to raw counts, no query statistics", path)
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) != n_posts:
        raise DatasetError("harrison_mismatch", f"{path} has {len(lines)} lines but {TAG_LIST} has {n_posts}")
    return [_query_of(line) for line in lines]


def _query_of(line: str) -> str:
    parts = line.strip().split("/")
    return parts[-2].lower() if len(parts) >= 2 else ""


def load_harrison(harrison_dir: Path, lemma_forms: Callable[[str], set[str]] | None = None) -> HarrisonStats:
    """Measure HARRISON. ``lemma_forms(query)`` gives the spellings a query tag may take after the
    dataset's lemmatisation (e.g. friends -> {friends, friend}); default: the query itself."""
    posts = read_tag_lists(harrison_dir)
    queries = read_queries(harrison_dir, len(posts))
    forms = lemma_forms or (lambda q: {q})
    tag_counts = Counter(t for tags in posts for t in tags)
    cotags: Counter[str] = Counter()
    present = 0
    for i, tags in enumerate(posts):
        own = forms(queries[i]) if queries else set()
        present += bool(own & set(tags))
        cotags.update(t for t in tags if t not in own)
    nonempty = [len(tags) for tags in posts if tags]
    return HarrisonStats(
        n_posts=len(posts),
        n_empty_posts=len(posts) - len(nonempty),
        tags_per_post=dict(sorted(Counter(nonempty).items())),
        tag_counts=dict(tag_counts),
        cotag_counts=dict(cotags),
        query_counts=dict(Counter(queries)) if queries else {},
        query_presence=present / len(posts) if queries and posts else None,
    )


def template_usage(tag_counts: dict[str, int], is_noun: Callable[[str], bool],
                   templates: tuple[CompoundTemplate, ...] = COMPOUND_TEMPLATES) -> dict[str, list[str]]:
    """For each template, the distinct HARRISON tags built on it with a noun stem (sorted)."""
    usage: dict[str, list[str]] = {t.name: [] for t in templates}
    for tag in sorted(tag_counts):
        for template in templates:
            stem = template.stem_of(tag)
            if stem and is_noun(stem):
                usage[template.name].append(tag)
    return usage
