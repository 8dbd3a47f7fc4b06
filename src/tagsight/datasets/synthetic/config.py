"""The synthetic feed's vocabulary and settings: concepts, spellings, tag kinds, shares, ``FeedConfig`` and ``FeedSummary``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image



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
STORE_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
ASPECTS = ((4, 3), (3, 4), (16, 9), (9, 16))
NON_SQUARE_SHARE = 0.12
TWO_CONCEPT_SHARE = 0.15
ORIENTED_SHARE = 0.08  # of original JPEGs
ALT_TEXT_SHARE = 0.3
EPOCH = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
NOT_AN_IMAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
MEDIA_NAME = re.compile(r"p\d+_\d+\.(jpg|png)")


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
