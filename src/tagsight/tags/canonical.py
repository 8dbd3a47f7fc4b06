"""Map one normalised hashtag to a WordNet 3.0 noun synset, or to the reason it has none.

Lookup (first match wins; every candidate is looked up as a noun lemma, and WordNet's ``morphy``
turns plurals and inflections into the lemma: dogs -> dog):

1. the stop list -> ``stop_list``;
2. ``whole``: the tag itself (``sunset``), its wordsegment words joined with ``_`` then ``-``
   (``brown_bear``, ``ursus_arctos``, ``t-shirt``), then every split into two parts of 3+
   characters (``tinca_tinca``, which wordsegment cuts as tin ca tinca);
3. ``stripped``: the same forms of the tag without its filler prefixes and suffixes
   (``beachlife`` -> ``beach``, ``instagaspump`` -> ``gas_pump``); when only a stop-listed or
   filler word is left (``instabeauty``, ``mylife``) -> ``stop_list``;
4. ``core``: the words left once filler words and stop-listed words are removed, joined with
   ``_`` then with nothing (``i love dust cart`` -> ``dustcart``); a tag that is nothing but filler
   -> ``stop_list``;
5. ``head``: the last core word (``happydog`` -> ``dog``), only when every other core word is
   itself an English word known to WordNet (so ``zaynmalik`` does not become ``malik``).

Candidates from steps 4 and 5 need at least 3 characters. A single word that SemCor tags more often
as an adjective than as a noun (white, young, crazy, delicious) is not taken as a noun.

Ambiguity rule: a lemma with several noun senses takes WordNet's first sense (senses are ordered
by their SemCor tag counts, so the first is the most frequent), unless ``overrides`` names a synset
for the tag or the lemma. Every mapped lemma with more than one noun sense is recorded.

Visual rule, on the mapped synset: a named person (an instance in noun.person or under
person.n.01) -> ``person_name``; one of ``sensitive_synsets`` or a hyponym -> ``sensitive_category``;
a named place (an instance in noun.location or under location, body of water, land or geological
formation) -> ``place_name``; else visual when listed in ``visual_synsets`` or when its lexicographer
file is in ``visual_lexnames`` -> otherwise ``non_visual_lexname:<lexname>``. noun.Tops (the unique
beginners) is split: physical ones (person, animal, food, ...) are visual, abstract ones are not.
"""

from __future__ import annotations

import functools
import logging
from itertools import accumulate
from dataclasses import dataclass, replace
from typing import Any, Iterator

from tagsight.tags.config import VocabConfig
from tagsight.tags.normalize import normalize_hashtag
from tagsight.tags.segment import segment

log = logging.getLogger(__name__)

PERSON = "person.n.01"
PHYSICAL = "physical_entity.n.01"
PLACE_ANCESTORS = frozenset({"location.n.01", "body_of_water.n.01", "land.n.04", "geological_formation.n.01"})
MIN_CORE_CHARS = 3  # fewest characters of a core/head candidate, and left after stripping an affix
MIN_MODIFIER_CHARS = 2
MIN_AFFIX_CHARS = 2  # single letters ("i") are removed as segments only


@dataclass(frozen=True)
class TagMapping:
    """The outcome for one normalised tag: a synset (kept) or a drop ``reason``, and how it got there.

    ``route`` is the step that found the lemma (whole, segments, split, stripped..., core, head); ``senses``
    the noun senses of that lemma in WordNet order; ``rule`` is ``first_sense`` or ``override``. A
    tag that reached a synset but was judged non-visual keeps ``synset`` and gets a ``reason``.
    ``detail`` says more about a drop in words.
    """

    tag: str
    synset: str | None = None
    reason: str | None = None
    lemma: str | None = None
    route: str | None = None
    senses: tuple[str, ...] = ()
    rule: str | None = None
    detail: str = ""

    @property
    def kept(self) -> bool:
        return self.synset is not None and self.reason is None

    @property
    def ambiguous(self) -> bool:
        return len(self.senses) > 1

    @property
    def label_synset(self) -> str | None:
        """The synset of a kept tag, None for a dropped one."""
        return self.synset if self.reason is None else None

    @property
    def drop_reason(self) -> str:
        """Why a dropped tag is not a label (ValueError for a kept tag)."""
        if self.reason is None:
            raise ValueError(f"tag {self.tag!r} is kept ({self.synset}): it has no drop reason")
        return self.reason


class Canonicalizer:
    """Normalised tag -> TagMapping under one VocabConfig; results are cached per tag."""

    def __init__(self, cfg: VocabConfig, wn: Any = None) -> None:   # nltk's WordNet reader (untyped)
        if wn is None:
            from tagsight.tags.wordnet import load_wordnet

            wn = load_wordnet()
        self.cfg, self.wn = cfg, wn
        self.stop = frozenset(normalize_hashtag(t) for t in cfg.stop_list)
        self.fillers = frozenset(normalize_hashtag(w) for w in cfg.filler_words)
        self._affixes = sorted((w for w in self.fillers if len(w) >= MIN_AFFIX_CHARS), key=lambda w: (-len(w), w))
        self.overrides = {normalize_hashtag(k): self._checked(f"override {k!r}", v) for k, v in cfg.overrides.items()}
        self.visual_synsets = frozenset(self._checked("visual_synsets", n) for n in cfg.visual_synsets)
        self.sensitive = frozenset(self._checked("sensitive_synsets", n) for n in cfg.sensitive_synsets)
        self._ancestor_cache: dict[str, frozenset[str]] = {}
        self.map = functools.lru_cache(maxsize=None)(self._map)

    def _checked(self, what: str, name: str) -> str:
        from nltk.corpus.reader.wordnet import WordNetError

        try:
            return str(self.wn.synset(name).name())
        except (WordNetError, ValueError):
            raise ValueError(f"{what}: WordNet 3.0 has no noun synset {name!r}") from None

    # -- lookup ---------------------------------------------------------------------------------

    def _map(self, tag: str) -> TagMapping:
        if not tag:
            return TagMapping(tag, reason="empty_after_normalise")
        if tag in self.stop:
            return TagMapping(tag, reason="stop_list")
        adjectives: list[str] = []
        for route, lemma in self.candidates(tag):
            if route.startswith("stripped") and (lemma in self.stop or lemma in self.fillers):
                return TagMapping(tag, reason="stop_list", detail=f"filler around {lemma!r}")
            mapping = self._lookup(tag, route, lemma, adjectives)
            if mapping is not None:
                return self._judge(mapping)
        if not self.core_words(tag):
            return TagMapping(tag, reason="stop_list", detail="only filler words")
        detail = f"mostly an adjective in SemCor: {', '.join(adjectives)}" if adjectives else ""
        return TagMapping(tag, reason="no_wordnet_noun", detail=detail)

    def candidates(self, tag: str) -> Iterator[tuple[str, str]]:
        """(route, lemma) pairs to look up, in order, without repeats."""
        stripped, core = self.strip_affixes(tag), self.core_words(tag)
        found = self._forms("whole", tag) + self._forms("stripped", stripped)
        if len("".join(core)) >= MIN_CORE_CHARS:
            found += [("core", "_".join(core)), ("core", "".join(core))]
        if len(core) > 1 and len(core[-1]) >= MIN_CORE_CHARS and all(map(self._is_word, core[:-1])):
            found.append(("head", core[-1]))
        seen: set[str] = set()
        for route, lemma in found:
            if lemma and lemma not in seen:
                seen.add(lemma)
                yield route, lemma

    def _forms(self, route: str, text: str) -> list[tuple[str, str]]:
        """``text`` itself, its words joined by ``_`` and ``-``, then every two-part split of it.

        Routes: ``whole``/``segments``/``split`` for the tag, ``stripped``/``stripped_segments``/
        ``stripped_split`` for the tag without filler affixes.
        """
        words = segment(text)
        prefix = "" if route == "whole" else f"{route}_"
        forms = [(route, text), (f"{prefix}segments", "_".join(words)), (f"{prefix}segments", "-".join(words))]
        splits = (f"{text[:i]}_{text[i:]}" for i in range(MIN_CORE_CHARS, len(text) - MIN_CORE_CHARS + 1))
        return forms + [(f"{prefix}split", lemma) for lemma in splits]

    def core_words(self, tag: str) -> tuple[str, ...]:
        """The tag's words without decoration: affixes stripped, then filler and stop-listed words removed."""
        words = segment(self.strip_affixes(tag))
        return tuple(w for w in words if w not in self.fillers and w not in self.stop)

    def strip_affixes(self, tag: str) -> str:
        """Remove filler prefixes and suffixes (longest first) where wordsegment puts a word boundary
        or where what remains is a WordNet noun (as a whole, segmented or split in two).

        ``beachlife`` -> ``beach``, ``dogsofinstagram`` -> ``dogs``, ``instagaspump`` -> ``gaspump``;
        ``throwbackthursday`` keeps its ``day``. At least 3 characters always remain.
        """
        while tag not in self.fillers and tag not in self.stop:
            stripped = self._strip_one(tag)
            if stripped == tag:
                break
            tag = stripped
        return tag

    def _strip_one(self, tag: str) -> str:
        cuts = set(accumulate(len(w) for w in segment(tag)))
        for affix in self._affixes:
            if len(tag) - len(affix) < MIN_CORE_CHARS:
                continue
            if tag.endswith(affix) and self._cuttable(tag[: -len(affix)], len(tag) - len(affix), cuts):
                return tag[: -len(affix)]
            if tag.startswith(affix) and self._cuttable(tag[len(affix):], len(affix), cuts):
                return tag[len(affix):]
        return tag

    def _cuttable(self, rest: str, at: int, cuts: set[int]) -> bool:
        return at in cuts or any(self.wn.synsets(lemma, pos="n") for _, lemma in self._forms("", rest))

    def _is_word(self, word: str) -> bool:
        return word.isdigit() or (len(word) >= MIN_MODIFIER_CHARS and bool(self.wn.synsets(word)))

    def _lookup(self, tag: str, route: str, lemma: str, adjectives: list[str]) -> TagMapping | None:
        synsets = self.wn.synsets(lemma, pos="n")
        senses = tuple(s.name() for s in synsets)
        base = self.wn.morphy(lemma, "n") or lemma
        override = self._override(tag, lemma, base)
        if override is not None:
            return TagMapping(tag, synset=override, lemma=base, route=route, senses=senses, rule="override")
        if not synsets:
            return None
        if "_" not in lemma and self._mostly_adjective(lemma, base):
            adjectives.append(lemma)
            return None
        return TagMapping(tag, synset=senses[0], lemma=base, route=route, senses=senses, rule="first_sense")

    def _override(self, tag: str, lemma: str, base: str) -> str | None:
        for key in (tag, lemma, base):
            hit = self.overrides.get(normalize_hashtag(key))
            if hit is not None:
                return hit
        return None

    def _mostly_adjective(self, lemma: str, base: str) -> bool:
        """SemCor tags this word more often as an adjective than as a noun."""
        return self._semcor_count(lemma, base, "a") > self._semcor_count(lemma, base, "n")

    def _semcor_count(self, lemma: str, base: str, pos: str) -> int:
        forms = {lemma.casefold(), base.casefold()}
        return sum(l.count() for s in self.wn.synsets(lemma, pos=pos) for l in s.lemmas() if l.name().casefold() in forms)

    # -- visual judgement -------------------------------------------------------------------------

    def _judge(self, mapping: TagMapping) -> TagMapping:
        if mapping.synset is None:   # nothing to judge
            return mapping
        reason = self.non_visual_reason(mapping.synset)
        return mapping if reason is None else replace(mapping, reason=reason)

    def non_visual_reason(self, name: str) -> str | None:
        """None when the synset may be a label, else the drop reason."""
        synset = self.wn.synset(name)
        lexname, ancestors = synset.lexname(), self._ancestors(name)
        is_instance = bool(synset.instance_hypernyms())
        if is_instance and (lexname == "noun.person" or PERSON in ancestors):
            return "person_name"
        if name in self.sensitive or ancestors & self.sensitive:
            return "sensitive_category"
        if is_instance and (lexname == "noun.location" or ancestors & PLACE_ANCESTORS):
            return "place_name"
        if name in self.visual_synsets or self._visual_lexname(name, lexname, ancestors):
            return None
        return f"non_visual_lexname:{lexname}"

    def _visual_lexname(self, name: str, lexname: str, ancestors: frozenset[str]) -> bool:
        if lexname == "noun.Tops" and lexname not in self.cfg.visual_lexnames:
            return name == PHYSICAL or PHYSICAL in ancestors
        return lexname in self.cfg.visual_lexnames

    def _ancestors(self, name: str) -> frozenset[str]:
        """Every hypernym and instance hypernym of the synset, transitively (cached)."""
        if name not in self._ancestor_cache:
            closure = self.wn.synset(name).closure(lambda s: s.hypernyms() + s.instance_hypernyms())
            self._ancestor_cache[name] = frozenset(s.name() for s in closure)
        return self._ancestor_cache[name]

    # -- roll-up ----------------------------------------------------------------------------------

    def rollup(self, name: str) -> str:
        """The hypernym at ``cfg.rollup_depth`` below entity.n.01 on the synset's shortest hypernym path.

        A synset at or above that depth is its own roll-up. Among several shortest paths the
        first in name order is used, so the result is deterministic.
        """
        depth = self.cfg.rollup_depth
        if depth is None:
            return name
        paths = self.wn.synset(name).hypernym_paths()
        path = min(paths, key=lambda p: (len(p), [s.name() for s in p]))
        return path[depth].name() if len(path) > depth + 1 else name
