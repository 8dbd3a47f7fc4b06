"""Photos, authors and planned posts: tags drawn per post, captions, timestamps and audience signals."""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsight.datasets.audience import Audience, pick_weighted, sample_audience
from tagsight.datasets.harrison_stats import DatasetError
from tagsight.datasets.social_imagenette.calibration import TagSampler, cumulative
from tagsight.datasets.social_imagenette.concepts import Concept
from tagsight.datasets.social_imagenette.config import (IMAGE_SUFFIXES, LICENSES, NoiseModel, REGIONS, SENTENCES,
    TIME_WINDOW, WNID_PATTERN)
from tagsight.datasets.social_imagenette.hashtags import ConceptWriter, TagTruth

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- photos and authors

@dataclass(frozen=True)
class Photo:
    """One source photo and where its post's media path points."""

    wnid: str
    src: Path        # the original file
    rel: str         # media path relative to the split folder: media/<wnid>/<file>


def scan_split(imagenette_dir: Path, split: str) -> tuple[list[Photo], list[str]]:
    """Photos of a split in sorted order, and the files skipped as not images (with a warning)."""
    root = imagenette_dir / split
    if not root.is_dir():
        raise DatasetError("split_missing", f"split folder {root} not found")
    photos: list[Photo] = []
    skipped: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not WNID_PATTERN.fullmatch(folder.name):
            raise DatasetError("invalid_wnid", f"{folder} is not named by a WordNet id like n02102040")
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(folder.name, f, f"media/{folder.name}/{f.name}"))
            else:
                skipped.append(str(f.relative_to(imagenette_dir)))
    if skipped:
        log.warning("%s: skipped %d files that are not photos (%s...)", split, len(skipped), skipped[0])
    if not photos:
        raise DatasetError("empty_split", f"split folder {root} holds no photos in <wnid>/ folders")
    return photos, skipped


def author_sequence(n: int, rng: random.Random, split: str, model: NoiseModel) -> list[str]:
    """Author ids for ``n`` posts: posts per author ~ k^-alpha (Zipf-like), in shuffled order."""
    ks = range(1, model.max_posts_per_author + 1)
    cum = cumulative(k ** -model.author_alpha for k in ks)
    seq: list[str] = []
    author = 0
    while len(seq) < n:
        author += 1
        seq += [f"{split}-u{author:05d}"] * rng.choices(ks, cum_weights=cum)[0]
    seq = seq[:n]
    rng.shuffle(seq)
    return seq


# ---------------------------------------------------------------- posts

@dataclass(frozen=True)
class PostContext:
    """What planning a post needs; made by ``build_context``."""

    seed: int
    model: NoiseModel
    writer: ConceptWriter
    sampler: TagSampler
    concepts: dict[str, Concept]
    related: dict[str, frozenset[str]]   # wnid -> synsets a wrong concept's hypernym may not be


@dataclass(frozen=True)
class PlannedPost:
    """One post and its truth, before anything is written."""

    post_id: str
    author_id: str
    created_at: str
    region: str | None
    license: str | None
    audience: Audience
    photo: Photo
    concept: Concept
    wrong: Concept | None
    tags: tuple[TagTruth, ...]
    n_drawn: int
    caption: str
    likes: int

    def post_dict(self) -> dict[str, Any]:
        """The line of posts.jsonl (our schema; ``Post.from_dict`` accepts it)."""
        return {"post_id": self.post_id, "author_id": self.author_id, "created_at": self.created_at,
                "visibility": self.audience.visibility, "caption": self.caption,
                "hashtags": [t.tag for t in self.tags], "media": [{"path": self.photo.rel}],
                "consent": {"ai_training": self.audience.consent_ai_training},
                "region": self.region, "license": self.license, "likes": self.likes}

    def truth_dict(self, split: str) -> dict[str, Any]:
        """The line of truth.jsonl: true class, wrong class, and what every hashtag is."""
        return {"post_id": self.post_id, "split": split, "wnid": self.concept.wnid, "synset": self.concept.synset,
                "class_name": self.concept.name, "media": self.photo.rel,
                "original": f"{split}/{self.photo.wnid}/{self.photo.src.name}",
                "concept_present": any(t.kind == "true_concept" for t in self.tags),
                "wrong_wnid": self.wrong.wnid if self.wrong else None, "n_tags_drawn": self.n_drawn,
                "tags": [t.to_dict() for t in self.tags]}


def _write_distinct(ctx: PostContext, concept: Concept, kind: str, rng: random.Random, seen: set[str],
                    avoid: frozenset[str] = frozenset()) -> TagTruth | None:
    """A spelling of ``concept`` not already on the post (None after 10 tries)."""
    for _ in range(10):
        tag = ctx.writer.write(concept, kind, rng, avoid)
        if tag.tag.casefold() not in seen:
            seen.add(tag.tag.casefold())
            return tag
    return None


def draw_tags(rng: random.Random, concept: Concept, others: list[Concept],
              ctx: PostContext) -> tuple[list[TagTruth], Concept | None, int]:
    """The hashtags of one post (see the module docstring), the wrong concept if any, and the drawn count."""
    model, n = ctx.model, ctx.sampler.n_tags(rng)
    seen: set[str] = set()
    tags: list[TagTruth] = []
    if rng.random() < model.p_present:   # the post's first tag: nothing to collide with, so always written
        first = _write_distinct(ctx, concept, "true_concept", rng, seen)
        tags += [first] if first else []
    wrong = rng.choice(others) if others and rng.random() < model.p_wrong else None
    if wrong is not None:
        wrong_tag = _write_distinct(ctx, wrong, "wrong_concept", rng, seen, ctx.related[concept.wnid])
        tags += [wrong_tag] if wrong_tag else []
        wrong = wrong if wrong_tag else None
    if tags and tags[0].kind == "true_concept" and n > len(tags) and rng.random() < model.p_second_form:
        second = _write_distinct(ctx, concept, "true_concept", rng, seen)
        tags += [second] if second else []
    tags += [TagTruth(t, "nonvisual_noise") for t in ctx.sampler.noise(rng, max(0, n - len(tags)), seen)]
    rng.shuffle(tags)
    return tags, wrong, n


def make_caption(rng: random.Random, tags: list[str]) -> str:
    """A short neutral sentence (or none) and the hashtags inline, as people write them."""
    sentence = rng.choice(SENTENCES)
    sep = rng.choices((" ", "\n.\n.\n"), weights=(0.85, 0.15))[0]
    tail = " ".join("#" + t for t in tags)
    return (sentence + sep + tail).strip() if sentence else tail


def _timestamp(rng: random.Random) -> str:
    start, end = TIME_WINDOW
    t = start + dt.timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_post(index: int, split: str, photo: Photo, author: tuple[str, str | None, str | None],
              ctx: PostContext) -> PlannedPost:
    """Everything random about post ``index`` of ``split``, from its own seed-derived generator."""
    rng = random.Random(f"social-imagenette/{ctx.seed}/{split}/post/{index}")
    concept = ctx.concepts[photo.wnid]
    others = [c for w, c in sorted(ctx.concepts.items()) if w != photo.wnid]
    audience = sample_audience(rng)
    tags, wrong, n = draw_tags(rng, concept, others, ctx)
    if audience.optout_tag:
        tags.append(TagTruth(audience.optout_tag, "optout"))
    caption = make_caption(rng, [t.tag for t in tags])
    likes = min(100_000, int(5 * (rng.paretovariate(1.2) - 1)))
    return PlannedPost(f"{split}-{index:06d}", author[0], _timestamp(rng), author[1], author[2], audience, photo,
                       concept, wrong, tuple(tags), n, caption, likes)


def _author_profile(seed: int, split: str, author: str) -> tuple[str, str | None, str | None]:
    rng = random.Random(f"social-imagenette/{seed}/{split}/author/{author}")
    return author, pick_weighted(rng, REGIONS), pick_weighted(rng, LICENSES)


def plan_split(split: str, photos: list[Photo], ctx: PostContext, limit: int | None = None) -> list[PlannedPost]:
    """Shuffle the split's photos, assign Zipf-like authors, plan each post; ``limit`` keeps a prefix."""
    rng = random.Random(f"social-imagenette/{ctx.seed}/{split}/order")
    order = list(photos)
    rng.shuffle(order)
    authors = author_sequence(len(order), rng, split, ctx.model)[:limit]
    profiles = {a: _author_profile(ctx.seed, split, a) for a in sorted(set(authors))}
    return [plan_post(i, split, photo, profiles[a], ctx) for i, (photo, a) in enumerate(zip(order, authors))]
