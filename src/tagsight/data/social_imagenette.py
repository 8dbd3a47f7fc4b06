"""social-imagenette: real photos (Imagenette) posted with simulated hashtags, and the exact ground truth.

Every photo of ``imagenette-160/{train,val}/<wnid>/`` becomes one post in our JSONL schema. Its
hashtags follow a noise model calibrated on HARRISON (real Instagram tag lists, see
``harrison_stats``) and documented in ``docs/social-imagenette.md``:

- the number of tags per post is drawn from HARRISON's distribution of tags per post;
- with probability ``p_present`` the photo's true concept is among them, written as people write
  it: a WordNet synonym in some spelling (#frenchhorn, #FrenchHorn, #french_horn), a lemma variant
  (#golfballs), a hypernym (#dog, #fish, #truck), a compound built on a template people use on
  HARRISON (#dogsofinstagram, #instachurch) or a one-edit misspelling (#parachtue);
- with probability ``p_wrong`` another class's concept is there too, written the same ways;
- the remaining slots are filled with HARRISON tags drawn by their real co-tag frequencies, leaving
  out every tag that names, is a synonym of, or a hypernym/hyponym of any class concept;
- visibility, consent and opt-outs follow ``tagsight.data.audience``; authors post Zipf-like counts.

Layout written under ``out_dir``::

    noise_model.json            parameters, calibrated HARRISON statistics, classes, counts
    <split>/posts.jsonl         the source `tagsight ingest` reads
    <split>/media/<wnid>/*.JPEG the photos, hard-linked to the originals (copied when linking fails)
    <split>/optout.txt          authors who asked to be left out
    <split>/truth.jsonl         ground truth per post; the pipeline never reads it

Everything random is derived from the seed: the same arguments give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
import shutil
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from tagsight.fsio import atomic_write_text
from tagsight.data.audience import Audience, pick_opted_out, sample_audience
from tagsight.data.harrison_stats import (
    COMPOUND_TEMPLATES,
    CompoundTemplate,
    DatasetError,
    HarrisonStats,
    load_harrison,
    template_usage,
)

log = logging.getLogger(__name__)

IMAGENETTE_DIR = "imagenette-160"
HARRISON_DIR = "harrison"
SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
FORMS = ("synonym", "lemma_variant", "hypernym", "compound", "misspelling")
TAG_KINDS = ("true_concept", "wrong_concept", "nonvisual_noise", "optout")
_WNID = re.compile(r"n\d{8}")
UNCHANGED_PLURALS = frozenset({"fish", "equipment", "brass"})

# Hypernyms people actually use as hashtags, per class: (synset, lemma). Each synset must be a
# WordNet hypernym of the class (checked in ``load_concept``). Classes without a hypernym people
# would write (cassette player: electronic_equipment; parachute: rescue_equipment) have none.
HYPERNYM_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "n01440764": (("fish.n.01", "fish"),),
    "n02102040": (("dog.n.01", "dog"), ("spaniel.n.01", "spaniel"), ("springer_spaniel.n.01", "springer"),
                  ("sporting_dog.n.01", "gun_dog")),
    "n02979186": (),
    "n03000684": (("power_saw.n.01", "saw"), ("power_tool.n.01", "power_tool"), ("tool.n.01", "tool")),
    "n03028079": (("building.n.01", "building"), ("place_of_worship.n.01", "place_of_worship")),
    "n03394916": (("brass.n.02", "brass"), ("musical_instrument.n.01", "instrument"),
                  ("musical_instrument.n.01", "musical_instrument")),
    "n03417042": (("truck.n.01", "truck"), ("vehicle.n.01", "vehicle")),
    "n03425413": (("pump.n.01", "pump"),),
    "n03445777": (("ball.n.01", "ball"), ("golf_equipment.n.01", "golf_equipment")),
    "n03888257": (),
}

# Tags WordNet does not link to a class but that would still describe its photos: never noise.
DESCRIPTIVE_TAGS: dict[str, tuple[str, ...]] = {
    "n02102040": ("pet", "puppy", "pup", "doggy", "doggie", "doggo"),
}

REGIONS = {"US": 0.22, "GB": 0.08, "DE": 0.10, "FR": 0.08, "NL": 0.05, "ES": 0.05, "IT": 0.05, "BR": 0.09,
           "JP": 0.07, "IN": 0.09, "CA": 0.04, None: 0.08}
LICENSES = {None: 0.6, "CC-BY-4.0": 0.15, "CC-BY-SA-4.0": 0.1, "CC0-1.0": 0.08, "CC-BY-NC-4.0": 0.07}
SENTENCES = ("", "", "", "Weekend vibes.", "What a day!", "Finally.", "Look at this.", "Today's find.",
             "Can't stop looking at this.", "Not bad for a phone pic.", "Throwback.", "Saturday ☀️",
             "So happy right now.", "Had to share this one.", "Guess what I saw today", "New favourite.")
TIME_WINDOW = (dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
_NEIGHBOURS = {c: n for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm") for i, c in enumerate(row)
               for n in [row[max(0, i - 1):i] + row[i + 1:i + 2]]}


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_weights(name: str, weights: Mapping[Any, float], keys: Iterable[Any]) -> None:
    keys = tuple(keys)
    if set(weights) != set(keys):
        raise ValueError(f"{name} must have exactly the keys {keys}, got {tuple(weights)}")
    if any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise ValueError(f"{name} must be non-negative numbers with a positive sum, got {dict(weights)}")


@dataclass(frozen=True)
class NoiseModel:
    """How simulated hashtags are drawn; documented with its calibrated numbers in docs/social-imagenette.md."""

    p_present: float = 0.8            # the true concept is among the tags
    p_wrong: float = 0.25             # another class's concept is among the tags
    p_second_form: float = 0.25       # when present, a second, different spelling of it too (slots allowing)
    form_weights: Mapping[str, float] = field(default_factory=lambda: {
        "synonym": 0.45, "lemma_variant": 0.15, "hypernym": 0.15, "compound": 0.17, "misspelling": 0.08})
    head_lemma_weight: float = 3.0    # the synset's first lemma against 1.0 for each other synonym
    multiword_spelling: Mapping[str, float] = field(default_factory=lambda: {
        "joined": 0.55, "camel": 0.30, "snake": 0.15})
    oneword_spelling: Mapping[str, float] = field(default_factory=lambda: {"lower": 0.85, "capitalised": 0.15})
    compound_camel: float = 0.3       # share of compounds written CamelCase (#DogsOfInstagram)
    author_alpha: float = 2.0         # posts per author ~ k^-alpha, k = 1..max_posts_per_author
    max_posts_per_author: int = 200

    def __post_init__(self) -> None:
        for name in ("p_present", "p_wrong", "p_second_form", "compound_camel"):
            _check_probability(name, getattr(self, name))
        _check_weights("form_weights", self.form_weights, FORMS)
        _check_weights("multiword_spelling", self.multiword_spelling, ("joined", "camel", "snake"))
        _check_weights("oneword_spelling", self.oneword_spelling, ("lower", "capitalised"))
        if not self.head_lemma_weight > 0:
            raise ValueError(f"head_lemma_weight must be > 0, got {self.head_lemma_weight!r}")
        if not self.author_alpha > 0:
            raise ValueError(f"author_alpha must be > 0, got {self.author_alpha!r}")
        if isinstance(self.max_posts_per_author, bool) or not isinstance(self.max_posts_per_author, int) \
                or self.max_posts_per_author < 1:
            raise ValueError(f"max_posts_per_author must be an integer >= 1, got {self.max_posts_per_author!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SocialImagenetteConfig:
    """What to build: where from, where to, which splits, how many posts, the seed and the noise model."""

    out_dir: Path
    data_root: Path
    seed: int = 0
    splits: tuple[str, ...] = SPLITS
    limit: int | None = None          # at most this many posts per split (a prefix of the full build)
    noise: NoiseModel = field(default_factory=NoiseModel)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "data_root", Path(self.data_root))
        object.__setattr__(self, "splits", tuple(self.splits))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not self.splits or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be a non-empty list without repeats, got {self.splits!r}")
        bad = [s for s in self.splits if not re.fullmatch(r"[A-Za-z0-9_-]+", s)]
        if bad:
            raise ValueError(f"split names must be folder names (letters, digits, '-', '_'), got {bad}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {self.limit!r}")


# ---------------------------------------------------------------- data root

def default_data_root(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``$TAGSIGHT_DATA`` when set, else ``<cwd>/../shared/data``."""
    env = os.environ if env is None else env
    if env.get("TAGSIGHT_DATA"):
        return Path(env["TAGSIGHT_DATA"])
    return (cwd or Path.cwd()) / ".." / "shared" / "data"


def _where(data: Path | None, env: Mapping[str, str], root: Path) -> str:
    if data is not None:
        return f"--data {root}"
    if env.get("TAGSIGHT_DATA"):
        return f"$TAGSIGHT_DATA={root}"
    return f"$TAGSIGHT_DATA is not set, and the default <cwd>/../shared/data is {root}"


def resolve_data_root(data: Path | None = None, env: Mapping[str, str] | None = None,
                      cwd: Path | None = None) -> Path:
    """The data root holding ``imagenette-160/`` and ``harrison/``; DatasetError naming where it looked."""
    env = os.environ if env is None else env
    root = Path(data) if data is not None else default_data_root(env, cwd)
    if not root.is_dir():
        raise DatasetError("data_missing", f"data folder not found ({_where(data, env, root)}); pass --data DIR "
                                           "or set TAGSIGHT_DATA to the folder holding imagenette-160/ and harrison/")
    for sub, reason in ((IMAGENETTE_DIR, "imagenette_missing"), (HARRISON_DIR, "harrison_missing")):
        if not (root / sub).is_dir():
            raise DatasetError(reason, f"{root} has no {sub}/ folder (see ../shared/data/README.md)")
    return root


# ---------------------------------------------------------------- concepts from WordNet

@dataclass(frozen=True)
class Concept:
    """One Imagenette class as a WordNet synset, with the words people tag it with."""

    wnid: str
    synset: str
    name: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[tuple[str, str], ...]   # (synset, lemma) pairs from HYPERNYM_TAGS
    binomials: tuple[str, ...] = ()           # Latin species names among the lemmas (never pluralised)

    def to_dict(self) -> dict[str, Any]:
        return {"wnid": self.wnid, "synset": self.synset, "name": self.name, "lemmas": list(self.lemmas),
                "binomials": list(self.binomials),
                "hypernyms": [{"synset": s, "lemma": lemma} for s, lemma in self.hypernyms]}


def synset_of(wnid: str, wn: Any) -> Any:
    """The WordNet 3.0 noun synset of an ImageNet wnid (``n02102040`` -> offset 2102040)."""
    if not _WNID.fullmatch(wnid):
        raise DatasetError("invalid_wnid", f"{wnid!r} is not a WordNet id like n02102040")
    try:
        with warnings.catch_warnings():       # nltk warns and returns None for an offset it lacks
            warnings.simplefilter("ignore")
            synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
    except Exception:  # nltk raises WordNetError or ValueError for an offset inside a record
        synset = None
    if synset is None or synset.offset() != int(wnid[1:]):
        raise DatasetError("unknown_wnid", f"{wnid} is not a WordNet 3.0 noun synset offset")
    return synset


def _ancestors(synset: Any) -> set[Any]:
    return set(synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))


def _default_hypernyms(synset: Any) -> tuple[tuple[str, str], ...]:
    """For a class without a curated entry: the one-word lemmas of its direct hypernyms."""
    return tuple((h.name(), lemma) for h in synset.hypernyms() for lemma in h.lemma_names() if "_" not in lemma)


def load_concept(wnid: str, wn: Any) -> Concept:
    """The Concept of ``wnid``; its curated hypernym tags are checked against WordNet."""
    synset = synset_of(wnid, wn)
    hypernyms = HYPERNYM_TAGS.get(wnid)
    if hypernyms is None:
        hypernyms = _default_hypernyms(synset)
    ancestors = {s.name() for s in _ancestors(synset)}
    for name, lemma in hypernyms:
        if name not in ancestors or lemma not in wn.synset(name).lemma_names():
            raise ValueError(f"HYPERNYM_TAGS[{wnid}]: {lemma!r} of {name} is not a hypernym lemma of {synset.name()}")
    lemmas = tuple(synset.lemma_names())
    binomials = tuple(x for x in lemmas if is_binomial(x, wn))
    return Concept(wnid, synset.name(), lemmas[0].replace("_", " "), lemmas, tuple(hypernyms), binomials)


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


def is_binomial(lemma: str, wn: Any) -> bool:
    """A Latin species name like ``Tinca_tinca`` (its first word names a genus): nobody pluralises it."""
    parts = lemma.split("_")
    if len(parts) != 2 or not parts[0][:1].isupper():
        return False
    return any(f"genus_{parts[0]}" in s.lemma_names() for s in wn.synsets(parts[0], "n"))


def _pick(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def spell(words: list[str], rng: random.Random, model: NoiseModel) -> tuple[str, str]:
    """A hashtag (no spaces) for ``words`` in a randomly chosen spelling; returns (tag, spelling)."""
    if len(words) == 1:
        style = _pick(rng, model.oneword_spelling)
        return (words[0].capitalize() if style == "capitalised" else words[0]), style
    style = _pick(rng, model.multiword_spelling)
    if style == "camel":
        return "".join(w.capitalize() for w in words), style
    return ("_" if style == "snake" else "").join(words), style


_EDITS: dict[str, Callable[[str, int, random.Random], str]] = {
    "drop": lambda w, i, r: w[:i] + w[i + 1:],
    "double": lambda w, i, r: w[:i] + w[i] + w[i:],
    "swap": lambda w, i, r: w[:i - 1] + w[i] + w[i - 1] + w[i + 1:] if i >= 2 else w,
    "neighbour": lambda w, i, r: w[:i] + r.choice(_NEIGHBOURS.get(w[i], w[i])) + w[i + 1:],
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
        form = _pick(rng, weights)
        return getattr(self, f"_{form}")(concept, kind, rng, hypernyms)

    def _lemma(self, concept: Concept, rng: random.Random, plural: bool = False) -> str:
        lemmas = [x for x in concept.lemmas if not (plural and x in concept.binomials)] or [concept.lemmas[0]]
        weights = [self.model.head_lemma_weight if x == concept.lemmas[0] else 1.0 for x in lemmas]
        return rng.choices(lemmas, weights=weights)[0]

    def _synonym(self, concept: Concept, kind: str, rng: random.Random, _h: tuple) -> TagTruth:
        lemma = self._lemma(concept, rng)
        tag, style = spell(lemma_words(lemma), rng, self.model)
        return TagTruth(tag, kind, "synonym", style, concept.wnid, lemma)

    def _lemma_variant(self, concept: Concept, kind: str, rng: random.Random, _h: tuple) -> TagTruth:
        lemma = self._lemma(concept, rng, plural=True)
        words = lemma_words(lemma)
        tag, style = spell(words[:-1] + [pluralize(words[-1])], rng, self.model)
        return TagTruth(tag, kind, "lemma_variant", style, concept.wnid, lemma)

    def _hypernym(self, concept: Concept, kind: str, rng: random.Random, hypernyms: tuple) -> TagTruth:
        _, lemma = rng.choice(hypernyms)
        tag, style = spell(lemma_words(lemma), rng, self.model)
        return TagTruth(tag, kind, "hypernym", style, concept.wnid, lemma)

    def _compound(self, concept: Concept, kind: str, rng: random.Random, hypernyms: tuple) -> TagTruth:
        stem = rng.choice([concept.lemmas[0]] + [lemma for _, lemma in hypernyms])
        words = lemma_words(stem)
        plural = words[:-1] + [pluralize(words[-1])]
        weights = [self.template_weights.get(t.name, 1.0) for t in self.templates]
        template = rng.choices(self.templates, weights=weights)[0]
        parts = template.words(words, plural)
        camel = rng.random() < self.model.compound_camel
        tag = "".join(w.capitalize() for w in parts) if camel else "".join(parts)
        return TagTruth(tag, kind, "compound", "camel" if camel else "joined", concept.wnid, stem, template.name)

    def _misspelling(self, concept: Concept, kind: str, rng: random.Random, _h: tuple) -> TagTruth:
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


# ---------------------------------------------------------------- HARRISON calibration

def related_synsets(concepts: Iterable[Concept], wn: Any) -> dict[str, str]:
    """Synset name -> why it is related to a class: the class itself, its hypernyms and its hyponyms."""
    related: dict[str, str] = {}
    for c in concepts:
        synset = wn.synset(c.synset)
        hyponyms = synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms())
        for s in sorted(hyponyms, key=lambda s: s.name()):
            related.setdefault(s.name(), f"hyponym of {c.synset}")
        for s in sorted(_ancestors(synset), key=lambda s: s.name()):
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
        return cls(tuple(k for k, _ in hist), tuple(_cumsum(c for _, c in hist)),
                   tuple(t for t, _ in items), tuple(_cumsum(c for _, c in items)))

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


def _cumsum(values: Iterable[float]) -> list[float]:
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


# ---------------------------------------------------------------- photos and authors

@dataclass(frozen=True)
class Photo:
    """One source photo and where its post's media path points."""

    wnid: str
    src: Path        # the original file
    rel: str         # media path relative to the split folder: media/<wnid>/<file>


def scan_split(imagenette_dir: Path, split: str) -> tuple[list[Photo], list[str]]:
    """Photos of a split in sorted order, and the files skipped as not images (with a warning)."""
    root = imagenette_dir / split
    if not root.is_dir():
        raise DatasetError("split_missing", f"split folder {root} not found")
    photos: list[Photo] = []
    skipped: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not _WNID.fullmatch(folder.name):
            raise DatasetError("invalid_wnid", f"{folder} is not named by a WordNet id like n02102040")
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(folder.name, f, f"media/{folder.name}/{f.name}"))
            else:
                skipped.append(str(f.relative_to(imagenette_dir)))
    if skipped:
        log.warning("%s: skipped %d files that are not photos (%s...)", split, len(skipped), skipped[0])
    if not photos:
        raise DatasetError("empty_split", f"split folder {root} holds no photos in <wnid>/ folders")
    return photos, skipped


def author_sequence(n: int, rng: random.Random, split: str, model: NoiseModel) -> list[str]:
    """Author ids for ``n`` posts: posts per author ~ k^-alpha (Zipf-like), in shuffled order."""
    ks = range(1, model.max_posts_per_author + 1)
    cum = _cumsum(k ** -model.author_alpha for k in ks)
    seq: list[str] = []
    author = 0
    while len(seq) < n:
        author += 1
        seq += [f"{split}-u{author:05d}"] * rng.choices(ks, cum_weights=cum)[0]
    seq = seq[:n]
    rng.shuffle(seq)
    return seq


# ---------------------------------------------------------------- posts

@dataclass(frozen=True)
class PostContext:
    """What planning a post needs; made by ``build_context``."""

    seed: int
    model: NoiseModel
    writer: ConceptWriter
    sampler: TagSampler
    concepts: dict[str, Concept]
    related: dict[str, frozenset[str]]   # wnid -> synsets a wrong concept's hypernym may not be


@dataclass(frozen=True)
class PlannedPost:
    """One post and its truth, before anything is written."""

    post_id: str
    author_id: str
    created_at: str
    region: str | None
    license: str | None
    audience: Audience
    photo: Photo
    concept: Concept
    wrong: Concept | None
    tags: tuple[TagTruth, ...]
    n_drawn: int
    caption: str
    likes: int

    def post_dict(self) -> dict[str, Any]:
        """The line of posts.jsonl (our schema; ``Post.from_dict`` accepts it)."""
        return {"post_id": self.post_id, "author_id": self.author_id, "created_at": self.created_at,
                "visibility": self.audience.visibility, "caption": self.caption,
                "hashtags": [t.tag for t in self.tags], "media": [{"path": self.photo.rel}],
                "consent": {"ai_training": self.audience.consent_ai_training},
                "region": self.region, "license": self.license, "likes": self.likes}

    def truth_dict(self, split: str) -> dict[str, Any]:
        """The line of truth.jsonl: true class, wrong class, and what every hashtag is."""
        return {"post_id": self.post_id, "split": split, "wnid": self.concept.wnid, "synset": self.concept.synset,
                "class_name": self.concept.name, "media": self.photo.rel,
                "original": f"{split}/{self.photo.wnid}/{self.photo.src.name}",
                "concept_present": any(t.kind == "true_concept" for t in self.tags),
                "wrong_wnid": self.wrong.wnid if self.wrong else None, "n_tags_drawn": self.n_drawn,
                "tags": [t.to_dict() for t in self.tags]}


def _write_distinct(ctx: PostContext, concept: Concept, kind: str, rng: random.Random, seen: set[str],
                    avoid: frozenset[str] = frozenset()) -> TagTruth | None:
    """A spelling of ``concept`` not already on the post (None after 10 tries)."""
    for _ in range(10):
        tag = ctx.writer.write(concept, kind, rng, avoid)
        if tag.tag.casefold() not in seen:
            seen.add(tag.tag.casefold())
            return tag
    return None


def draw_tags(rng: random.Random, concept: Concept, others: list[Concept],
              ctx: PostContext) -> tuple[list[TagTruth], Concept | None, int]:
    """The hashtags of one post (see the module docstring), the wrong concept if any, and the drawn count."""
    model, n, seen = ctx.model, ctx.sampler.n_tags(rng), set()
    tags: list[TagTruth] = []
    if rng.random() < model.p_present:
        tags.append(_write_distinct(ctx, concept, "true_concept", rng, seen))
    wrong = rng.choice(others) if others and rng.random() < model.p_wrong else None
    if wrong is not None:
        wrong_tag = _write_distinct(ctx, wrong, "wrong_concept", rng, seen, ctx.related[concept.wnid])
        tags += [wrong_tag] if wrong_tag else []
        wrong = wrong if wrong_tag else None
    if tags and tags[0].kind == "true_concept" and n > len(tags) and rng.random() < model.p_second_form:
        second = _write_distinct(ctx, concept, "true_concept", rng, seen)
        tags += [second] if second else []
    tags += [TagTruth(t, "nonvisual_noise") for t in ctx.sampler.noise(rng, max(0, n - len(tags)), seen)]
    rng.shuffle(tags)
    return tags, wrong, n


def make_caption(rng: random.Random, tags: list[str]) -> str:
    """A short neutral sentence (or none) and the hashtags inline, as people write them."""
    sentence = rng.choice(SENTENCES)
    sep = rng.choices((" ", "\n.\n.\n"), weights=(0.85, 0.15))[0]
    tail = " ".join("#" + t for t in tags)
    return (sentence + sep + tail).strip() if sentence else tail


def _timestamp(rng: random.Random) -> str:
    start, end = TIME_WINDOW
    t = start + dt.timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_post(index: int, split: str, photo: Photo, author: tuple[str, str | None, str | None],
              ctx: PostContext) -> PlannedPost:
    """Everything random about post ``index`` of ``split``, from its own seed-derived generator."""
    rng = random.Random(f"social-imagenette/{ctx.seed}/{split}/post/{index}")
    concept = ctx.concepts[photo.wnid]
    others = [c for w, c in sorted(ctx.concepts.items()) if w != photo.wnid]
    audience = sample_audience(rng)
    tags, wrong, n = draw_tags(rng, concept, others, ctx)
    if audience.optout_tag:
        tags.append(TagTruth(audience.optout_tag, "optout"))
    caption = make_caption(rng, [t.tag for t in tags])
    likes = min(100_000, int(5 * (rng.paretovariate(1.2) - 1)))
    return PlannedPost(f"{split}-{index:06d}", author[0], _timestamp(rng), author[1], author[2], audience, photo,
                       concept, wrong, tuple(tags), n, caption, likes)


def _author_profile(seed: int, split: str, author: str) -> tuple[str, str | None, str | None]:
    rng = random.Random(f"social-imagenette/{seed}/{split}/author/{author}")
    return author, _pick(rng, REGIONS), _pick(rng, LICENSES)


def plan_split(split: str, photos: list[Photo], ctx: PostContext, limit: int | None = None) -> list[PlannedPost]:
    """Shuffle the split's photos, assign Zipf-like authors, plan each post; ``limit`` keeps a prefix."""
    rng = random.Random(f"social-imagenette/{ctx.seed}/{split}/order")
    order = list(photos)
    rng.shuffle(order)
    authors = author_sequence(len(order), rng, split, ctx.model)[:limit]
    profiles = {a: _author_profile(ctx.seed, split, a) for a in sorted(set(authors))}
    return [plan_post(i, split, photo, profiles[a], ctx) for i, (photo, a) in enumerate(zip(order, authors))]


# ---------------------------------------------------------------- writing

def link_photo(src: Path, dst: Path) -> str:
    """Place ``src`` at ``dst`` by hard link, or a copy when linking fails; returns linked/copied/kept."""
    if dst.is_symlink() or (dst.exists() and not os.path.samefile(src, dst)):
        dst.unlink()
    elif dst.exists():
        return "kept"
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "linked"
    except OSError as exc:
        log.debug("hard link %s -> %s failed (%s); copying", src, dst, exc)
        shutil.copyfile(src, dst)
        return "copied"


def _prune_media(media_dir: Path, keep: set[Path]) -> int:
    """Remove files under ``media_dir`` that no post refers to (left by an earlier, larger build)."""
    stale = [p for p in sorted(media_dir.rglob("*")) if (p.is_file() or p.is_symlink()) and p not in keep]
    for p in stale:
        p.unlink()
    if stale:
        log.info("removed %d stale media files under %s", len(stale), media_dir)
    return len(stale)


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write a text file of lines atomically."""
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _jsonl(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    return (json.dumps(r, ensure_ascii=False) for r in records)


def write_split(split_dir: Path, split: str, posts: list[PlannedPost], opted_out: list[str]) -> Counter[str]:
    """Photos, posts.jsonl, truth.jsonl and optout.txt of one split; returns link outcome counts."""
    from tagsight.progress import Progress

    outcomes: Counter[str] = Counter()
    keep: set[Path] = set()
    with Progress(len(posts), f"{split}: placing photos", unit="photo") as progress:
        for post in posts:
            dst = split_dir / post.photo.rel
            outcomes[link_photo(post.photo.src, dst)] += 1
            keep.add(dst)
            progress.update()
    outcomes["stale_removed"] = _prune_media(split_dir / "media", keep)
    _write_lines(split_dir / "posts.jsonl", _jsonl(p.post_dict() for p in posts))
    _write_lines(split_dir / "truth.jsonl", _jsonl(p.truth_dict(split) for p in posts))
    header = [f"# social-imagenette/{split}: simulated authors who asked to be left out (one id per line)"]
    _write_lines(split_dir / "optout.txt", header + opted_out)
    return outcomes


# ---------------------------------------------------------------- summary and the build

@dataclass(frozen=True)
class SplitSummary:
    """Counts of one written split; each can be checked against its files."""

    split: str
    posts: int
    classes: int
    authors: int
    max_posts_by_one_author: int
    single_post_authors: int
    concept_present: int
    wrong_concept: int
    hashtags: int                 # without opt-out tags
    mean_tags_per_post: float     # without opt-out tags
    tag_kinds: dict[str, int]
    true_forms: dict[str, int]
    visibility: dict[str, int]
    consent: dict[str, int]
    optout_tag_posts: int
    opted_out_authors: int
    photos_linked: int
    photos_copied: int
    photos_kept: int
    stale_media_removed: int
    skipped_files: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_split(split: str, posts: list[PlannedPost], opted_out: list[str], outcomes: Mapping[str, int],
                    skipped: int) -> SplitSummary:
    """Count what a split holds."""
    per_author = Counter(p.author_id for p in posts)
    kinds = Counter(t.kind for p in posts for t in p.tags)
    hashtags = sum(kinds.values()) - kinds["optout"]
    return SplitSummary(
        split=split, posts=len(posts), classes=len({p.concept.wnid for p in posts}), authors=len(per_author),
        max_posts_by_one_author=max(per_author.values(), default=0),
        single_post_authors=sum(1 for c in per_author.values() if c == 1),
        concept_present=sum(1 for p in posts if any(t.kind == "true_concept" for t in p.tags)),
        wrong_concept=sum(1 for p in posts if p.wrong is not None), hashtags=hashtags,
        mean_tags_per_post=round(hashtags / len(posts), 4) if posts else 0.0,
        tag_kinds={k: kinds[k] for k in TAG_KINDS},
        true_forms=dict(sorted(Counter(t.form for p in posts for t in p.tags if t.kind == "true_concept").items())),
        visibility=dict(sorted(Counter(p.audience.visibility for p in posts).items())),
        consent=dict(sorted(Counter(json.dumps(p.audience.consent_ai_training) for p in posts).items())),
        optout_tag_posts=sum(1 for p in posts if p.audience.optout_tag), opted_out_authors=len(opted_out),
        photos_linked=outcomes.get("linked", 0), photos_copied=outcomes.get("copied", 0),
        photos_kept=outcomes.get("kept", 0), stale_media_removed=outcomes.get("stale_removed", 0),
        skipped_files=skipped,
    )


@dataclass(frozen=True)
class BuildSummary:
    """What ``build_social_imagenette`` wrote, per split, and how long it took."""

    out_dir: Path
    splits: tuple[SplitSummary, ...]
    seconds: float

    def format(self) -> str:
        """Human-readable summary lines."""
        lines = [f"social-imagenette in {self.out_dir} ({self.seconds:.1f}s)"]
        for s in self.splits:
            lines += [
                f"  {s.split}: {s.posts} posts of {s.classes} classes by {s.authors} authors "
                f"(max {s.max_posts_by_one_author} posts by one, {s.single_post_authors} with one post)",
                f"    true concept on {s.concept_present} ({s.concept_present / max(s.posts, 1):.1%}), "
                f"wrong concept on {s.wrong_concept} ({s.wrong_concept / max(s.posts, 1):.1%}), "
                f"{s.mean_tags_per_post:.2f} tags/post; tag kinds {s.tag_kinds}",
                f"    true-concept forms {s.true_forms}",
                f"    visibility {s.visibility}; consent {s.consent}; #noai-style tags on {s.optout_tag_posts} "
                f"posts; {s.opted_out_authors} opted-out authors",
                f"    photos: {s.photos_linked} hard-linked, {s.photos_copied} copied, {s.photos_kept} already "
                f"there; {s.stale_media_removed} stale removed; {s.skipped_files} non-photo files skipped",
            ]
        return "\n".join(lines)


def _build_split(split: str, photos: list[Photo], skipped: int, ctx: PostContext,
                 cfg: SocialImagenetteConfig) -> SplitSummary:
    posts = plan_split(split, photos, ctx, cfg.limit)
    authors = sorted({p.author_id for p in posts})
    opted_out = pick_opted_out(authors, random.Random(f"social-imagenette/{cfg.seed}/{split}/optout"))
    split_dir = cfg.out_dir / split
    split_dir.mkdir(parents=True, exist_ok=True)
    outcomes = write_split(split_dir, split, posts, opted_out)
    summary = summarize_split(split, posts, opted_out, outcomes, skipped)
    log.info("%s: wrote %d posts to %s", split, summary.posts, split_dir)
    return summary


def build_context(cfg: SocialImagenetteConfig, wnids: list[str], wn: Any) -> tuple[PostContext, Calibration]:
    """Concepts of ``wnids``, the HARRISON calibration (excluding all Imagenette classes) and the writer."""
    concepts = {w: load_concept(w, wn) for w in wnids}
    everyone = [load_concept(w, wn) for w in sorted(set(wnids) | set(HYPERNYM_TAGS))]
    calibration = calibrate(cfg.data_root / HARRISON_DIR, everyone, wn)
    per_class = {w: frozenset(related_synsets([c], wn)) for w, c in concepts.items()}
    writer = ConceptWriter(cfg.noise, COMPOUND_TEMPLATES, calibration.template_weights)
    return PostContext(cfg.seed, cfg.noise, writer, calibration.sampler, concepts, per_class), calibration


def _noise_model_json(cfg: SocialImagenetteConfig, ctx: PostContext, calibration: Calibration,
                      splits: list[SplitSummary]) -> str:
    doc = {
        "dataset": "social-imagenette", "format_version": 1, "seed": cfg.seed, "limit": cfg.limit,
        "inputs": {"photos": IMAGENETTE_DIR, "hashtags": HARRISON_DIR},
        "noise_model": cfg.noise.to_dict(),
        "classes": [c.to_dict() for _, c in sorted(ctx.concepts.items())],
        "harrison": calibration.to_dict(),
        "splits": {s.split: {k: v for k, v in s.to_dict().items() if not k.startswith(("photos_", "stale_"))}
                   for s in splits},
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def build_social_imagenette(cfg: SocialImagenetteConfig, wn: Any = None) -> BuildSummary:
    """Build the corpus described in the module docstring; returns the counts (also logged)."""
    from tagsight.tags.wordnet import load_wordnet

    start = time.monotonic()
    resolve_data_root(cfg.data_root)
    wn = wn or load_wordnet()
    scanned = {s: scan_split(cfg.data_root / IMAGENETTE_DIR, s) for s in cfg.splits}
    wnids = sorted({p.wnid for photos, _ in scanned.values() for p in photos})
    ctx, calibration = build_context(cfg, wnids, wn)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    splits = [_build_split(s, photos, len(skipped), ctx, cfg) for s, (photos, skipped) in scanned.items()]
    _write_lines(cfg.out_dir / "noise_model.json", [_noise_model_json(cfg, ctx, calibration, splits)])
    summary = BuildSummary(cfg.out_dir, tuple(splits), round(time.monotonic() - start, 2))
    for line in summary.format().splitlines():
        log.info("%s", line)
    return summary
