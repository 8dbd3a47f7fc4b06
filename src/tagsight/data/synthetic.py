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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from tagsight.data.audience import Audience, pick_opted_out, sample_audience

log = logging.getLogger(__name__)

# concept -> WordNet 3.0 noun synset (checked with tagsight.tags.wordnet.load_wordnet()).
CONCEPTS: dict[str, str] = {
    "ball": "ball.n.01",
    "car": "car.n.01",
    "tree": "tree.n.01",
    "house": "house.n.01",
    "flower": "flower.n.01",
    "dog": "dog.n.01",
    "cake": "cake.n.03",
    "boat": "boat.n.01",
}

# How people spell each concept, by form. "hypernym" tags are true but broad (#vehicle for a car).
SPELLINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "ball": {
        "base": ("ball",), "plural": ("balls",), "synonym": ("football", "soccerball", "basketball"),
        "compound": ("ballislife", "footballtime"), "camelcase": ("BallIsLife", "SoccerBall"),
        "misspelling": ("bal", "footbal"), "hypernym": ("sportsequipment",),
    },
    "car": {
        "base": ("car",), "plural": ("cars",), "synonym": ("auto", "automobile", "motorcar"),
        "compound": ("carsofinstagram", "carlife", "carporn"), "camelcase": ("CarsOfInstagram", "CarLife"),
        "misspelling": ("carr", "automobil"), "hypernym": ("vehicle",),
    },
    "tree": {
        "base": ("tree",), "plural": ("trees",), "synonym": ("oak", "pine", "oaktree"),
        "compound": ("treesofinstagram", "treehugger"), "camelcase": ("TreeHugger", "TreesOfInstagram"),
        "misspelling": ("tre", "treee"), "hypernym": ("plant",),
    },
    "house": {
        "base": ("house",), "plural": ("houses",), "synonym": ("home", "cottage", "bungalow"),
        "compound": ("homesweethome", "dreamhouse"), "camelcase": ("HomeSweetHome", "HouseGoals"),
        "misspelling": ("hous", "hosue"), "hypernym": ("building",),
    },
    "flower": {
        "base": ("flower",), "plural": ("flowers",), "synonym": ("bloom", "blossom", "rose", "tulip"),
        "compound": ("flowerpower", "flowersofinstagram"), "camelcase": ("FlowerPower", "FlowersOfInstagram"),
        "misspelling": ("flowr", "flwoer"), "hypernym": ("plant",),
    },
    "dog": {
        "base": ("dog",), "plural": ("dogs", "puppies"), "synonym": ("puppy", "doggo", "pup", "hound"),
        "compound": ("dogsofinstagram", "doglover"), "camelcase": ("DogsOfInstagram", "DogLife"),
        "misspelling": ("dgo", "doggie"), "hypernym": ("animal", "pet"),
    },
    "cake": {
        "base": ("cake",), "plural": ("cakes",), "synonym": ("gateau", "torte", "birthdaycake"),
        "compound": ("cakesofinstagram", "cakeday"), "camelcase": ("BirthdayCake", "CakeDay"),
        "misspelling": ("ckae", "cak"), "hypernym": ("dessert",),
    },
    "boat": {
        "base": ("boat",), "plural": ("boats",), "synonym": ("sailboat", "yacht", "dinghy"),
        "compound": ("boatlife", "sailingboat"), "camelcase": ("BoatLife", "SailBoat"),
        "misspelling": ("baot", "boaat"), "hypernym": ("vessel", "watercraft"),
    },
}
FORM_WEIGHTS = {"base": 0.32, "plural": 0.15, "synonym": 0.16, "compound": 0.15, "camelcase": 0.09,
                "misspelling": 0.04, "hypernym": 0.09}
WRONG_FORMS = ("base", "plural", "synonym", "compound", "camelcase")  # never a hypernym: #plant may be true
NONVISUAL_TAGS = ("love", "tbt", "instagood", "photooftheday", "happy", "bored", "mood", "weekend", "follow",
                  "followme", "picoftheday", "nofilter", "blessed", "vibes", "ThrowbackThursday", "InstaGood",
                  "like4like", "goodvibes", "mondaymood", "instadaily")
TAG_KINDS = ("relevant", "wrong", "nonvisual", "optout")
EMOJI = ("😍", "🐶", "🌸", "✨", "❤️", "🔥", "☀️", "🎂", "🚗", "⛵")
ZERO_WIDTH = ("\u200b", "\u200d", "\u2060")
REGIONS = {"US": 0.22, "GB": 0.08, "DE": 0.10, "FR": 0.08, "NL": 0.05, "ES": 0.05, "IT": 0.05, "BR": 0.09,
           "JP": 0.07, "IN": 0.09, "CA": 0.04, None: 0.08}
LICENSES = {None: 0.6, "CC-BY-4.0": 0.15, "CC-BY-SA-4.0": 0.1, "CC0-1.0": 0.08, "CC-BY-NC-4.0": 0.07}
CITIES = ((52.37, 4.90), (48.86, 2.35), (40.71, -74.01), (51.51, -0.13), (35.68, 139.69), (-22.91, -43.17),
          (52.52, 13.40), (41.39, 2.17), (19.08, 72.88), (43.65, -79.38))
ORIENTATIONS = (3, 6, 8)
# Orientation tag -> transpose that stores an upright photo the way a rotated camera wrote it
# (the inverse of what ImageOps.exif_transpose applies).
_STORE_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
ASPECTS = ((4, 3), (3, 4), (16, 9), (9, 16))
NON_SQUARE_SHARE = 0.12
TWO_CONCEPT_SHARE = 0.15
ORIENTED_SHARE = 0.08  # of original JPEGs
ALT_TEXT_SHARE = 0.3
EPOCH = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
NOT_AN_IMAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
_MEDIA_NAME = re.compile(r"p\d+_\d+\.(jpg|png)")


@dataclass(frozen=True)
class FeedConfig:
    """What the synthetic feed holds. Shares are per post unless said otherwise."""

    n_posts: int = 400
    n_authors: int = 40
    image_size: int = 96          # photos drawn at this size (some posts use other sizes/aspect ratios)
    seed: int = 0
    p_gps: float = 0.3            # share of JPEGs carrying GPS EXIF
    p_wrong: float = 0.15         # a wrong concept tag is added
    p_nonvisual: float = 0.8      # at least one non-visual tag
    p_duplicate: float = 0.02     # reposts: exact copy or re-encoded/resized near copy of an earlier photo
    n_corrupt: int = 2            # files that are truncated / not images
    multi_image_share: float = 0.1  # posts with 2-3 photos
    n_large: int = 2              # photos drawn at 640 px on the long side
    n_png: int = 2                # photos saved as PNG (one of them RGBA)

    def __post_init__(self) -> None:
        for name in ("n_posts", "n_authors", "image_size", "seed", "n_corrupt", "n_large", "n_png"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.n_posts < 1 or self.n_authors < 1:
            raise ValueError(f"n_posts and n_authors must be >= 1, got {self.n_posts} and {self.n_authors}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be in [16, 1024] pixels, got {self.image_size}")
        for name in ("p_gps", "p_wrong", "p_nonvisual", "p_duplicate", "multi_image_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        special = self.n_corrupt + self.n_large + self.n_png
        if min(self.n_corrupt, self.n_large, self.n_png) < 0 or special > self.n_posts:
            raise ValueError(
                f"n_corrupt, n_large and n_png must be >= 0 and together at most n_posts ({self.n_posts}), "
                f"got {self.n_corrupt}, {self.n_large}, {self.n_png}"
            )


@dataclass(frozen=True)
class FeedSummary:
    """Counts of what ``generate_feed`` wrote; each one can be checked against the files."""

    n_posts: int
    n_authors: int
    n_images: int
    n_jpeg: int
    n_png: int
    n_gps: int
    n_oriented: int
    n_large: int
    n_non_square: int
    n_multi_image_posts: int
    n_two_concept_images: int
    n_exact_duplicates: int
    n_near_duplicates: int
    n_corrupt: int
    n_hashtags_listed: int
    n_alt_text: int
    n_opted_out_authors: int
    n_posts_by_opted_out: int
    n_optout_tag_posts: int
    n_public: int
    n_tags: int
    tag_kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- the plan (all randomness but pixels)

@dataclass
class _Image:
    file: str
    concepts: tuple[str, ...]
    size: tuple[int, int]            # upright (width, height)
    background: str
    fmt: str = "jpeg"                # "jpeg" | "png"
    quality: int = 90
    gps: tuple[float, float] | None = None
    orientation: int | None = None
    duplicate_of: tuple["_Image", str] | None = None  # (source photo, "exact" | "near")
    corrupt: str | None = None       # "truncated" | "not_image"
    alt_text: str | None = None
    rgba: bool = False


@dataclass
class _Tag:
    tag: str
    kind: str
    concept: str | None = None
    form: str | None = None


@dataclass
class _Post:
    post_id: str
    author: "_Author"
    created_at: str
    images: list[_Image]
    audience: Audience
    tags: list[_Tag] = field(default_factory=list)
    caption: str = ""
    list_hashtags: bool = False
    likes: int = 0


@dataclass(frozen=True)
class _Author:
    author_id: str
    region: str | None
    license: str | None
    home: tuple[float, float]


def _weighted(rng: random.Random, shares: dict) -> Any:
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def _plan_authors(cfg: FeedConfig, rng: random.Random) -> list[_Author]:
    width = max(3, len(str(cfg.n_authors)))
    return [
        _Author(f"u{i:0{width}d}", _weighted(rng, REGIONS), _weighted(rng, LICENSES), rng.choice(CITIES))
        for i in range(1, cfg.n_authors + 1)
    ]


def _author_sequence(cfg: FeedConfig, authors: list[_Author], rng: random.Random) -> list[_Author]:
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


def _plan_image(cfg: FeedConfig, rng: random.Random, file: str) -> _Image:
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
    return _Image(file, tuple(concepts), size, background, quality=quality)


def _created_at(rng: random.Random, n: int) -> list[str]:
    """Increasing timestamps from a seed-derived start, about four posts a day."""
    t = EPOCH + dt.timedelta(days=rng.randrange(0, 730))
    out = []
    for _ in range(n):
        t += dt.timedelta(seconds=int(rng.expovariate(1 / 21600)) + 1)
        out.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


def _plan_posts(cfg: FeedConfig, rng: random.Random, authors: list[_Author]) -> list[_Post]:
    width = max(4, len(str(cfg.n_posts)))
    seq = _author_sequence(cfg, authors, rng)
    times = _created_at(rng, cfg.n_posts)
    posts = []
    for i, (author, created) in enumerate(zip(seq, times)):
        pid = f"p{i:0{width}d}"
        n_img = rng.choice((2, 3)) if rng.random() < cfg.multi_image_share else 1
        images = [_plan_image(cfg, rng, f"{pid}_{j}") for j in range(n_img)]
        posts.append(_Post(pid, author, created, images, sample_audience(rng)))
    return posts


def _plan_reposts(cfg: FeedConfig, rng: random.Random, posts: list[_Post]) -> set[str]:
    """Turn a p_duplicate share of posts into one-photo reposts of an earlier original; returns source files."""
    originals: list[_Image] = []
    sources: set[str] = set()
    for post in posts:
        if originals and rng.random() < cfg.p_duplicate:
            src = rng.choice(originals)
            kind = rng.choice(("exact", "near"))
            file = post.images[0].file
            post.images = [_Image(file, src.concepts, src.size, src.background, duplicate_of=(src, kind))]
            sources.add(src.file)
        else:
            originals.extend(post.images)
    return sources


def _plan_specials(cfg: FeedConfig, rng: random.Random, posts: list[_Post], sources: set[str]) -> None:
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
    for im in (im for p in posts for im in p.images if im.duplicate_of and im.duplicate_of[1] == "exact"):
        src = im.duplicate_of[0]  # an exact repost carries the original's bytes, EXIF included
        im.fmt, im.quality, im.gps, im.orientation = src.fmt, src.quality, src.gps, src.orientation


def _plan_exif(cfg: FeedConfig, rng: random.Random, author: _Author, im: _Image) -> None:
    """GPS on a p_gps share of original JPEGs, a camera Orientation on a few (independently)."""
    if im.fmt != "jpeg" or im.duplicate_of is not None or im.corrupt is not None:
        return
    if rng.random() < cfg.p_gps:
        lat, lon = author.home
        im.gps = (round(lat + rng.uniform(-0.05, 0.05), 5), round(lon + rng.uniform(-0.05, 0.05), 5))
    if rng.random() < ORIENTED_SHARE:
        im.orientation = rng.choice(ORIENTATIONS)


def _alt_text(rng: random.Random, im: _Image) -> str | None:
    if rng.random() >= ALT_TEXT_SHARE:
        return None
    if rng.random() < 0.15:
        return rng.choice(("image", "photo", "IMG_0042.jpg", "no description"))
    things = " and a ".join(im.concepts)
    places = {"indoor": "indoors", "sunset": "at sunset", "sky": "against the sky"}
    place = places.get(im.background, f"on the {im.background}")
    return rng.choice((f"A {things} {place}.", f"Photo of a {things} {place}", f"my {things}"))


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


def _relevant_tags(rng: random.Random, shown: list[str]) -> list[_Tag]:
    """The main concept always gets one or two spellings; other shown concepts usually do."""
    tags: list[_Tag] = []
    for k, concept in enumerate(shown):
        if k == 0 or rng.random() < 0.6:
            n = 1 if rng.random() < 0.55 else 2
            spellings = dict.fromkeys(_spelling(rng, concept) for _ in range(n))  # ordered, no repeats
            tags.extend(_Tag(t, "relevant", concept, f) for t, f in spellings)
    return tags


def _plan_tags(cfg: FeedConfig, rng: random.Random, post: _Post) -> list[_Tag]:
    """Relevant, wrong, non-visual and opt-out hashtags of one post, decorated now and then."""
    shown = list(dict.fromkeys(c for im in post.images for c in im.concepts))
    tags = _relevant_tags(rng, shown)
    if rng.random() < cfg.p_wrong:
        concept = rng.choice([c for c in CONCEPTS if c not in shown])
        spelling, form = _spelling(rng, concept, WRONG_FORMS)
        tags.append(_Tag(spelling, "wrong", concept, form))
    if rng.random() < cfg.p_nonvisual:
        tags.extend(_Tag(t, "nonvisual") for t in rng.sample(NONVISUAL_TAGS, rng.choice((1, 1, 2, 3))))
    rest = tags[1:]
    rng.shuffle(rest)
    tags = tags[:1] + rest
    if post.audience.optout_tag:
        tags.append(_Tag(post.audience.optout_tag, "optout"))
    for t in tags:
        t.tag = _decorate(rng, t.tag)
    return tags


_OPENERS = ("Finally got this", "Look at this", "Can't stop looking at this", "Weekend with the",
            "Throwback to that", "Just me and my", "New", "Best day ever with the", "Guess who", "Today's")
_SENTENCES = ("What a day!", "So happy right now.", "Sunday vibes.", "Couldn't resist.", "Had to share this one.",
              "Not bad for a phone pic.", "", "Loving it ☀️", "Best weekend.", "Good times with friends.")


def _caption(rng: random.Random, tags: list[_Tag]) -> str:
    """Hashtags inline as people write them: one in a sentence, the rest at the end, various separators."""
    words = ["#" + t.tag for t in tags]
    head = rng.choice(_SENTENCES)
    if words and rng.random() < 0.4:
        head = f"{rng.choice(_OPENERS)} {words.pop(0)}{rng.choice(('!', '.', ' 😍', ''))}"
    style = rng.choices(("space", "comma", "dots"), weights=(0.75, 0.1, 0.15))[0]
    tail = ("," if style == "comma" else " ").join(words)
    joiner = "\n.\n.\n" if style == "dots" and head else " "
    return (head + joiner + tail).strip() if tail else head.strip()


def _plan(cfg: FeedConfig) -> tuple[list[_Post], list[str]]:
    rng = random.Random(cfg.seed)
    authors = _plan_authors(cfg, rng)
    posts = _plan_posts(cfg, rng, authors)
    sources = _plan_reposts(cfg, rng, posts)
    _plan_specials(cfg, rng, posts, sources)
    for post in posts:
        post.tags = _plan_tags(cfg, rng, post)
        post.caption = _caption(rng, post.tags)
        post.list_hashtags = rng.random() < 0.5
        post.likes = min(100_000, int(5 * (rng.paretovariate(1.2) - 1)))
        for im in post.images:
            im.alt_text = _alt_text(rng, im)
    with_posts = sorted({p.author.author_id for p in posts})
    return posts, pick_opted_out(with_posts, rng)


# ---------------------------------------------------------------- drawing

_RGB = tuple[int, int, int]


def _jit(g: np.random.Generator, rgb: _RGB, amount: int = 22) -> _RGB:
    return tuple(int(v) for v in np.clip(np.array(rgb) + g.integers(-amount, amount + 1, 3), 0, 255))


def _pick(g: np.random.Generator, options: tuple) -> Any:
    return options[int(g.integers(len(options)))]


def _box(s: int, x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0 * s, y0 * s, x1 * s, y1 * s]


def _pts(s: int, *xy: tuple[float, float]) -> list[tuple[float, float]]:
    return [(x * s, y * s) for x, y in xy]


def _draw_ball(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    style = int(g.integers(3))
    styles = (((240, 240, 240), (20, 20, 20)), ((230, 110, 30), (30, 20, 10)), ((210, 30, 40), (250, 250, 250)))
    fill, line = styles[style]  # football, basketball, red ball
    d.ellipse(_box(s, 0.05, 0.05, 0.95, 0.95), fill=_jit(g, fill, 12), outline=line, width=max(1, s // 40))
    w = max(1, s // 30)
    if style == 0:
        d.regular_polygon((s / 2, s / 2, s * 0.16), 5, fill=line)
        for a in range(5):
            ang = np.deg2rad(90 + 72 * a)
            d.regular_polygon((s / 2 + np.cos(ang) * s * 0.36, s / 2 - np.sin(ang) * s * 0.36, s * 0.09), 5, fill=line)
    else:
        d.line(_pts(s, (0.5, 0.05), (0.5, 0.95)), fill=line, width=w)
        d.line(_pts(s, (0.05, 0.5), (0.95, 0.5)), fill=line, width=w)
        d.arc(_box(s, -0.35, 0.1, 0.35, 0.9), -60, 60, fill=line, width=w)
        d.arc(_box(s, 0.65, 0.1, 1.35, 0.9), 120, 240, fill=line, width=w)


def _draw_car(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    body = _jit(g, _pick(g, ((200, 30, 30), (30, 60, 190), (235, 200, 30), (180, 180, 190), (25, 25, 30))))
    d.polygon(_pts(s, (0.27, 0.47), (0.35, 0.27), (0.66, 0.27), (0.76, 0.47)), fill=body)
    d.polygon(_pts(s, (0.33, 0.46), (0.38, 0.31), (0.49, 0.31), (0.49, 0.46)), fill=(170, 210, 235))
    d.polygon(_pts(s, (0.52, 0.46), (0.52, 0.31), (0.64, 0.31), (0.71, 0.46)), fill=(170, 210, 235))
    d.rounded_rectangle(_box(s, 0.04, 0.45, 0.96, 0.72), radius=s * 0.06, fill=body)
    d.ellipse(_box(s, 0.88, 0.5, 0.95, 0.56), fill=(255, 240, 150))
    for cx in (0.26, 0.74):
        d.ellipse(_box(s, cx - 0.12, 0.6, cx + 0.12, 0.84), fill=(15, 15, 15))
        d.ellipse(_box(s, cx - 0.05, 0.67, cx + 0.05, 0.77), fill=(160, 160, 165))


def _draw_tree(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.rectangle(_box(s, 0.44, 0.5, 0.56, 0.97), fill=_jit(g, (100, 65, 30)))
    if g.random() < 0.3:
        green = _jit(g, (20, 90, 40))
        for y0, y1, hw in (0.05, 0.35, 0.2), (0.2, 0.52, 0.3), (0.35, 0.7, 0.4):
            d.polygon(_pts(s, (0.5, y0), (0.5 - hw, y1), (0.5 + hw, y1)), fill=green)
        return
    crown = (40, 130, 40) if g.random() < 0.8 else (210, 110, 30)
    for cx, cy, r in ((0.5, 0.3, 0.24), (0.32, 0.42, 0.18), (0.68, 0.42, 0.18), (0.5, 0.48, 0.2)):
        d.ellipse(_box(s, cx - r, cy - r, cx + r, cy + r), fill=_jit(g, crown, 18))


def _draw_house(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    wall = _jit(g, _pick(g, ((235, 220, 190), (245, 245, 240), (170, 70, 50), (240, 220, 120))))
    roof = _jit(g, _pick(g, ((140, 30, 30), (90, 60, 40), (80, 80, 90))))
    d.rectangle(_box(s, 0.66, 0.14, 0.76, 0.36), fill=roof)
    d.rectangle(_box(s, 0.18, 0.45, 0.82, 0.95), fill=wall)
    d.polygon(_pts(s, (0.1, 0.47), (0.5, 0.1), (0.9, 0.47)), fill=roof)
    d.rectangle(_box(s, 0.44, 0.68, 0.57, 0.95), fill=(100, 60, 30))
    for x in (0.24, 0.63):
        frame = max(1, s // 50)
        d.rectangle(_box(s, x, 0.55, x + 0.13, 0.68), fill=(160, 200, 230), outline=(250, 250, 250), width=frame)


def _draw_flower(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.line(_pts(s, (0.5, 0.45), (0.5, 0.98)), fill=(40, 130, 40), width=max(2, s // 20))
    d.ellipse(_box(s, 0.5, 0.68, 0.72, 0.78), fill=(50, 150, 50))
    petal = _jit(g, _pick(g, ((235, 90, 160), (220, 30, 50), (150, 60, 200), (250, 220, 40), (250, 250, 250))))
    n = int(g.integers(5, 9))
    for k in range(n):
        a = 2 * np.pi * k / n
        cx, cy = 0.5 + 0.2 * np.cos(a), 0.38 + 0.2 * np.sin(a)
        d.ellipse(_box(s, cx - 0.14, cy - 0.14, cx + 0.14, cy + 0.14), fill=petal, outline=_jit(g, petal, 30))
    d.ellipse(_box(s, 0.39, 0.27, 0.61, 0.49), fill=_jit(g, _pick(g, ((250, 200, 30), (110, 70, 30)))))


def _draw_dog(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    fur = _jit(g, _pick(g, ((140, 90, 45), (30, 25, 20), (215, 170, 90), (235, 230, 220), (120, 120, 120))))
    dark = tuple(max(0, v - 60) for v in fur)
    d.line(_pts(s, (0.22, 0.5), (0.08, 0.3)), fill=fur, width=max(2, s // 22))
    for x in (0.24, 0.34, 0.58, 0.68):
        d.rectangle(_box(s, x, 0.55, x + 0.07, 0.9), fill=fur)
    d.ellipse(_box(s, 0.18, 0.38, 0.78, 0.68), fill=fur)
    d.ellipse(_box(s, 0.64, 0.18, 0.92, 0.46), fill=fur)
    d.ellipse(_box(s, 0.82, 0.32, 0.99, 0.44), fill=tuple(min(255, v + 30) for v in fur))
    d.ellipse(_box(s, 0.94, 0.33, 0.99, 0.38), fill=(10, 10, 10))
    d.ellipse(_box(s, 0.61, 0.2, 0.7, 0.44), fill=dark)
    d.ellipse(_box(s, 0.76, 0.25, 0.8, 0.29), fill=(10, 10, 10))


def _draw_cake(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.ellipse(_box(s, 0.05, 0.84, 0.95, 0.96), fill=_jit(g, (225, 225, 230), 10))
    colours = ((245, 170, 190), (250, 245, 235), (110, 60, 35), (245, 215, 120))
    layers = int(g.integers(2, 4))
    for k in range(layers):
        hw, y1 = 0.4 - 0.08 * k, 0.9 - 0.18 * k
        d.rectangle(_box(s, 0.5 - hw, y1 - 0.18, 0.5 + hw, y1), fill=_jit(g, _pick(g, colours), 12))
        d.rectangle(_box(s, 0.5 - hw, y1 - 0.18, 0.5 + hw, y1 - 0.14), fill=(252, 250, 250))
    top, spread = 0.9 - 0.18 * layers, 0.38 - 0.08 * (layers - 1)
    for x in np.linspace(0.5 - spread, 0.5 + spread, int(g.integers(3, 6))):
        wax = _jit(g, _pick(g, ((60, 120, 220), (230, 60, 90), (250, 250, 250))), 15)
        d.rectangle(_box(s, x - 0.015, top - 0.14, x + 0.015, top), fill=wax)
        d.ellipse(_box(s, x - 0.025, top - 0.21, x + 0.025, top - 0.14), fill=(255, 190, 40))


def _draw_boat(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    hull = _jit(g, _pick(g, ((90, 55, 30), (25, 40, 90), (245, 245, 245), (190, 40, 40))))
    sail = _jit(g, _pick(g, ((250, 250, 245), (250, 250, 245), (220, 60, 50), (250, 210, 60))), 8)
    d.line(_pts(s, (0.5, 0.08), (0.5, 0.68)), fill=(80, 55, 35), width=max(2, s // 40))
    d.polygon(_pts(s, (0.53, 0.1), (0.53, 0.64), (0.88, 0.64)), fill=sail)
    d.polygon(_pts(s, (0.47, 0.18), (0.47, 0.64), (0.2, 0.64)), fill=sail)
    d.polygon(_pts(s, (0.04, 0.66), (0.96, 0.66), (0.8, 0.86), (0.2, 0.86)), fill=hull)
    d.line(_pts(s, (0.08, 0.7), (0.92, 0.7)), fill=(250, 250, 250), width=max(1, s // 60))


_DRAW: dict[str, Callable[[ImageDraw.ImageDraw, int, np.random.Generator], None]] = {
    "ball": _draw_ball, "car": _draw_car, "tree": _draw_tree, "house": _draw_house,
    "flower": _draw_flower, "dog": _draw_dog, "cake": _draw_cake, "boat": _draw_boat,
}
_SCENES: dict[str, tuple[_RGB, _RGB, _RGB | None]] = {  # top, bottom, ground below a horizon (or None)
    "sky": ((90, 150, 230), (200, 225, 250), None),
    "park": ((110, 170, 235), (200, 225, 245), (70, 150, 60)),
    "beach": ((100, 165, 235), (210, 230, 250), (225, 205, 150)),
    "sea": ((120, 175, 235), (215, 230, 250), (30, 90, 150)),
    "indoor": ((205, 195, 180), (170, 160, 145), (120, 90, 65)),
    "sunset": ((250, 150, 60), (150, 70, 120), (40, 40, 80)),
    "grass": ((90, 160, 70), (50, 120, 40), None),
    "road": ((140, 185, 235), (215, 230, 250), (95, 95, 100)),
}


def _background(g: np.random.Generator, scene: str, w: int, h: int) -> np.ndarray:
    """A vertical gradient, an optional horizon with ground below, low- and high-frequency noise."""
    top, bottom, ground = _SCENES[scene]
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (1 - t) * np.array(_jit(g, top, 18)) + t * np.array(_jit(g, bottom, 18))
    img = np.broadcast_to(img, (h, w, 3)).copy()
    if ground is not None:
        horizon = int(h * g.uniform(0.45, 0.75))
        img[horizon:] = np.array(_jit(g, ground, 18)) * np.linspace(0.9, 1.1, h - horizon)[:, None, None]
    coarse = g.normal(0, g.uniform(6, 18), (4, 4, 3)).astype(np.float32)
    low = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((w, h), Image.BILINEAR)) for c in range(3)], -1)
    return img + low


def _object_layer(g: np.random.Generator, concept: str, size: int) -> Image.Image:
    """One object drawn at 2x on a transparent layer, downsampled, flipped and rotated at random."""
    big = Image.new("RGBA", (2 * size, 2 * size), (0, 0, 0, 0))
    _DRAW[concept](ImageDraw.Draw(big), 2 * size, g)
    layer = big.resize((size, size), Image.LANCZOS)
    if g.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = float(g.uniform(-180, 180) if concept == "ball" else g.uniform(-20, 20))
    return layer.rotate(angle, resample=Image.BILINEAR, expand=True)


def _place(g: np.random.Generator, canvas: Image.Image, concepts: tuple[str, ...]) -> None:
    w, h = canvas.size
    n = len(concepts)
    for k, concept in enumerate(concepts):
        scale = g.uniform(0.55, 0.85) if n == 1 else g.uniform(0.4, 0.55)
        layer = _object_layer(g, concept, max(8, int(scale * min(w, h))))
        lw, lh = layer.size
        slot_w = w / n
        cx = slot_w * k + g.uniform(0.35, 0.65) * slot_w
        cy = g.uniform(0.4, 0.6) * h
        canvas.paste(layer, (int(cx - lw / 2), int(cy - lh / 2)), layer)


def render_photo(concepts: tuple[str, ...], size: tuple[int, int], g: np.random.Generator,
                 background: str = "park") -> Image.Image:
    """Draw one upright RGB photo of ``concepts`` (names from CONCEPTS) at ``size`` (width, height)."""
    unknown = [c for c in concepts if c not in CONCEPTS]
    if unknown or background not in _SCENES:
        raise ValueError(f"unknown concept(s) {unknown} or background {background!r}; "
                         f"concepts are {sorted(CONCEPTS)}, backgrounds {sorted(_SCENES)}")
    w, h = size
    canvas = Image.fromarray(np.clip(_background(g, background, w, h), 0, 255).astype(np.uint8))
    _place(g, canvas, concepts)
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(g.uniform(0.2, 0.9)) * max(w, h) / 96))
    noisy = np.asarray(canvas, dtype=np.float32) + g.normal(0, g.uniform(2, 7), (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- photos of nothing in the vocabulary

UNSEEN_KINDS = ("scene", "noise", "stripes", "wallpaper", "document", "screenshot")


def _unseen_noise(g: np.random.Generator, w: int, h: int) -> Image.Image:
    coarse = g.uniform(0, 255, (int(g.integers(3, 12)), int(g.integers(3, 12)), 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.float32)
    return Image.fromarray(np.clip(base + g.normal(0, g.uniform(10, 40), (h, w, 3)), 0, 255).astype(np.uint8))


def _unseen_stripes(g: np.random.Generator, w: int, h: int) -> Image.Image:
    period, angle = float(g.uniform(4, 24)), float(g.uniform(0, np.pi))
    y, x = np.mgrid[0:h, 0:w]
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    if g.random() < 0.5:  # a checkerboard
        wave = np.sign(wave) * np.sign(np.sin((-x * np.sin(angle) + y * np.cos(angle)) * 2 * np.pi / period))
    a, b = np.array(_jit(g, (230, 220, 200), 60)), np.array(_jit(g, (60, 70, 90), 60))
    t = (wave[..., None] + 1) / 2
    return Image.fromarray((t * a + (1 - t) * b).astype(np.uint8))


def _unseen_wallpaper(g: np.random.Generator, w: int, h: int) -> Image.Image:
    """A tiled motif: small ovals with dots, the kind of pattern face detectors mistake for crowds."""
    tile = int(g.integers(10, 24))
    motif = Image.new("RGB", (tile, tile), _jit(g, (200, 190, 170), 50))
    d = ImageDraw.Draw(motif)
    fg = _jit(g, (120, 80, 60), 60)
    d.ellipse(_box(tile, 0.2, 0.15, 0.8, 0.85), outline=fg, width=1)
    for cx in (0.38, 0.62):
        d.ellipse(_box(tile, cx - 0.06, 0.38, cx + 0.06, 0.48), fill=fg)
    d.line(_pts(tile, (0.4, 0.68), (0.6, 0.68)), fill=fg, width=1)
    out = Image.new("RGB", (w, h))
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            out.paste(motif, (x, y))
    return out


def _unseen_document(g: np.random.Generator, w: int, h: int) -> Image.Image:
    page = Image.new("RGB", (w, h), _jit(g, (245, 243, 235), 8))
    d = ImageDraw.Draw(page)
    words = ("the", "report", "of", "minutes", "total", "invoice", "page", "section", "and", "notes", "2024")
    y = int(h * 0.06)
    while y < h * 0.94:
        line = " ".join(str(_pick(g, words)) for _ in range(int(g.integers(3, 9))))
        d.text((int(w * 0.06), y), line, fill=_jit(g, (30, 30, 35), 20))
        y += int(g.integers(9, 14))
    return page


def _unseen_screenshot(g: np.random.Generator, w: int, h: int) -> Image.Image:
    shot = Image.new("RGB", (w, h), _jit(g, (235, 236, 240), 15))
    d = ImageDraw.Draw(shot)
    d.rectangle((0, 0, w, max(6, h // 10)), fill=_jit(g, (50, 90, 160), 40))
    for _ in range(int(g.integers(3, 8))):
        x0, y0 = int(g.uniform(0, w * 0.7)), int(g.uniform(h * 0.15, h * 0.85))
        x1, y1 = min(w - 1, x0 + int(g.uniform(w * 0.15, w * 0.5))), min(h - 1, y0 + int(g.uniform(6, h * 0.2)))
        d.rectangle((x0, y0, x1, y1), fill=_jit(g, (200, 205, 215), 40), outline=(90, 90, 100))
        d.text((x0 + 2, y0 + 1), str(_pick(g, ("OK", "Cancel", "Settings", "Search", "Files", "12:04"))),
               fill=(20, 20, 20))
    return shot


def _unseen_scene(g: np.random.Generator, w: int, h: int) -> Image.Image:
    scene = str(_pick(g, tuple(_SCENES)))
    return Image.fromarray(np.clip(_background(g, scene, w, h), 0, 255).astype(np.uint8))


_UNSEEN_DRAW = {"scene": _unseen_scene, "noise": _unseen_noise, "stripes": _unseen_stripes,
                "wallpaper": _unseen_wallpaper, "document": _unseen_document, "screenshot": _unseen_screenshot}


def render_unseen(kind: str, size: tuple[int, int], g: np.random.Generator) -> Image.Image:
    """One RGB picture of ``kind`` (``UNSEEN_KINDS``) that shows none of CONCEPTS: an empty scene, a
    texture, a tiled pattern, a text page or a screenshot; calibration uses such pictures as photos of
    nothing in a vocabulary."""
    if kind not in _UNSEEN_DRAW:
        raise ValueError(f"unknown unseen kind {kind!r}; kinds are {UNSEEN_KINDS}")
    w, h = size
    if w < 8 or h < 8:
        raise ValueError(f"unseen pictures need at least 8x8 pixels, got {size}")
    return _UNSEEN_DRAW[kind](g, w, h)


def write_unseen(out_dir: Path, n: int, size: int = 128, seed: int = 0) -> list[Path]:
    """``n`` pictures of nothing in the vocabulary (kinds in turn) as JPEGs in ``out_dir``; their paths."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out_dir.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        kind = UNSEEN_KINDS[i % len(UNSEEN_KINDS)]
        path = out_dir / f"unseen-{i:04d}-{kind}.jpg"
        render_unseen(kind, (size, size), g).save(path, quality=92)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- encoding

def _exif_bytes(im: _Image, created_at: str) -> bytes:
    """A camera-like EXIF block: make/model, date, Orientation when rotated, GPS IFD when located."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "TagsightCam", "Synth 1"
    exif[0x0132] = created_at.replace("-", ":").replace("T", " ").rstrip("Z")
    if im.orientation:
        exif[0x0112] = im.orientation
    if im.gps:
        lat, lon = im.gps
        exif[0x8825] = {0: b"\x02\x02\x00\x00", 1: "N" if lat >= 0 else "S", 2: _dms(lat),
                        3: "E" if lon >= 0 else "W", 4: _dms(lon)}
    return exif.tobytes()


def _dms(deg: float) -> tuple[float, float, float]:
    deg = abs(deg)
    d, rem = int(deg), (abs(deg) - int(deg)) * 60
    return float(d), float(int(rem)), round((rem - int(rem)) * 60, 2)


def _encode(photo: Image.Image, im: _Image, created_at: str) -> bytes:
    """The file bytes of an original photo: rotated as the camera stored it, EXIF when it has GPS."""
    buf = io.BytesIO()
    if im.fmt == "png":
        (photo.convert("RGBA") if im.rgba else photo).save(buf, "PNG")
        return buf.getvalue()
    if im.orientation:
        photo = photo.transpose(_STORE_TRANSPOSE[im.orientation])
    exif = _exif_bytes(im, created_at) if im.gps or im.orientation else b""
    photo.save(buf, "JPEG", quality=im.quality, exif=exif)
    return buf.getvalue()


def _near_copy(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """A repost as apps make it: decoded upright, shrunk to 80 %, re-encoded at lower quality, no EXIF."""
    with Image.open(io.BytesIO(data)) as src:
        photo = ImageOps.exif_transpose(src).convert("RGB")
    size = (max(8, photo.width * 4 // 5), max(8, photo.height * 4 // 5))
    buf = io.BytesIO()
    photo.resize(size, Image.BILINEAR).save(buf, "JPEG", quality=70)
    return buf.getvalue(), size


def _corrupt(data: bytes, kind: str) -> bytes:
    return data[: max(16, len(data) * 2 // 5)] if kind == "truncated" else NOT_AN_IMAGE


def _render_media(cfg: FeedConfig, posts: list[_Post], media_dir: Path) -> None:
    """Draw, encode and write every photo, in post order (reposts copy files written before them)."""
    written: dict[str, bytes] = {}
    for i, post in enumerate(posts):
        for j, im in enumerate(post.images):
            if im.duplicate_of is not None:
                src, kind = im.duplicate_of
                data = written[src.file]
                if kind == "near":
                    data, im.size = _near_copy(data)
            else:
                photo = render_photo(im.concepts, im.size, np.random.default_rng([cfg.seed, i, j]), im.background)
                data = _encode(photo, im, post.created_at)
                data = _corrupt(data, im.corrupt) if im.corrupt else data
            written[im.file] = data
            (media_dir / _filename(im)).write_bytes(data)


def _filename(im: _Image) -> str:
    return f"{im.file}.{'png' if im.fmt == 'png' else 'jpg'}"


# ---------------------------------------------------------------- records and files

def _post_record(post: _Post) -> dict[str, Any]:
    """The post as our JSONL schema has it (what a real export would hold)."""
    media = []
    for im in post.images:
        item = {"path": f"media/{_filename(im)}"}
        if im.alt_text is not None:
            item["alt_text"] = im.alt_text
        media.append(item)
    rec: dict[str, Any] = {
        "post_id": post.post_id, "author_id": post.author.author_id, "created_at": post.created_at,
        "visibility": post.audience.visibility, "caption": post.caption,
    }
    if post.list_hashtags:
        rec["hashtags"] = [t.tag for t in post.tags]
    rec.update(media=media, consent={"ai_training": post.audience.consent_ai_training},
               region=post.author.region, license=post.author.license, likes=post.likes)
    return rec


def _image_truth(im: _Image, media_dir: Path) -> dict[str, Any]:
    data = (media_dir / _filename(im)).read_bytes()
    return {
        "path": f"media/{_filename(im)}", "concepts": list(im.concepts), "synsets": [CONCEPTS[c] for c in im.concepts],
        "width": im.size[0], "height": im.size[1], "format": im.fmt, "background": im.background,
        "gps": {"lat": im.gps[0], "lon": im.gps[1]} if im.gps else None, "orientation": im.orientation,
        "duplicate_of": {"path": f"media/{_filename(im.duplicate_of[0])}", "kind": im.duplicate_of[1]}
        if im.duplicate_of else None,
        "corrupt": im.corrupt, "sha256": hashlib.sha256(data).hexdigest(),
    }


def _truth_record(post: _Post, opted_out: set[str], media_dir: Path) -> dict[str, Any]:
    """What is really in the post: concepts per image, the kind of every hashtag, audience facts."""
    concepts = list(dict.fromkeys(c for im in post.images for c in im.concepts))
    return {
        "post_id": post.post_id, "author_id": post.author.author_id,
        "concepts": concepts, "synsets": [CONCEPTS[c] for c in concepts],
        "images": [_image_truth(im, media_dir) for im in post.images],
        "tags": [{"tag": t.tag, "kind": t.kind, "concept": t.concept,
                  "synset": CONCEPTS[t.concept] if t.concept else None, "form": t.form} for t in post.tags],
        "hashtags_listed": post.list_hashtags, "visibility": post.audience.visibility,
        "consent_ai_training": post.audience.consent_ai_training, "optout_tag": post.audience.optout_tag,
        "author_opted_out": post.author.author_id in opted_out,
    }


def _write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")


def _write_optout(path: Path, opted_out: list[str]) -> None:
    lines = ["# Authors who asked that none of their posts be used for AI training.",
             "# One author id per line; lines starting with '#' are comments.", *opted_out]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _clear_stale_media(media_dir: Path) -> None:
    """Remove photos an earlier run wrote here (our file-name pattern only), so the folder matches the config."""
    stale = [p for p in media_dir.iterdir() if _MEDIA_NAME.fullmatch(p.name)]
    for p in stale:
        p.unlink()
    if stale:
        log.info("removed %d photos of an earlier feed from %s", len(stale), media_dir)


def _summarize(posts: list[_Post], opted_out: list[str]) -> FeedSummary:
    images = [im for p in posts for im in p.images]
    kinds = {k: sum(t.kind == k for p in posts for t in p.tags) for k in TAG_KINDS}
    dup_kinds = [im.duplicate_of[1] for im in images if im.duplicate_of]
    return FeedSummary(
        n_posts=len(posts), n_authors=len({p.author.author_id for p in posts}), n_images=len(images),
        n_jpeg=sum(im.fmt == "jpeg" for im in images), n_png=sum(im.fmt == "png" for im in images),
        n_gps=sum(im.gps is not None for im in images), n_oriented=sum(bool(im.orientation) for im in images),
        n_large=sum(max(im.size) >= 640 for im in images), n_non_square=sum(im.size[0] != im.size[1] for im in images),
        n_multi_image_posts=sum(len(p.images) > 1 for p in posts),
        n_two_concept_images=sum(len(im.concepts) > 1 for im in images),
        n_exact_duplicates=dup_kinds.count("exact"), n_near_duplicates=dup_kinds.count("near"),
        n_corrupt=sum(im.corrupt is not None for im in images),
        n_hashtags_listed=sum(p.list_hashtags for p in posts),
        n_alt_text=sum(im.alt_text is not None for im in images), n_opted_out_authors=len(opted_out),
        n_posts_by_opted_out=sum(p.author.author_id in opted_out for p in posts),
        n_optout_tag_posts=sum(p.audience.optout_tag is not None for p in posts),
        n_public=sum(p.audience.visibility == "public" for p in posts),
        n_tags=sum(len(p.tags) for p in posts), tag_kinds=kinds,
    )


def generate_feed(out_dir: Path, cfg: FeedConfig = FeedConfig()) -> FeedSummary:
    """Write a synthetic feed (posts.jsonl, media/, optout.txt, truth.jsonl) into ``out_dir``; same cfg, same bytes."""
    out_dir = Path(out_dir)
    media_dir = out_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    _clear_stale_media(media_dir)
    posts, opted_out = _plan(cfg)
    _render_media(cfg, posts, media_dir)
    _write_jsonl(out_dir / "posts.jsonl", (_post_record(p) for p in posts))
    _write_optout(out_dir / "optout.txt", opted_out)
    blocked = set(opted_out)
    _write_jsonl(out_dir / "truth.jsonl", (_truth_record(p, blocked, media_dir) for p in posts))
    summary = _summarize(posts, opted_out)
    log.info("synthetic feed in %s: %d posts, %d photos (%d GPS, %d reposts, %d corrupt)", out_dir,
             summary.n_posts, summary.n_images, summary.n_gps,
             summary.n_exact_duplicates + summary.n_near_duplicates, summary.n_corrupt)
    return summary
