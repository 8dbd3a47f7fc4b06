"""The plan (all randomness but pixels): authors and their audience, images, posts, reposts, broken files, EXIF."""

from __future__ import annotations

import datetime as dt
import random

from tagsight.datasets.audience import pick_opted_out, pick_weighted, sample_audience
from tagsight.datasets.synthetic.captions import make_caption, plan_tags
from tagsight.datasets.synthetic.config import (ALT_TEXT_SHARE, ASPECTS, CITIES, CONCEPTS, EPOCH, FeedConfig,
    LICENSES, NON_SQUARE_SHARE, ORIENTATIONS, ORIENTED_SHARE, REGIONS, TWO_CONCEPT_SHARE)
from tagsight.datasets.synthetic.records import FeedAuthor, FeedImage, FeedPost


def _plan_authors(cfg: FeedConfig, rng: random.Random) -> list[FeedAuthor]:
    width = max(3, len(str(cfg.n_authors)))
    return [
        FeedAuthor(f"u{i:0{width}d}", pick_weighted(rng, REGIONS), pick_weighted(rng, LICENSES), rng.choice(CITIES))
        for i in range(1, cfg.n_authors + 1)
    ]


def _author_sequence(cfg: FeedConfig, authors: list[FeedAuthor], rng: random.Random) -> list[FeedAuthor]:
    """Who wrote each post: every author at least once (when posts allow), the rest Zipf-ish."""
    first = authors[: cfg.n_posts]
    weights = [1.0 / (1 + 0.3 * i) for i in range(len(authors))]
    rest = rng.choices(authors, weights=weights, k=cfg.n_posts - len(first))
    seq = first + rest
    rng.shuffle(seq)
    return seq


_BACKGROUNDS = ("sky", "park", "beach", "sea", "indoor", "sunset", "grass", "road")
_CONTEXT = {"ball": ("park", "grass", "beach"), "car": ("road", "park"), "tree": ("park", "grass", "sky"),
            "house": ("park", "sky", "road"), "flower": ("grass", "park", "indoor"), "dog": ("park", "grass", "indoor"),
            "cake": ("indoor",), "boat": ("sea", "sunset", "beach")}
_CONCEPT_WEIGHTS = [1.0 / (1 + 0.15 * r) for r in range(len(CONCEPTS))]  # mildly Zipfian


def _plan_image(cfg: FeedConfig, rng: random.Random, file: str) -> FeedImage:
    concepts = [rng.choices(list(CONCEPTS), weights=_CONCEPT_WEIGHTS)[0]]
    if rng.random() < TWO_CONCEPT_SHARE:
        concepts.append(rng.choice([c for c in CONCEPTS if c != concepts[0]]))
    s = cfg.image_size
    size = (s, s)
    if rng.random() < NON_SQUARE_SHARE:
        a, b = rng.choice(ASPECTS)
        size = (s * a // min(a, b), s * b // min(a, b))  # the short side stays image_size
    main = concepts[0]
    background = rng.choice(_CONTEXT[main]) if rng.random() < 0.5 else rng.choice(_BACKGROUNDS)
    quality = rng.choice((72, 80, 85, 90, 95))
    return FeedImage(file, tuple(concepts), size, background, quality=quality)


def _created_at(rng: random.Random, n: int) -> list[str]:
    """Increasing timestamps from a seed-derived start, about four posts a day."""
    t = EPOCH + dt.timedelta(days=rng.randrange(0, 730))
    out = []
    for _ in range(n):
        t += dt.timedelta(seconds=int(rng.expovariate(1 / 21600)) + 1)
        out.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


def _plan_posts(cfg: FeedConfig, rng: random.Random, authors: list[FeedAuthor]) -> list[FeedPost]:
    width = max(4, len(str(cfg.n_posts)))
    seq = _author_sequence(cfg, authors, rng)
    times = _created_at(rng, cfg.n_posts)
    posts = []
    for i, (author, created) in enumerate(zip(seq, times)):
        pid = f"p{i:0{width}d}"
        n_img = rng.choice((2, 3)) if rng.random() < cfg.multi_image_share else 1
        images = [_plan_image(cfg, rng, f"{pid}_{j}") for j in range(n_img)]
        posts.append(FeedPost(pid, author, created, images, sample_audience(rng)))
    return posts


def _plan_reposts(cfg: FeedConfig, rng: random.Random, posts: list[FeedPost]) -> set[str]:
    """Turn a p_duplicate share of posts into one-photo reposts of an earlier original; returns source files."""
    originals: list[FeedImage] = []
    sources: set[str] = set()
    for post in posts:
        if originals and rng.random() < cfg.p_duplicate:
            src = rng.choice(originals)
            kind = rng.choice(("exact", "near"))
            file = post.images[0].file
            post.images = [FeedImage(file, src.concepts, src.size, src.background, duplicate_of=(src, kind))]
            sources.add(src.file)
        else:
            originals.extend(post.images)
    return sources


def _plan_specials(cfg: FeedConfig, rng: random.Random, posts: list[FeedPost], sources: set[str]) -> None:
    """Pick the corrupt, large and PNG photos among originals that no repost copies, then GPS/orientation."""
    pool = [im for p in posts for im in p.images if im.duplicate_of is None and im.file not in sources]
    picked = rng.sample(pool, min(len(pool), cfg.n_corrupt + cfg.n_large + cfg.n_png))
    for k, im in enumerate(picked[: cfg.n_corrupt]):
        im.corrupt = ("truncated", "not_image")[k % 2]
    for im in picked[cfg.n_corrupt: cfg.n_corrupt + cfg.n_large]:
        w, h = im.size
        im.size = (640, 480) if w >= h else (480, 640)
    for k, im in enumerate(picked[cfg.n_corrupt + cfg.n_large:]):
        im.fmt, im.rgba = "png", k % 2 == 1
    for post in posts:
        for im in post.images:
            _plan_exif(cfg, rng, post.author, im)
    for im in (im for p in posts for im in p.images):
        if im.duplicate_of is None or im.duplicate_of[1] != "exact":
            continue
        src = im.duplicate_of[0]  # an exact repost carries the original's bytes, EXIF included
        im.fmt, im.quality, im.gps, im.orientation = src.fmt, src.quality, src.gps, src.orientation


def _plan_exif(cfg: FeedConfig, rng: random.Random, author: FeedAuthor, im: FeedImage) -> None:
    """GPS on a p_gps share of original JPEGs, a camera Orientation on a few (independently)."""
    if im.fmt != "jpeg" or im.duplicate_of is not None or im.corrupt is not None:
        return
    if rng.random() < cfg.p_gps:
        lat, lon = author.home
        im.gps = (round(lat + rng.uniform(-0.05, 0.05), 5), round(lon + rng.uniform(-0.05, 0.05), 5))
    if rng.random() < ORIENTED_SHARE:
        im.orientation = rng.choice(ORIENTATIONS)


def _alt_text(rng: random.Random, im: FeedImage) -> str | None:
    if rng.random() >= ALT_TEXT_SHARE:
        return None
    if rng.random() < 0.15:
        return rng.choice(("image", "photo", "IMG_0042.jpg", "no description"))
    things = " and a ".join(im.concepts)
    places = {"indoor": "indoors", "sunset": "at sunset", "sky": "against the sky"}
    place = places.get(im.background, f"on the {im.background}")
    return rng.choice((f"A {things} {place}.", f"Photo of a {things} {place}", f"my {things}"))


def plan_feed(cfg: FeedConfig) -> tuple[list[FeedPost], list[str]]:
    """The whole feed drawn from ``cfg.seed`` (posts with tags, captions and alt text) and the opted-out authors."""
    rng = random.Random(cfg.seed)
    authors = _plan_authors(cfg, rng)
    posts = _plan_posts(cfg, rng, authors)
    sources = _plan_reposts(cfg, rng, posts)
    _plan_specials(cfg, rng, posts, sources)
    for post in posts:
        post.tags = plan_tags(cfg, rng, post)
        post.caption = make_caption(rng, post.tags)
        post.list_hashtags = rng.random() < 0.5
        post.likes = min(100_000, int(5 * (rng.paretovariate(1.2) - 1)))
        for im in post.images:
            im.alt_text = _alt_text(rng, im)
    with_posts = sorted({p.author.author_id for p in posts})
    return posts, pick_opted_out(with_posts, rng)
