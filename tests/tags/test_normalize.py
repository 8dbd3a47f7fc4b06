"""Label form of hashtags: fold (NFKC, invisible characters, casefold), then letters and digits only."""

from __future__ import annotations

import pytest

from tagsight.tags.normalize import normalize_hashtag


@pytest.mark.parametrize("written, expected", [
    ("#BrownBear", "brownbear"),
    ("brown\u200bbear", "brownbear"),            # zero-width space
    ("\u202ebrownbear\u202c", "brownbear"),       # bidi override and pop
    ("dog\u2060", "dog"),                          # word joiner
    ("🐻brownbear🐻", "brownbear"),               # emoji
    ("❤️love", "love"),                            # emoji with variation selector
    ("＃ＢｒｏｗｎＢｅａｒ", "brownbear"),           # fullwidth hash and letters (NFKC)
    ("brown_bear", "brownbear"),                   # underscore is punctuation
    ("brown-bear!!", "brownbear"),
    ("STRASSE", "strasse"),
    ("Straße", "strasse"),                         # casefold, not lower
    ("like4like", "like4like"),                    # digits kept
    ("café", "café"),                              # letters of any script kept
    ("강아지", "강아지"),
    ("हिन्दी", "हिन्दी"),                            # combining vowel signs kept
])
def test_normalize_examples(written: str, expected: str) -> None:
    assert normalize_hashtag(written) == expected


@pytest.mark.parametrize("written", ["❤️", "🐶🐶", "#", "!!!", "\u200b", "1\ufe0f\u20e3"[1:], ""])
def test_nothing_label_like_left_is_empty(written: str) -> None:
    assert normalize_hashtag(written) == ""


def test_keycap_digit_keeps_the_digit_only() -> None:
    assert normalize_hashtag("1\ufe0f\u20e3") == "1"


def test_idempotent() -> None:
    for tag in ["#Dogs_Of_Instagram🐶", "ＣＡＦÉ", "x\u200by"]:
        once = normalize_hashtag(tag)
        assert normalize_hashtag(once) == once
