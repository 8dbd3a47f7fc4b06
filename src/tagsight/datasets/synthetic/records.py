"""The plan's records: images, tags, posts and authors as drawn before any pixel is rendered."""

from __future__ import annotations

from dataclasses import dataclass, field

from tagsight.datasets.audience import Audience



# ---------------------------------------------------------------- the records the plan draws (all randomness but pixels)

@dataclass
class FeedImage:
    """One planned image: its concepts, size, format and the faults it will carry (copy, corruption, EXIF)."""

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
    """One planned hashtag and its ground truth: its kind, the concept it names and the form it is written in."""

    tag: str
    kind: str
    concept: str | None = None
    form: str | None = None


@dataclass
class FeedPost:
    """One planned post: author, time, images, audience, hashtags and caption."""

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
    """One author of the feed: region, licence and home coordinates (for GPS EXIF)."""

    author_id: str
    region: str | None
    license: str | None
    home: tuple[float, float]
