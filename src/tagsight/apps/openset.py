"""The open-set guard: a concept may be said only of a photo that looks like what the model was trained on.

A hashtag head (or the starter bundle's WordNet mapping) always spreads probability over its own
labels, so a photo of something outside the vocabulary (a cat for a vocabulary of fish and golf balls,
a wallpaper, a screenshot) still gets a most likely label. The guard scores each photo from the
head's outputs and lets concepts through only above a threshold fitted on **unseen** photos
(photos that show none of the vocabulary's concepts):

* ``max_logit`` (default; Hendrycks et al. 2019, Vaze et al. 2022): the largest head output. For the
  starter bundle the outputs are log label probabilities, so this is the log of the best label's
  probability.
* ``energy`` (Liu et al. 2020): ``logsumexp`` of the outputs.

``fit_guard`` chooses the lowest threshold at which at most ``max_unseen_rate`` of the unseen fit
photos pass (strictly above it); the check photos, which played no part, measure it. The guard is
stored in ``calibration.json`` under ``open_set``; a calibration without one (older bundles) has no
guard and answers as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tagsight.fsio import ReasonError


def _max_logit(z: np.ndarray) -> np.ndarray:
    return z.max(axis=1)


def _energy(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"max_logit": _max_logit, "energy": _energy}


def open_set_scores(logits: np.ndarray, score: str = "max_logit") -> np.ndarray:
    """Per photo, how much it looks like the vocabulary (higher = more familiar)."""
    if score not in SCORES:
        raise ValueError(f"unknown open-set score {score!r} (known: {sorted(SCORES)})")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or not z.shape[1]:
        raise ValueError(f"logits must be [N, L] with L >= 1, got shape {z.shape}")
    return SCORES[score](z)


@dataclass(frozen=True)
class OpenSetGuard:
    """Photos whose ``score`` is ``>= threshold`` may be described; the others are unfamiliar."""

    score: str
    threshold: float
    max_unseen_rate: float

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown open-set score {self.score!r} (known: {sorted(SCORES)})")
        if not 0 <= self.max_unseen_rate < 1 or math.isnan(self.threshold):
            raise ValueError(f"max_unseen_rate must be in [0, 1) and threshold a number, got {self}")

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return open_set_scores(logits, self.score)

    def familiar(self, logits: np.ndarray) -> np.ndarray:
        """Bool per photo: it passes the guard."""
        return self.scores(logits) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "threshold": self.threshold, "max_unseen_rate": self.max_unseen_rate}


def guard_from_dict(d: dict[str, Any] | None) -> OpenSetGuard | None:
    """The guard of a calibration's ``open_set`` record; None for a calibration made without unseen photos."""
    if not d:
        return None
    try:
        return OpenSetGuard(str(d["score"]), float(d["threshold"]), float(d["max_unseen_rate"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReasonError("bad_calibration", f"open_set record {d!r} is not a guard: {exc}") from None


def fit_guard(unseen_scores: np.ndarray, max_unseen_rate: float, score: str = "max_logit") -> OpenSetGuard:
    """The lowest threshold that lets at most ``floor(max_unseen_rate * n)`` unseen photos through."""
    s = np.sort(np.asarray(unseen_scores, dtype=np.float64))[::-1]
    if not len(s):
        raise ReasonError("no_unseen", "the open-set guard needs photos showing none of the vocabulary's concepts")
    allowed = int(math.floor(max_unseen_rate * len(s)))
    # strictly above the (allowed+1)-th highest unseen score: ties at it do not pass
    threshold = float(np.nextafter(s[allowed], np.inf)) if allowed < len(s) else float(s[-1])
    return OpenSetGuard(score, threshold, max_unseen_rate)


def pass_rate(familiar: np.ndarray) -> dict[str, float | int]:
    """``{"photos", "passing", "rate"}`` of a bool array."""
    n, k = int(len(familiar)), int(np.sum(familiar))
    return {"photos": n, "passing": k, "rate": round(k / n, 4) if n else None}
