"""Imagenette classes as WordNet concepts: lemmas, hypernyms and descriptive tags."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from tagsight.datasets.harrison_stats import DatasetError
from tagsight.datasets.social_imagenette.config import HYPERNYM_TAGS, WNID_PATTERN


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
    if not WNID_PATTERN.fullmatch(wnid):
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


def ancestors_of(synset: Any) -> set[Any]:
    """Every hypernym and instance hypernym above ``synset``, transitively."""
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
    ancestors = {s.name() for s in ancestors_of(synset)}
    for name, lemma in hypernyms:
        if name not in ancestors or lemma not in wn.synset(name).lemma_names():
            raise ValueError(f"HYPERNYM_TAGS[{wnid}]: {lemma!r} of {name} is not a hypernym lemma of {synset.name()}")
    lemmas = tuple(synset.lemma_names())
    binomials = tuple(x for x in lemmas if is_binomial(x, wn))
    return Concept(wnid, synset.name(), lemmas[0].replace("_", " "), lemmas, tuple(hypernyms), binomials)


def is_binomial(lemma: str, wn: Any) -> bool:
    """A Latin species name like ``Tinca_tinca`` (its first word names a genus): nobody pluralises it."""
    parts = lemma.split("_")
    if len(parts) != 2 or not parts[0][:1].isupper():
        return False
    return any(f"genus_{parts[0]}" in s.lemma_names() for s in wn.synsets(parts[0], "n"))
