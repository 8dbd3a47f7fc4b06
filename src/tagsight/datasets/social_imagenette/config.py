"""social-imagenette's settings: class and tag constants, the noise model, the build config, where the data lies."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tagsight.datasets.harrison_stats import DatasetError


IMAGENETTE_DIR = "imagenette-160"
HARRISON_DIR = "harrison"
SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
FORMS = ("synonym", "lemma_variant", "hypernym", "compound", "misspelling")
TAG_KINDS = ("true_concept", "wrong_concept", "nonvisual_noise", "optout")
WNID_PATTERN = re.compile(r"n\d{8}")
UNCHANGED_PLURALS = frozenset({"fish", "equipment", "brass"})

# Hypernyms people actually use as hashtags, per class: (synset, lemma). Each synset must be a
# WordNet hypernym of the class (checked in ``load_concept``). Classes without a hypernym people
# would write (cassette player: electronic_equipment; parachute: rescue_equipment) have none.
HYPERNYM_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "n01440764": (("fish.n.01", "fish"),),
    "n02102040": (("dog.n.01", "dog"), ("spaniel.n.01", "spaniel"), ("springer_spaniel.n.01", "springer"),
                  ("sporting_dog.n.01", "gun_dog")),
    "n02979186": (),
    "n03000684": (("power_saw.n.01", "saw"), ("power_tool.n.01", "power_tool"), ("tool.n.01", "tool")),
    "n03028079": (("building.n.01", "building"), ("place_of_worship.n.01", "place_of_worship")),
    "n03394916": (("brass.n.02", "brass"), ("musical_instrument.n.01", "instrument"),
                  ("musical_instrument.n.01", "musical_instrument")),
    "n03417042": (("truck.n.01", "truck"), ("vehicle.n.01", "vehicle")),
    "n03425413": (("pump.n.01", "pump"),),
    "n03445777": (("ball.n.01", "ball"), ("golf_equipment.n.01", "golf_equipment")),
    "n03888257": (),
}

# Tags WordNet does not link to a class but that would still describe its photos: never noise.
DESCRIPTIVE_TAGS: dict[str, tuple[str, ...]] = {
    "n02102040": ("pet", "puppy", "pup", "doggy", "doggie", "doggo"),
}

REGIONS = {"US": 0.22, "GB": 0.08, "DE": 0.10, "FR": 0.08, "NL": 0.05, "ES": 0.05, "IT": 0.05, "BR": 0.09,
           "JP": 0.07, "IN": 0.09, "CA": 0.04, None: 0.08}
LICENSES = {None: 0.6, "CC-BY-4.0": 0.15, "CC-BY-SA-4.0": 0.1, "CC0-1.0": 0.08, "CC-BY-NC-4.0": 0.07}
SENTENCES = ("", "", "", "Weekend vibes.", "What a day!", "Finally.", "Look at this.", "Today's find.",
             "Can't stop looking at this.", "Not bad for a phone pic.", "Throwback.", "Saturday ☀️",
             "So happy right now.", "Had to share this one.", "Guess what I saw today", "New favourite.")
TIME_WINDOW = (dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
KEYBOARD_NEIGHBOURS = {c: n for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm") for i, c in enumerate(row)
               for n in [row[max(0, i - 1):i] + row[i + 1:i + 2]]}


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_weights(name: str, weights: Mapping[Any, float], keys: Iterable[Any]) -> None:
    keys = tuple(keys)
    if set(weights) != set(keys):
        raise ValueError(f"{name} must have exactly the keys {keys}, got {tuple(weights)}")
    if any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise ValueError(f"{name} must be non-negative numbers with a positive sum, got {dict(weights)}")


@dataclass(frozen=True)
class NoiseModel:
    """How simulated hashtags are drawn; documented with its calibrated numbers in docs/social-imagenette.md."""

    p_present: float = 0.8            # the true concept is among the tags
    p_wrong: float = 0.25             # another class's concept is among the tags
    p_second_form: float = 0.25       # when present, a second, different spelling of it too (slots allowing)
    form_weights: Mapping[str, float] = field(default_factory=lambda: {
        "synonym": 0.45, "lemma_variant": 0.15, "hypernym": 0.15, "compound": 0.17, "misspelling": 0.08})
    head_lemma_weight: float = 3.0    # the synset's first lemma against 1.0 for each other synonym
    multiword_spelling: Mapping[str, float] = field(default_factory=lambda: {
        "joined": 0.55, "camel": 0.30, "snake": 0.15})
    oneword_spelling: Mapping[str, float] = field(default_factory=lambda: {"lower": 0.85, "capitalised": 0.15})
    compound_camel: float = 0.3       # share of compounds written CamelCase (#DogsOfInstagram)
    author_alpha: float = 2.0         # posts per author ~ k^-alpha, k = 1..max_posts_per_author
    max_posts_per_author: int = 200

    def __post_init__(self) -> None:
        for name in ("p_present", "p_wrong", "p_second_form", "compound_camel"):
            _check_probability(name, getattr(self, name))
        _check_weights("form_weights", self.form_weights, FORMS)
        _check_weights("multiword_spelling", self.multiword_spelling, ("joined", "camel", "snake"))
        _check_weights("oneword_spelling", self.oneword_spelling, ("lower", "capitalised"))
        if not self.head_lemma_weight > 0:
            raise ValueError(f"head_lemma_weight must be > 0, got {self.head_lemma_weight!r}")
        if not self.author_alpha > 0:
            raise ValueError(f"author_alpha must be > 0, got {self.author_alpha!r}")
        if isinstance(self.max_posts_per_author, bool) or not isinstance(self.max_posts_per_author, int) \
                or self.max_posts_per_author < 1:
            raise ValueError(f"max_posts_per_author must be an integer >= 1, got {self.max_posts_per_author!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SocialImagenetteConfig:
    """What to build: where from, where to, which splits, how many posts, the seed and the noise model."""

    out_dir: Path
    data_root: Path
    seed: int = 0
    splits: tuple[str, ...] = SPLITS
    limit: int | None = None          # at most this many posts per split (a prefix of the full build)
    noise: NoiseModel = field(default_factory=NoiseModel)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "data_root", Path(self.data_root))
        object.__setattr__(self, "splits", tuple(self.splits))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not self.splits or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be a non-empty list without repeats, got {self.splits!r}")
        bad = [s for s in self.splits if not re.fullmatch(r"[A-Za-z0-9_-]+", s)]
        if bad:
            raise ValueError(f"split names must be folder names (letters, digits, '-', '_'), got {bad}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {self.limit!r}")


# ---------------------------------------------------------------- data root

def default_data_root(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``$TAGSIGHT_DATA`` when set, else ``<cwd>/../shared/data``."""
    env = os.environ if env is None else env
    if env.get("TAGSIGHT_DATA"):
        return Path(env["TAGSIGHT_DATA"])
    return (cwd or Path.cwd()) / ".." / "shared" / "data"


def _where(data: Path | None, env: Mapping[str, str], root: Path) -> str:
    if data is not None:
        return f"--data {root}"
    if env.get("TAGSIGHT_DATA"):
        return f"$TAGSIGHT_DATA={root}"
    return f"$TAGSIGHT_DATA is not set, and the default <cwd>/../shared/data is {root}"


def resolve_data_root(data: Path | None = None, env: Mapping[str, str] | None = None,
                      cwd: Path | None = None) -> Path:
    """The data root holding ``imagenette-160/`` and ``harrison/``; DatasetError naming where it looked."""
    env = os.environ if env is None else env
    root = Path(data) if data is not None else default_data_root(env, cwd)
    if not root.is_dir():
        raise DatasetError("data_missing", f"data folder not found ({_where(data, env, root)}); pass --data DIR "
                                           "or set TAGSIGHT_DATA to the folder holding imagenette-160/ and harrison/")
    for sub, reason in ((IMAGENETTE_DIR, "imagenette_missing"), (HARRISON_DIR, "harrison_missing")):
        if not (root / sub).is_dir():
            raise DatasetError(reason, f"{root} has no {sub}/ folder (see ../shared/data/README.md)")
    return root
