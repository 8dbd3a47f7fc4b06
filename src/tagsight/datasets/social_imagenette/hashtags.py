"""Writing a concept as people do: synonyms, plurals, compounds, spellings and one-edit typos."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from tagsight.datasets.audience import pick_weighted
from tagsight.datasets.harrison_stats import COMPOUND_TEMPLATES, CompoundTemplate
from tagsight.datasets.social_imagenette.concepts import Concept
from tagsight.datasets.social_imagenette.config import (DESCRIPTIVE_TAGS, KEYBOARD_NEIGHBOURS, NoiseModel,
    UNCHANGED_PLURALS)

Hypernyms = tuple[tuple[str, str], ...]   # (synset, lemma) pairs, as Concept.hypernyms


# ---------------------------------------------------------------- writing a concept as people do

@dataclass(frozen=True)
class TagTruth:
    """One hashtag of a post and what it really is (a line item of truth.jsonl)."""

    tag: str
    kind: str
    form: str | None = None        # true/wrong concept: synonym, lemma_variant, hypernym, compound, misspelling
    spelling: str | None = None    # lower, capitalised, joined, camel, snake
    wnid: str | None = None        # the class the tag names (true or wrong concept)
    source: str | None = None      # the WordNet lemma it was written from
    template: str | None = None    # compound template, e.g. "{}sofinstagram"
    typo_of: str | None = None     # misspelling: the correct spelling

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def lemma_words(lemma: str) -> list[str]:
    """Lower-case alphanumeric words of a WordNet lemma (``English_springer`` -> [english, springer])."""
    words = (re.sub(r"[^0-9a-z]", "", w) for w in re.split(r"[_\-\s]+", lemma.lower()))
    return [w for w in words if w]


def pluralize(word: str) -> str:
    """English plural of a single lower-case word by the regular rules (church -> churches)."""
    if word in UNCHANGED_PLURALS:
        return word
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def spell(words: list[str], rng: random.Random, model: NoiseModel) -> tuple[str, str]:
    """A hashtag (no spaces) for ``words`` in a randomly chosen spelling; returns (tag, spelling)."""
    if len(words) == 1:
        style = pick_weighted(rng, model.oneword_spelling)
        return (words[0].capitalize() if style == "capitalised" else words[0]), style
    style = pick_weighted(rng, model.multiword_spelling)
    if style == "camel":
        return "".join(w.capitalize() for w in words), style
    return ("_" if style == "snake" else "").join(words), style


_EDITS: dict[str, Callable[[str, int, random.Random], str]] = {
    "drop": lambda w, i, r: w[:i] + w[i + 1:],
    "double": lambda w, i, r: w[:i] + w[i] + w[i:],
    "swap": lambda w, i, r: w[:i - 1] + w[i] + w[i - 1] + w[i + 1:] if i >= 2 else w,
    "neighbour": lambda w, i, r: w[:i] + r.choice(KEYBOARD_NEIGHBOURS.get(w[i], w[i])) + w[i + 1:],
}


def typo(word: str, rng: random.Random) -> str:
    """A one-edit misspelling of ``word`` (drop, double, swap or keyboard-neighbour; first letter kept)."""
    if len(word) < 3:
        return word + word[-1:]
    for _ in range(20):
        out = _EDITS[rng.choice(tuple(_EDITS))](word, rng.randrange(1, len(word)), rng)
        if out != word and len(out) >= 3:
            return out
    return word[:-1]


@dataclass(frozen=True)
class ConceptWriter:
    """Writes a concept as a hashtag in one of the FORMS; compound templates carry calibrated weights."""

    model: NoiseModel
    templates: tuple[CompoundTemplate, ...] = COMPOUND_TEMPLATES
    template_weights: Mapping[str, float] = field(default_factory=dict)

    def write(self, concept: Concept, kind: str, rng: random.Random,
              avoid_synsets: frozenset[str] = frozenset()) -> TagTruth:
        """One hashtag naming ``concept``; hypernyms whose synset is in ``avoid_synsets`` are not used."""
        hypernyms = tuple(h for h in concept.hypernyms if h[0] not in avoid_synsets)
        weights = {f: w for f, w in self.model.form_weights.items() if f != "hypernym" or hypernyms}
        form = pick_weighted(rng, weights)
        writers = {"synonym": self._synonym, "lemma_variant": self._lemma_variant, "hypernym": self._hypernym,
                   "compound": self._compound, "misspelling": self._misspelling}   # one per FORMS
        return writers[form](concept, kind, rng, hypernyms)

    def _lemma(self, concept: Concept, rng: random.Random, plural: bool = False) -> str:
        lemmas = [x for x in concept.lemmas if not (plural and x in concept.binomials)] or [concept.lemmas[0]]
        weights = [self.model.head_lemma_weight if x == concept.lemmas[0] else 1.0 for x in lemmas]
        return rng.choices(lemmas, weights=weights)[0]

    def _synonym(self, concept: Concept, kind: str, rng: random.Random, _h: Hypernyms) -> TagTruth:
        lemma = self._lemma(concept, rng)
        tag, style = spell(lemma_words(lemma), rng, self.model)
        return TagTruth(tag, kind, "synonym", style, concept.wnid, lemma)

    def _lemma_variant(self, concept: Concept, kind: str, rng: random.Random, _h: Hypernyms) -> TagTruth:
        lemma = self._lemma(concept, rng, plural=True)
        words = lemma_words(lemma)
        tag, style = spell(words[:-1] + [pluralize(words[-1])], rng, self.model)
        return TagTruth(tag, kind, "lemma_variant", style, concept.wnid, lemma)

    def _hypernym(self, concept: Concept, kind: str, rng: random.Random, hypernyms: Hypernyms) -> TagTruth:
        _, lemma = rng.choice(hypernyms)
        tag, style = spell(lemma_words(lemma), rng, self.model)
        return TagTruth(tag, kind, "hypernym", style, concept.wnid, lemma)

    def _compound(self, concept: Concept, kind: str, rng: random.Random, hypernyms: Hypernyms) -> TagTruth:
        stem = rng.choice([concept.lemmas[0]] + [lemma for _, lemma in hypernyms])
        words = lemma_words(stem)
        plural = words[:-1] + [pluralize(words[-1])]
        weights = [self.template_weights.get(t.name, 1.0) for t in self.templates]
        template = rng.choices(self.templates, weights=weights)[0]
        parts = template.words(words, plural)
        camel = rng.random() < self.model.compound_camel
        tag = "".join(w.capitalize() for w in parts) if camel else "".join(parts)
        return TagTruth(tag, kind, "compound", "camel" if camel else "joined", concept.wnid, stem, template.name)

    def _misspelling(self, concept: Concept, kind: str, rng: random.Random, _h: Hypernyms) -> TagTruth:
        lemma = self._lemma(concept, rng)
        correct = "".join(lemma_words(lemma))
        return TagTruth(typo(correct, rng), kind, "misspelling", "lower", concept.wnid, lemma, typo_of=correct)


def concept_words(concept: Concept) -> dict[str, str]:
    """Joined lower-case words that name a class, with why: what the writer builds on and DESCRIPTIVE_TAGS."""
    out: dict[str, str] = {}
    for lemma in concept.lemmas + tuple(lemma for _, lemma in concept.hypernyms):
        words = lemma_words(lemma)
        for w in ("".join(words), "".join(words[:-1] + [pluralize(words[-1])])):
            out.setdefault(w, f"written form of {concept.synset}")
    for w in DESCRIPTIVE_TAGS.get(concept.wnid, ()):
        out.setdefault(w, f"describes {concept.synset} (DESCRIPTIVE_TAGS)")
    return out
