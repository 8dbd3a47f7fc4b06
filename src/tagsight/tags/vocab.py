"""Build, save and use a hashtag vocabulary: WordNet noun synsets as labels, with every decision recorded.

``build_vocab(posts, cfg)`` counts the normalised hashtags of each post once, maps every distinct
tag with a ``Canonicalizer``, merges tags that reach the same synset (after the optional
roll-up) into one label, keeps labels with at least ``min_count`` posts, the ``top_k`` most
frequent of them, and records why every other tag was dropped. The result serialises to
``vocab.json``; its ``version`` is a hash of the content and the config, so identical inputs and
config give the identical version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from tagsight.schema.text import fold_hashtag
from tagsight.tags.canonical import Canonicalizer, TagMapping
from tagsight.tags.config import VocabConfig
from tagsight.fsio import atomic_write_text
from tagsight.tags.normalize import normalize_hashtag
from tagsight.tags.sampling import effective_distribution_for_mode, label_weights, post_weights
from tagsight.storage import is_url, read_bytes

log = logging.getLogger(__name__)

FORMAT = 1
VOCAB_FILE = "vocab.json"
DROP_REASONS = (
    "empty_after_normalise", "stop_list", "no_wordnet_noun", "non_visual_lexname", "person_name",
    "sensitive_category", "place_name", "below_min_count", "beyond_top_k",
)


@dataclass(frozen=True)
class Label:
    """One label: a synset, the hashtags merged into it (normalised form -> posts) and its frequency."""

    index: int
    label: str
    wnid: str
    lexname: str
    definition: str
    members: dict[str, int]
    posts: int
    sampling_weight: float


@dataclass(frozen=True)
class Drop:
    """A normalised hashtag that is not a label, why, and in how many posts it appeared."""

    tag: str
    reason: str
    posts: int
    synset: str | None = None
    detail: str = ""


@dataclass
class Vocabulary:
    """Labels, the tag -> label lookup, drops, ambiguity records, coverage and provenance."""

    version: str
    config: dict[str, Any]
    labels: list[Label]
    lookup: dict[str, int]
    drops: list[Drop] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    # Histogram of the build input's per-post label sets (label ids -> posts); not saved to vocab.json.
    label_sets: dict[tuple[int, ...], int] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def frequencies(self) -> np.ndarray:
        """Post count of each label, by index."""
        return np.array([label.posts for label in self.labels], dtype=np.float64)

    def labels_for(self, hashtags: Iterable[str]) -> list[int]:
        """Label ids of a post's hashtags as written (any case, '#', emoji...), deduplicated, in order."""
        ids: list[int] = []
        for tag in hashtags:
            index = self.lookup.get(normalize_hashtag(tag))
            if index is not None and index not in ids:
                ids.append(index)
        return ids

    def label_weights_for(self, hashtags: Sequence[str], weights: Sequence[float]) -> list[float]:
        """Weight of each label of ``labels_for(hashtags)``: the largest weight among its hashtags."""
        best: dict[int, float] = {}
        for tag, weight in zip(hashtags, weights):
            index = self.lookup.get(normalize_hashtag(tag))
            if index is not None:
                best[index] = max(best.get(index, 0.0), float(weight))
        return [best[i] for i in self.labels_for(hashtags)]

    def targets(self, label_ids: Sequence[int], weights: Sequence[float] | None = None) -> np.ndarray:
        """The WSL softmax target: 1/k on each of the k distinct labels, zeros elsewhere (all zeros if k = 0).

        With ``weights`` (one per entry of ``label_ids``, > 0) the target is the weights normalised to sum 1.
        """
        target = np.zeros(len(self.labels), dtype=np.float32)
        if weights is not None:
            if len(weights) != len(label_ids) or len(set(label_ids)) != len(label_ids) or min(weights, default=1) <= 0:
                raise ValueError(f"weights must be one positive number per distinct label, got {list(weights)} "
                                 f"for {list(label_ids)}")
            if label_ids:
                target[list(label_ids)] = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
            return target
        ids = sorted(set(label_ids))
        if ids:
            target[ids] = 1.0 / len(ids)
        return target

    def sample_weights(self, label_lists: Sequence[Sequence[int]], mode: str | None = None) -> np.ndarray:
        """Per-post resampling weights (tags/sampling.py): ``sqrt`` (default from the config), ``inverse``, ``none``."""
        return post_weights(label_lists, self.frequencies, mode or self.config["sampling"])

    def effective_distribution(self, mode: str, label_lists: Sequence[Sequence[int]] | None = None) -> np.ndarray:
        """Expected share of each label after resampling under ``mode``.

        Over ``label_lists`` when given, else over the build input (``label_sets``, present on a
        freshly built vocabulary, not on a loaded one).
        """
        if label_lists is not None:
            return effective_distribution_for_mode(label_lists, self.frequencies, mode)
        if self.label_sets is None:
            raise ValueError("a loaded vocabulary has no per-post label sets: pass label_lists")
        sets = list(self.label_sets)
        return effective_distribution_for_mode(sets, self.frequencies, mode, [self.label_sets[s] for s in sets])

    def drop_summary(self) -> dict[str, dict[str, int]]:
        """reason -> {"tags": distinct tags, "posts": tag occurrences in posts}, most posts first."""
        summary: dict[str, dict[str, int]] = defaultdict(lambda: {"tags": 0, "posts": 0})
        for drop in self.drops:
            summary[drop.reason]["tags"] += 1
            summary[drop.reason]["posts"] += drop.posts
        return dict(sorted(summary.items(), key=lambda kv: (-kv[1]["posts"], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": self.version, **_content(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Vocabulary":
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported vocabulary format {d.get('format')!r} (expected {FORMAT})")
        labels = [Label(**label) for label in d["labels"]]
        drops = [Drop(**drop) for drop in d["drops"]]
        return cls(d["version"], dict(d["config"]), labels, dict(d["lookup"]), drops, list(d["ambiguous"]),
                   dict(d["coverage"]), dict(d["input"]))

    def save(self, path: str | Path) -> Path:
        """Write ``vocab.json`` (``path`` is the file, or a folder to hold it). Returns the file."""
        path = Path(path)
        if path.suffix != ".json":
            path = path / VOCAB_FILE
        return atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        """Read a ``vocab.json`` (or the folder holding it), on local disk or at an fsspec URL."""
        if is_url(path):
            return cls.from_dict(json.loads(read_bytes(vocab_url(str(path))).decode("utf-8")))
        path = Path(path)
        if path.is_dir():
            path = path / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: build it with 'tagsight vocab build'")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def vocab_url(url: str) -> str:
    """The ``vocab.json`` an fsspec URL names: the file itself, or the one in the folder it names."""
    url = url.rstrip("/")
    return url if url.endswith(".json") else f"{url}/{VOCAB_FILE}"


# -- counting -------------------------------------------------------------------------------------


@dataclass
class TagCounts:
    """One pass over the posts: per-tag post counts and the multiset of per-post tag sets."""

    posts: int = 0
    tag_posts: Counter[str] = field(default_factory=Counter)
    empty_posts: Counter[str] = field(default_factory=Counter)
    tag_sets: Counter[frozenset[str]] = field(default_factory=Counter)
    digest: str = ""


def count_tags(posts: Iterable[tuple[str, Sequence[str]]]) -> TagCounts:
    """Count normalised tags once per post; posts with the same tag set are stored once (with a count)."""
    counts, sha = TagCounts(), hashlib.sha256()
    normalize = _cached(normalize_hashtag)
    for key, hashtags in posts:
        sha.update(json.dumps([key, list(hashtags)], ensure_ascii=False).encode("utf-8") + b"\n")
        tags = {normalize(h) for h in hashtags}
        for empty in {fold_hashtag(h) for h in hashtags if not normalize(h)}:
            counts.empty_posts[empty] += 1
        tags.discard("")
        counts.tag_posts.update(tags)
        counts.tag_sets[frozenset(tags)] += 1
        counts.posts += 1
    counts.digest = sha.hexdigest()
    return counts


def _cached(fn: Callable[[str], str]) -> Callable[[str], str]:
    cache: dict[str, str] = {}

    def call(text: str) -> str:
        if text not in cache:
            cache[text] = fn(text)
        return cache[text]

    return call


# -- building -------------------------------------------------------------------------------------


def build_vocab(posts: Iterable[tuple[str, Sequence[str]]], cfg: VocabConfig | None = None, *,
                source: Mapping[str, Any] | None = None, wn: Any = None) -> Vocabulary:
    """Vocabulary from (post key, hashtags as written) pairs.

    ``source`` describes where the posts came from (e.g. ``{"kind": "dataset", "manifest_version":
    ...}``); it is stored as the input's identity with the post count and a hash of the inputs.
    """
    cfg = cfg or VocabConfig()
    canon = Canonicalizer(cfg, wn)
    counts = count_tags(posts)
    mappings = {tag: canon.map(tag) for tag in sorted(counts.tag_posts)}
    members = _group_members(mappings, counts, canon)
    label_posts = _label_posts(counts, mappings, canon)
    kept, cut = _select(label_posts, cfg)
    labels = _make_labels(kept, members, label_posts, cfg, canon)
    lookup = {tag: label.index for label in labels for tag in label.members}
    vocab = Vocabulary(
        version="", config=cfg.to_dict(), labels=labels, lookup=dict(sorted(lookup.items())),
        drops=_drops(mappings, counts, members, cut), ambiguous=_ambiguous(mappings, counts, lookup),
        coverage=_coverage(counts, mappings, lookup), input={**dict(source or {}), "posts": counts.posts,
                                                              "sha256": counts.digest},
    )
    vocab.version = content_version(vocab)
    vocab.label_sets = _label_sets(counts, lookup)
    log.info("vocabulary %s: %d labels from %d posts, coverage %.1f%%", vocab.version, len(labels),
             counts.posts, 100 * vocab.coverage["coverage"])
    return vocab


def _group_members(mappings: dict[str, TagMapping], counts: TagCounts, canon: Canonicalizer) -> dict[str, dict[str, int]]:
    """Label synset (after roll-up) -> {member tag: posts} for every kept mapping."""
    members: dict[str, dict[str, int]] = defaultdict(dict)
    for tag, mapping in mappings.items():
        if mapping.label_synset is not None:
            members[canon.rollup(mapping.label_synset)][tag] = counts.tag_posts[tag]
    return members


def _label_posts(counts: TagCounts, mappings: dict[str, TagMapping], canon: Canonicalizer) -> Counter[str]:
    """Label synset -> number of posts carrying at least one of its member tags."""
    label_posts: Counter[str] = Counter()
    for tags, n in counts.tag_sets.items():
        synsets = {canon.rollup(s) for t in tags if (s := mappings[t].label_synset) is not None}
        for synset in synsets:
            label_posts[synset] += n
    return label_posts


def _select(label_posts: Counter[str], cfg: VocabConfig) -> tuple[list[str], dict[str, str]]:
    """Labels kept in rank order (most posts, then name), and the cut ones with their reason."""
    ranked = sorted(label_posts, key=lambda s: (-label_posts[s], s))
    cut = {s: "below_min_count" for s in ranked if label_posts[s] < cfg.min_count}
    eligible = [s for s in ranked if s not in cut]
    limit = len(eligible) if cfg.top_k is None else cfg.top_k
    cut.update({s: "beyond_top_k" for s in eligible[limit:]})
    return eligible[:limit], cut


def _make_labels(kept: list[str], members: dict[str, dict[str, int]], label_posts: Counter[str],
                 cfg: VocabConfig, canon: Canonicalizer) -> list[Label]:
    weights = label_weights([label_posts[s] for s in kept], cfg.sampling)
    labels = []
    for index, (name, weight) in enumerate(zip(kept, weights)):
        synset = canon.wn.synset(name)
        ordered = dict(sorted(members[name].items(), key=lambda kv: (-kv[1], kv[0])))
        labels.append(Label(index=index, label=name, wnid=f"n{synset.offset():08d}", lexname=synset.lexname(),
                            definition=synset.definition(), members=ordered, posts=label_posts[name],
                            sampling_weight=float(weight)))
    return labels


def _label_sets(counts: TagCounts, lookup: dict[str, int]) -> dict[tuple[int, ...], int]:
    label_sets: Counter[tuple[int, ...]] = Counter()
    for tags, n in counts.tag_sets.items():
        label_sets[tuple(sorted({lookup[t] for t in tags if t in lookup}))] += n
    return dict(label_sets)


def _drops(mappings: dict[str, TagMapping], counts: TagCounts, members: dict[str, dict[str, int]],
           cut: dict[str, str]) -> list[Drop]:
    drops = [Drop(tag, "empty_after_normalise", n) for tag, n in counts.empty_posts.items()]
    for tag, mapping in mappings.items():
        if not mapping.kept:
            drops.append(Drop(tag, mapping.drop_reason, counts.tag_posts[tag], mapping.synset, mapping.detail))
    for synset, reason in cut.items():
        for tag, n in members[synset].items():
            drops.append(Drop(tag, reason, n, synset))
    return sorted(drops, key=lambda d: (-d.posts, d.tag, d.reason))


def _ambiguous(mappings: dict[str, TagMapping], counts: TagCounts, lookup: dict[str, int]) -> list[dict[str, Any]]:
    """Mapped tags whose lemma has several noun senses: which sense was taken, by which rule."""
    rows = [{"tag": tag, "posts": counts.tag_posts[tag], "lemma": m.lemma, "chosen": m.synset, "rule": m.rule,
             "kept": tag in lookup, "senses": list(m.senses)}
            for tag, m in mappings.items() if m.synset is not None and m.ambiguous]
    return sorted(rows, key=lambda r: (-r["posts"], r["tag"]))


def _coverage(counts: TagCounts, mappings: dict[str, TagMapping], lookup: dict[str, int]) -> dict[str, Any]:
    covered = sum(n for tags, n in counts.tag_sets.items() if any(t in lookup for t in tags))
    occurrences = sum(counts.tag_posts.values())
    kept_occurrences = sum(n for t, n in counts.tag_posts.items() if t in lookup)
    return {
        "posts": counts.posts,
        "posts_with_label": covered,
        "coverage": covered / counts.posts if counts.posts else 0.0,
        "distinct_tags": len(counts.tag_posts) + len(counts.empty_posts),
        "distinct_tags_visual": sum(1 for m in mappings.values() if m.kept),
        "distinct_tags_kept": len(lookup),
        "tag_occurrences": occurrences + sum(counts.empty_posts.values()),
        "tag_occurrences_kept": kept_occurrences,
    }


def _content(vocab: Vocabulary) -> dict[str, Any]:
    return {
        "config": vocab.config, "input": vocab.input, "coverage": vocab.coverage,
        "labels": [asdict(label) for label in vocab.labels], "lookup": vocab.lookup,
        "drops": [asdict(drop) for drop in vocab.drops], "ambiguous": vocab.ambiguous,
    }


def content_version(vocab: Vocabulary) -> str:
    """A 16-hex-digit hash of everything in the vocabulary but the version itself."""
    blob = json.dumps(_content(vocab), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def format_vocab(vocab: Vocabulary, top: int = 20) -> str:
    """A few lines of totals and a fixed-width table of the ``top`` most frequent labels."""
    c = vocab.coverage
    lines = [f"vocabulary {vocab.version}: {len(vocab)} labels, coverage {100 * c['coverage']:.1f}% of "
             f"{c['posts']:,} posts, {c['distinct_tags_kept']} of {c['distinct_tags']} hashtags kept",
             "drops: " + ", ".join(f"{r} {v['tags']}" for r, v in vocab.drop_summary().items()),
             f"{'#':>5}  {'label':<28} {'wnid':<10} {'posts':>8}  members"]
    for label in vocab.labels[:top]:
        members = " ".join(f"#{t}" for t in list(label.members)[:6]) + (" …" if len(label.members) > 6 else "")
        lines.append(f"{label.index:>5}  {label.label:<28} {label.wnid:<10} {label.posts:>8,}  {members}")
    return "\n".join(lines)
