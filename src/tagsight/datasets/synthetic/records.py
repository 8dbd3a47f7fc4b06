"""The plan's records: images, tags, posts and authors as drawn before any pixel is rendered."""

import random
from dataclasses import dataclass, field
from typing import Any


from tagsight.datasets.audience import Audience


# ---------------------------------------------------------------- the plan (all randomness but pixels)

@dataclass
class FeedImage:
    file: str
    concepts: tuple[str, ...]
    size: tuple[int, int]            # upright (width, height)
    background: str
    fmt: str = "jpeg"                # "jpeg" | "png"
    quality: int = 90
    gps: tuple[float, float] | None = None
    orientation: int | None = None
    duplicate_of: tuple["FeedImage", str] | None = None  # (source photo, "exact" | "near")
    corrupt: str | None = None       # "truncated" | "not_image"
    alt_text: str | None = None
    rgba: bool = False


@dataclass
class FeedTag:
    tag: str
    kind: str
    concept: str | None = None
    form: str | None = None


@dataclass
class FeedPost:
    post_id: str
    author: "FeedAuthor"
    created_at: str
    images: list[FeedImage]
    audience: Audience
    tags: list[FeedTag] = field(default_factory=list)
    caption: str = ""
    list_hashtags: bool = False
    likes: int = 0


@dataclass(frozen=True)
class FeedAuthor:
    author_id: str
    region: str | None
    license: str | None
    home: tuple[float, float]


def pick_weighted(rng: random.Random, shares: dict) -> Any:
    return rng.choices(list(shares), weights=list(shares.values()))[0]
