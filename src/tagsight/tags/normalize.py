"""The label form of a hashtag: folded (NFKC, no invisible characters, casefold) and reduced to letters and digits.

Built on ``ingest.text.fold_hashtag`` so that the policy form (``#noai``) and the label form agree on
everything but punctuation and emoji. Letters and digits of every script are kept (``café``,
``강아지``, ``like4like``), together with the combining marks those scripts need (Devanagari vowel
signs, Thai tone marks); emoji, symbols, punctuation, spaces and underscores are removed.
"""

from __future__ import annotations

import unicodedata

from tagsight.schema.text import fold_hashtag

# Unicode general categories kept: letters (L*), numbers (N*), non-spacing and spacing combining marks.
# Enclosing marks (Me, e.g. the keycap U+20E3 of emoji) are not kept.
_KEPT_MARKS = ("Mn", "Mc")


def _is_label_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LN" or category in _KEPT_MARKS


def normalize_hashtag(tag: str) -> str:
    """``#Brown_Bear🐻`` -> ``brownbear``: fold_hashtag, then keep only letters, digits and combining marks.

    The empty string means nothing label-like was left (an emoji-only or punctuation-only tag).
    """
    return "".join(ch for ch in fold_hashtag(tag) if _is_label_char(ch))
