"""Hashtag -> WordNet noun synset, or the reason there is none."""

from __future__ import annotations

import pytest

from tagsight.tags.canonical import Canonicalizer
from tagsight.tags.config import VocabConfig
from tagsight.tags.normalize import normalize_hashtag


@pytest.fixture(scope="module")
def canon() -> Canonicalizer:
    return Canonicalizer(VocabConfig())


def mapped(canon: Canonicalizer, written: str):
    return canon.map(normalize_hashtag(written))


@pytest.mark.parametrize("written, synset", [
    ("#BrownBear", "brown_bear.n.01"),          # segmentation: brown bear
    ("#ursusarctos", "brown_bear.n.01"),        # the Latin name is a lemma of the same synset
    ("#dogsofinstagram", "dog.n.01"),           # filler removed, plural -> lemma (morphy)
    ("#dogs", "dog.n.01"),
    ("#beachlife", "beach.n.01"),
    ("#instafood", "food.n.01"),
    ("#frenchhorn", "french_horn.n.01"),
    ("#tincatinca", "tench.n.01"),              # wordsegment cuts it wrong; the two-part split finds it
    ("#instagaspump", "gas_pump.n.01"),
    ("#happydog", "dog.n.01"),                  # head noun
    ("#beach", "beach.n.01"),
    ("#cake", "cake.n.03"),                     # override: the baked good, not a block of soap
    ("#church", "church.n.02"),                 # override: the building, not the community
    ("#sunset", "sunset.n.02"),                 # override: the phenomenon, not the time of day
    ("#selfie", "self-portrait.n.01"),          # override: not in WordNet 3.0
])
def test_visual_tags_map_to_their_synset(canon: Canonicalizer, written: str, synset: str) -> None:
    m = mapped(canon, written)
    assert m.kept, m
    assert m.synset == synset


@pytest.mark.parametrize("written, reason", [
    ("#❤️", "empty_after_normalise"),
    ("#love", "stop_list"),
    ("#instagood", "stop_list"),
    ("#photooftheday", "stop_list"),
    ("#instadaily", "stop_list"),
    ("#mylife", "stop_list"),                   # only filler around a filler word
    ("#zqxjvbk", "no_wordnet_noun"),
    ("#white", "no_wordnet_noun"),              # SemCor: mostly an adjective
    ("#throwbackthursday", "non_visual_lexname:noun.time"),
    ("#family", "non_visual_lexname:noun.group"),
    ("#travel", "non_visual_lexname:noun.act"),
    ("#einstein", "person_name"),
    ("#paris", "place_name"),
    ("#everest", "place_name"),                 # a named mountain (noun.object instance)
    ("#asian", "sensitive_category"),
])
def test_drops_have_their_reason(canon: Canonicalizer, written: str, reason: str) -> None:
    m = mapped(canon, written)
    assert not m.kept
    assert m.reason == reason


def test_named_celestial_body_is_not_a_place(canon: Canonicalizer) -> None:
    assert mapped(canon, "#moon").kept


def test_ambiguity_records_senses_and_rule(canon: Canonicalizer) -> None:
    dog = mapped(canon, "#dog")
    assert dog.ambiguous and dog.rule == "first_sense"
    assert dog.senses[0] == "dog.n.01" and len(dog.senses) > 1
    sunset = mapped(canon, "#sunset")
    assert sunset.rule == "override" and sunset.senses[0] == "sunset.n.01"
    assert not mapped(canon, "#beach").ambiguous


def test_overrides_and_lexnames_are_configurable() -> None:
    cfg = VocabConfig(overrides={"dog": "frump.n.01"}, visual_lexnames=("noun.animal", "noun.time"))
    canon = Canonicalizer(cfg)
    assert canon.map("dog").synset == "frump.n.01"
    assert canon.map("dog").reason == "non_visual_lexname:noun.person"
    assert canon.map("thursday").kept
    assert canon.map("church").reason == "non_visual_lexname:noun.group"


def test_unknown_override_synset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no noun synset 'dog.n.99'"):
        Canonicalizer(VocabConfig(overrides={"dog": "dog.n.99"}))


def test_rollup_uses_the_shortest_hypernym_path() -> None:
    canon = Canonicalizer(VocabConfig(rollup_depth=11))
    assert canon.rollup("brown_bear.n.01") == "carnivore.n.01"
    assert canon.rollup("cat.n.01") == "carnivore.n.01"
    assert canon.rollup("dog.n.01") == "dog.n.01"          # depth 8 via domestic_animal: shallower, kept
    assert Canonicalizer(VocabConfig(rollup_depth=6)).rollup("dog.n.01") == "animal.n.01"
    assert Canonicalizer(VocabConfig()).rollup("dog.n.01") == "dog.n.01"
