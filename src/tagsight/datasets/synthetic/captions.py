"""Hashtags and captions as people write them: spellings, decorations, wrong and non-visual tags."""

from __future__ import annotations

import random

from tagsight.datasets.synthetic.config import (CONCEPTS, EMOJI, FORM_WEIGHTS, FeedConfig, NONVISUAL_TAGS, SPELLINGS,
    WRONG_FORMS, ZERO_WIDTH)
from tagsight.datasets.synthetic.records import FeedPost, FeedTag


# ---------------------------------------------------------------- hashtags and captions

def _spelling(rng: random.Random, concept: str, forms: tuple[str, ...] | None = None) -> tuple[str, str]:
    table = SPELLINGS[concept]
    names = [f for f in (forms or FORM_WEIGHTS) if table.get(f)]
    form = rng.choices(names, weights=[FORM_WEIGHTS[f] for f in names])[0]
    return rng.choice(table[form]), form


def _decorate(rng: random.Random, tag: str) -> str:
    """Now and then an emoji glued to the tag or a zero-width character inside it, as real feeds have."""
    r = rng.random()
    if r < 0.05:
        return tag + rng.choice(EMOJI)
    if r < 0.08 and len(tag) > 2:
        k = rng.randrange(1, len(tag))
        return tag[:k] + rng.choice(ZERO_WIDTH) + tag[k:]
    return tag


def _relevant_tags(rng: random.Random, shown: list[str]) -> list[FeedTag]:
    """The main concept always gets one or two spellings; other shown concepts usually do."""
    tags: list[FeedTag] = []
    for k, concept in enumerate(shown):
        if k == 0 or rng.random() < 0.6:
            n = 1 if rng.random() < 0.55 else 2
            spellings = dict.fromkeys(_spelling(rng, concept) for _ in range(n))  # ordered, no repeats
            tags.extend(FeedTag(t, "relevant", concept, f) for t, f in spellings)
    return tags


def plan_tags(cfg: FeedConfig, rng: random.Random, post: FeedPost) -> list[FeedTag]:
    """Relevant, wrong, non-visual and opt-out hashtags of one post, decorated now and then."""
    shown = list(dict.fromkeys(c for im in post.images for c in im.concepts))
    tags = _relevant_tags(rng, shown)
    if rng.random() < cfg.p_wrong:
        concept = rng.choice([c for c in CONCEPTS if c not in shown])
        spelling, form = _spelling(rng, concept, WRONG_FORMS)
        tags.append(FeedTag(spelling, "wrong", concept, form))
    if rng.random() < cfg.p_nonvisual:
        tags.extend(FeedTag(t, "nonvisual") for t in rng.sample(NONVISUAL_TAGS, rng.choice((1, 1, 2, 3))))
    rest = tags[1:]
    rng.shuffle(rest)
    tags = tags[:1] + rest
    if post.audience.optout_tag:
        tags.append(FeedTag(post.audience.optout_tag, "optout"))
    for t in tags:
        t.tag = _decorate(rng, t.tag)
    return tags


_OPENERS = ("Finally got this", "Look at this", "Can't stop looking at this", "Weekend with the",
            "Throwback to that", "Just me and my", "New", "Best day ever with the", "Guess who", "Today's")
_SENTENCES = ("What a day!", "So happy right now.", "Sunday vibes.", "Couldn't resist.", "Had to share this one.",
              "Not bad for a phone pic.", "", "Loving it ☀️", "Best weekend.", "Good times with friends.")


def make_caption(rng: random.Random, tags: list[FeedTag]) -> str:
    """Hashtags inline as people write them: one in a sentence, the rest at the end, various separators."""
    words = ["#" + t.tag for t in tags]
    head = rng.choice(_SENTENCES)
    if words and rng.random() < 0.4:
        head = f"{rng.choice(_OPENERS)} {words.pop(0)}{rng.choice(('!', '.', ' 😍', ''))}"
    style = rng.choices(("space", "comma", "dots"), weights=(0.75, 0.1, 0.15))[0]
    tail = ("," if style == "comma" else " ").join(words)
    joiner = "\n.\n.\n" if style == "dots" and head else " "
    return (head + joiner + tail).strip() if tail else head.strip()
