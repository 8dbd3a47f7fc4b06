"""The default rules on HARRISON's real hashtags (57,383 Instagram posts, 997 tags); skips without the data."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import Vocabulary, build_vocab

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TAGSIGHT_DATA", REPO.parent / "shared" / "data"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harrison() -> Vocabulary:
    folder = DATA / "harrison"
    if not (folder / "tag_list.txt").is_file():
        pytest.skip(f"HARRISON not found at {folder} (set TAGSIGHT_DATA or put shared/ beside the repo)")
    from tagsight.ingest.sources import Rejected, open_source

    posts = ((p.key, p.hashtags) for p in open_source(folder, "tagsonly") if not isinstance(p, Rejected))
    return build_vocab(posts, VocabConfig(), source={"kind": "tagsonly"})


def test_counts(harrison: Vocabulary) -> None:
    assert harrison.coverage["posts"] == 57_383
    assert harrison.coverage["distinct_tags"] == 997
    assert harrison.coverage["coverage"] > 0.6


@pytest.mark.parametrize("tag, label", [
    ("beach", "beach.n.01"), ("dog", "dog.n.01"), ("dogsofinstagram", "dog.n.01"),
    ("sunset", "sunset.n.02"), ("instafood", "food.n.01"), ("selfie", "self-portrait.n.01"),
    ("cake", "cake.n.03"), ("instacake", "cake.n.03"),
])
def test_visual_tags_are_kept(harrison: Vocabulary, tag: str, label: str) -> None:
    assert harrison.labels[harrison.lookup[tag]].label == label


@pytest.mark.parametrize("tag, reason", [
    ("love", "stop_list"), ("instagood", "stop_list"), ("tbt", "stop_list"), ("nike", "stop_list"),
    ("happy", "stop_list"), ("bored", "stop_list"), ("yellow", "no_wordnet_noun"), ("white", "no_wordnet_noun"),
    ("friday", "non_visual_lexname:noun.time"), ("family", "non_visual_lexname:noun.group"),
    ("paris", "place_name"), ("japan", "place_name"), ("jesus", "person_name"), ("asian", "sensitive_category"),
])
def test_non_visual_tags_are_dropped(harrison: Vocabulary, tag: str, reason: str) -> None:
    assert tag not in harrison.lookup
    assert {d.tag: d.reason for d in harrison.drops}[tag] == reason


def test_merges(harrison: Vocabulary) -> None:
    dog = harrison.labels[harrison.lookup["dog"]]
    assert {"dog", "dogsofinstagram", "instadog", "dogstagram"} <= set(dog.members)


def test_docs_state_the_figures_this_code_produces(harrison: Vocabulary) -> None:
    doc = (REPO / "docs" / "vocabulary.md").read_text(encoding="utf-8")
    c = harrison.coverage
    assert f"**{c['distinct_tags_visual']} of the 997**" in doc
    assert f"**{len(harrison)} labels**" in doc
    assert f"**{100 * c['coverage']:.1f}%**" in doc
    for reason, v in harrison.drop_summary().items():
        assert re.search(rf"\| `{re.escape(reason)}` \| {v['tags']} \| {v['posts']:,} \|", doc), reason
