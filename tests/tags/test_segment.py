"""Segmentation of run-together hashtags with wordsegment."""

from __future__ import annotations

from tagsight.tags.segment import segment


def test_compounds_split_into_words() -> None:
    assert segment("brownbear") == ("brown", "bear")
    assert segment("dogsofinstagram")[:2] == ("dogs", "of")
    assert segment("throwbackthursday") == ("throwback", "thursday")


def test_single_word_stays_whole() -> None:
    assert segment("dog") == ("dog",)


def test_other_scripts_and_accents_are_not_split() -> None:
    assert segment("강아지") == ("강아지",)
    assert segment("cafébar") == ("cafébar",)


def test_empty() -> None:
    assert segment("") == ()
