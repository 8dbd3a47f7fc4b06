"""Split a run-together hashtag into words with ``wordsegment`` (#brownbear -> brown bear).

``wordsegment`` ships English unigram and bigram counts (from the Google Web Trillion Word Corpus);
loading them takes about a second, so the segmenter is built once, on first use, and results are
cached. It only knows the ASCII letters and digits: other tags are returned as one word.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_SEGMENTABLE = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=1)
def _segmenter() -> Any:   # a wordsegment.Segmenter (the package has no type information)
    import wordsegment

    segmenter = wordsegment.Segmenter()
    segmenter.load()
    log.debug("wordsegment loaded (%d unigrams)", len(segmenter.unigrams))
    return segmenter


@functools.lru_cache(maxsize=1 << 16)
def segment(text: str) -> tuple[str, ...]:
    """Words of a normalised tag: ``dogsofinstagram`` -> (``dogs``, ``of``, ``insta``, ``gram``).

    Text that is not all ASCII lowercase letters and digits (other scripts, accents) is not split.
    """
    if not text:
        return ()
    if not _SEGMENTABLE.fullmatch(text):
        return (text,)
    return tuple(_segmenter().segment(text)) or (text,)
