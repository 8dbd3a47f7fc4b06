"""A small synthetic social feed: drawn photos of 8 concepts, hashtags as people write them, ground truth.

``generate_feed`` writes a folder that looks like a real export in our JSONL schema, with the
mess real feeds carry (wrong and non-visual tags, odd spellings, invisible characters, GPS EXIF,
camera-rotated photos, reposts, broken files, restricted and opted-out posts), plus a
``truth.jsonl`` that the pipeline never reads and the tests and benchmarks measure against::

    out_dir/posts.jsonl    one post per line (``hashtags`` present on about half, else parsed from caption)
    out_dir/media/*.jpg    photos (and a couple of .png); ``FeedConfig.n_corrupt`` of them are broken
    out_dir/optout.txt     author ids who asked to be left out, one per line, ``#`` comments
    out_dir/truth.jsonl    per post: concepts shown per image, the kind of every hashtag, audience facts

Each concept is a distinct drawable object with its own shape and colours, drawn at a random
position, scale and rotation on varied backgrounds with noise and mild blur: learnable by a tiny
CNN at 64 px, not trivial. Everything is derived from ``FeedConfig.seed``: the same config gives
byte-identical files.

The package is split by concern (``config``, ``records``, ``plan``, ``captions``, ``drawing``, ``unseen``,
``encoding``, ``writing``); this module re-exports their public names.
"""

from __future__ import annotations

from tagsight.datasets.synthetic.config import (ALT_TEXT_SHARE, ASPECTS, CITIES, CONCEPTS, EMOJI, EPOCH,
    FORM_WEIGHTS, FeedConfig, FeedSummary, LICENSES, MEDIA_NAME, NONVISUAL_TAGS, NON_SQUARE_SHARE, NOT_AN_IMAGE,
    ORIENTATIONS, ORIENTED_SHARE, REGIONS, SPELLINGS, STORE_TRANSPOSE, TAG_KINDS, TWO_CONCEPT_SHARE, WRONG_FORMS,
    ZERO_WIDTH)
from tagsight.datasets.audience import pick_weighted
from tagsight.datasets.synthetic.records import FeedAuthor, FeedImage, FeedPost, FeedTag
from tagsight.datasets.synthetic.plan import plan_feed
from tagsight.datasets.synthetic.captions import make_caption, plan_tags
from tagsight.datasets.synthetic.drawing import (SCENES, box, draw_background, jitter, pick_option, points,
    render_photo)
from tagsight.datasets.synthetic.unseen import UNSEEN_KINDS, render_unseen, write_unseen
from tagsight.datasets.synthetic.encoding import media_filename, render_media
from tagsight.datasets.synthetic.writing import generate_feed

__all__ = [
    "ALT_TEXT_SHARE",
    "ASPECTS",
    "CITIES",
    "CONCEPTS",
    "EMOJI",
    "EPOCH",
    "FORM_WEIGHTS",
    "FeedAuthor",
    "FeedConfig",
    "FeedImage",
    "FeedPost",
    "FeedSummary",
    "FeedTag",
    "LICENSES",
    "MEDIA_NAME",
    "NONVISUAL_TAGS",
    "NON_SQUARE_SHARE",
    "NOT_AN_IMAGE",
    "ORIENTATIONS",
    "ORIENTED_SHARE",
    "REGIONS",
    "SCENES",
    "SPELLINGS",
    "STORE_TRANSPOSE",
    "TAG_KINDS",
    "TWO_CONCEPT_SHARE",
    "UNSEEN_KINDS",
    "WRONG_FORMS",
    "ZERO_WIDTH",
    "box",
    "draw_background",
    "generate_feed",
    "jitter",
    "make_caption",
    "media_filename",
    "pick_option",
    "pick_weighted",
    "plan_feed",
    "plan_tags",
    "points",
    "render_media",
    "render_photo",
    "render_unseen",
    "write_unseen",
]
