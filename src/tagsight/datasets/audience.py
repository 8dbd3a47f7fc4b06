"""Who may see a simulated post and what its author chose: the mix every simulated feed uses.

The shares are a documented assumption, not a measurement: most posts public, a minority
restricted, most authors silent on AI training, some explicitly for or against, a few authors
opted out entirely, and a few posts carrying an opt-out hashtag.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")

VISIBILITY_SHARES = {"public": 0.78, "unlisted": 0.07, "followers": 0.08, "private": 0.04, "direct": 0.03}
CONSENT_SHARES = {None: 0.80, True: 0.12, False: 0.08}
OPTOUT_TAG_SHARE = 0.03
OPTOUT_TAGS = ("noai", "NoAI", "noaitraining", "NoMachineLearning")


@dataclass(frozen=True)
class Audience:
    visibility: str
    consent_ai_training: bool | None
    optout_tag: str | None


def pick_weighted(rng: random.Random, shares: Mapping[K, float]) -> K:
    """One key of ``shares`` drawn with probability proportional to its share (every simulated feed's draw)."""
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def sample_audience(rng: random.Random) -> Audience:
    """Visibility, consent and an optional opt-out hashtag for one post."""
    tag = rng.choice(OPTOUT_TAGS) if rng.random() < OPTOUT_TAG_SHARE else None
    return Audience(pick_weighted(rng, VISIBILITY_SHARES), pick_weighted(rng, CONSENT_SHARES), tag)


def pick_opted_out(authors: list[str], rng: random.Random, share: float = 0.05) -> list[str]:
    """A reproducible subset of authors who asked to be left out (at least one when any exist)."""
    if not authors:
        return []
    k = max(1, round(share * len(authors)))
    return sorted(rng.sample(sorted(authors), k))
