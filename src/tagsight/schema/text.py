"""Text hygiene shared by ingest, privacy and tags: the lowest layer, no dependencies."""

from __future__ import annotations

import re
import unicodedata

# Zero-width, joiners, bidi embeddings/overrides/isolates, BOM, variation selectors.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufe00-\ufe0f]")
_TRAILING_PUNCT = ".,;:!?)]}\"'…"


def strip_invisible(text: str) -> str:
    """Remove zero-width, bidi-control and variation-selector characters."""
    text = _INVISIBLE.sub("", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def fold_hashtag(tag: str) -> str:
    """Canonical comparison form of a hashtag: NFKC, no invisible characters, no '#', casefolded.

    This is what policy matching (``#noai``) uses; tags.normalize builds the label form on top.
    """
    tag = unicodedata.normalize("NFKC", tag)
    tag = strip_invisible(tag).strip().lstrip("#＃")
    return tag.casefold()


def parse_hashtags(caption: str) -> list[str]:
    """Hashtags as written in a caption, without the leading '#', in order, duplicates kept.

    A hashtag is a '#' (or fullwidth '＃') followed by a run of non-space, non-'#' characters;
    trailing sentence punctuation is not part of it. Invisible characters are kept: they are
    part of what the user wrote and are removed by normalisation, not here.
    """
    tags: list[str] = []
    for match in re.finditer(r"[#＃]([^\s#＃]+)", caption):
        tag = match.group(1).rstrip(_TRAILING_PUNCT)
        if strip_invisible(tag):
            tags.append(tag)
    return tags
