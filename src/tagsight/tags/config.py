"""``VocabConfig``: every knob of vocabulary building, validated, loadable from YAML."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from tagsight.config import YamlConfig
from tagsight.tags.normalize import normalize_hashtag
from tagsight.tags.sampling import SAMPLING_MODES
from tagsight.tags.rules import (
    DEFAULT_FILLER_WORDS,
    DEFAULT_OVERRIDES,
    DEFAULT_SENSITIVE_SYNSETS,
    DEFAULT_STOP_LIST,
    DEFAULT_VISUAL_LEXNAMES,
    DEFAULT_VISUAL_SYNSETS,
    NOUN_LEXNAMES,
)

_LIST_FIELDS = ("visual_lexnames", "visual_synsets", "sensitive_synsets", "stop_list", "filler_words")
_SYNSET_NAME = re.compile(r"^[^\s.][^\s]*\.n\.\d{2}$")


@dataclass(frozen=True)
class VocabConfig(YamlConfig):
    """How hashtags become labels (docs/vocabulary.md; defaults in tags/rules.py).

    ``top_k``: keep the K labels with most posts (None: no limit); ``min_count``: fewest posts a
    label needs. ``rollup_depth``: map each label to its hypernym at this depth below entity.n.01
    (depth 0); None keeps the synsets as mapped. ``visual_lexnames`` / ``visual_synsets``: which
    synsets count as visual; ``sensitive_synsets``: person categories never kept (nor their
    hyponyms). ``stop_list``: tags always dropped; ``filler_words``: decoration removed before
    lookup (#dogsofinstagram -> dogs). ``overrides``: normalised tag or lemma -> synset name, used
    instead of WordNet's first noun sense. ``sampling``: default mode of ``Vocabulary.sample_weights``.
    Loaded from YAML with ``--set`` overrides by tagsight.config.
    """

    config_label = "vocab config"

    top_k: int | None = 1500
    min_count: int = 5
    rollup_depth: int | None = None
    visual_lexnames: tuple[str, ...] = DEFAULT_VISUAL_LEXNAMES
    visual_synsets: tuple[str, ...] = DEFAULT_VISUAL_SYNSETS
    sensitive_synsets: tuple[str, ...] = DEFAULT_SENSITIVE_SYNSETS
    stop_list: tuple[str, ...] = DEFAULT_STOP_LIST
    filler_words: tuple[str, ...] = DEFAULT_FILLER_WORDS
    overrides: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_OVERRIDES))
    sampling: str = "sqrt"

    def __post_init__(self) -> None:
        _check_optional_int("top_k", self.top_k, minimum=1)
        _check_optional_int("min_count", self.min_count, minimum=1, optional=False)
        _check_optional_int("rollup_depth", self.rollup_depth, minimum=0)
        for name in _LIST_FIELDS:
            object.__setattr__(self, name, _str_tuple(name, getattr(self, name)))
        for name in ("visual_synsets", "sensitive_synsets"):
            _check_synset_names(name, getattr(self, name))
        for name in ("stop_list", "filler_words"):
            empty = [t for t in getattr(self, name) if not normalize_hashtag(t)]
            if empty:
                raise ValueError(f"{name}: {empty} have no letters or digits, so they can never match a tag")
        unknown = sorted(set(self.visual_lexnames) - set(NOUN_LEXNAMES))
        if unknown:
            raise ValueError(f"visual_lexnames: {unknown} are not WordNet noun lexicographer files "
                             f"(known: {', '.join(NOUN_LEXNAMES)})")
        object.__setattr__(self, "overrides", _check_overrides(self.overrides, self.stop_list))
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling {self.sampling!r} is not one of {SAMPLING_MODES}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists, sorted overrides), as written into vocab.json."""
        d = dataclasses.asdict(self)
        for name in _LIST_FIELDS:
            d[name] = list(d[name])
        d["overrides"] = dict(sorted(self.overrides.items()))
        return d


def _check_optional_int(name: str, value: Any, minimum: int, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = " or null" if optional else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{allowed}, got {value!r}")


def _str_tuple(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _check_synset_names(name: str, values: tuple[str, ...]) -> None:
    bad = [v for v in values if not _SYNSET_NAME.match(v)]
    if bad:
        raise ValueError(f"{name}: {bad} are not noun synset names like 'dog.n.01'")


def _check_overrides(overrides: Any, stop_list: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(overrides, Mapping):
        raise ValueError(f"overrides must be a mapping of tag -> synset name, got {type(overrides).__name__}")
    for tag, synset in overrides.items():
        if not isinstance(tag, str) or not normalize_hashtag(tag) or not isinstance(synset, str) \
                or not _SYNSET_NAME.match(synset):
            raise ValueError(f"override {tag!r} -> {synset!r}: expected a tag and a noun synset name like 'dog.n.01'")
    clash = sorted({normalize_hashtag(t) for t in overrides} & {normalize_hashtag(t) for t in stop_list})
    if clash:
        raise ValueError(f"{clash} are both in stop_list and in overrides: keep each tag in one of them")
    return dict(overrides)
