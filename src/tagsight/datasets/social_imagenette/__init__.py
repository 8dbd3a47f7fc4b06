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
- visibility, consent and opt-outs follow ``tagsight.datasets.audience``; authors post Zipf-like counts.

Layout written under ``out_dir``::

    noise_model.json            parameters, calibrated HARRISON statistics, classes, counts
    <split>/posts.jsonl         the source `tagsight ingest` reads
    <split>/media/<wnid>/*.JPEG the photos, hard-linked to the originals (copied when linking fails)
    <split>/optout.txt          authors who asked to be left out
    <split>/truth.jsonl         ground truth per post; the pipeline never reads it

Everything random is derived from the seed: the same arguments give byte-identical files.

The package is split by concern (``config``, ``concepts``, ``hashtags``, ``calibration``, ``posts``,
``build``); this module re-exports their public names.
"""

from __future__ import annotations

from tagsight.datasets.harrison_stats import COMPOUND_TEMPLATES
from tagsight.datasets.social_imagenette.config import (DESCRIPTIVE_TAGS, FORMS, HARRISON_DIR, HYPERNYM_TAGS,
    IMAGENETTE_DIR, IMAGE_SUFFIXES, KEYBOARD_NEIGHBOURS, LICENSES, NoiseModel, REGIONS, SENTENCES, SPLITS,
    SocialImagenetteConfig, TAG_KINDS, TIME_WINDOW, UNCHANGED_PLURALS, WNID_PATTERN, default_data_root,
    resolve_data_root)
from tagsight.datasets.social_imagenette.concepts import Concept, ancestors_of, is_binomial, load_concept, synset_of
from tagsight.datasets.audience import pick_weighted
from tagsight.datasets.social_imagenette.hashtags import (ConceptWriter, TagTruth, concept_words, lemma_words,
    pluralize, spell, typo)
from tagsight.datasets.social_imagenette.calibration import (Calibration, TagSampler, calibrate, cumulative,
    excluded_tags, exclusion_reason, related_synsets)
from tagsight.datasets.social_imagenette.posts import (Photo, PlannedPost, PostContext, author_sequence, draw_tags,
    make_caption, plan_post, plan_split, scan_split)
from tagsight.datasets.social_imagenette.build import (BuildSummary, SplitSummary, build_context,
    build_social_imagenette, link_photo, summarize_split, write_split)

__all__ = [
    "BuildSummary",
    "COMPOUND_TEMPLATES",
    "Calibration",
    "Concept",
    "ConceptWriter",
    "DESCRIPTIVE_TAGS",
    "FORMS",
    "HARRISON_DIR",
    "HYPERNYM_TAGS",
    "IMAGENETTE_DIR",
    "IMAGE_SUFFIXES",
    "KEYBOARD_NEIGHBOURS",
    "LICENSES",
    "NoiseModel",
    "Photo",
    "PlannedPost",
    "PostContext",
    "REGIONS",
    "SENTENCES",
    "SPLITS",
    "SocialImagenetteConfig",
    "SplitSummary",
    "TAG_KINDS",
    "TIME_WINDOW",
    "TagSampler",
    "TagTruth",
    "UNCHANGED_PLURALS",
    "WNID_PATTERN",
    "ancestors_of",
    "author_sequence",
    "build_context",
    "build_social_imagenette",
    "calibrate",
    "concept_words",
    "cumulative",
    "default_data_root",
    "draw_tags",
    "excluded_tags",
    "exclusion_reason",
    "is_binomial",
    "lemma_words",
    "link_photo",
    "load_concept",
    "make_caption",
    "pick_weighted",
    "plan_post",
    "plan_split",
    "pluralize",
    "related_synsets",
    "resolve_data_root",
    "scan_split",
    "spell",
    "summarize_split",
    "synset_of",
    "typo",
    "write_split",
]
