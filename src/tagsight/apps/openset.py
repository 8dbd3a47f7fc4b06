"""The open-set guard: a concept may be said only of a photo that looks like what the model was trained on.

A hashtag head (or the starter bundle's WordNet mapping) always spreads probability over its own
labels, so a photo of something outside the vocabulary (a cat for a vocabulary of fish and golf balls,
a wallpaper, a screenshot) still gets a most likely label. The guard scores each photo (from the
head's outputs or the backbone's features) and lets concepts through only above a threshold fitted
on **unseen** photos (photos that show none of the vocabulary's concepts):

* ``max_logit`` (Hendrycks et al. 2019, Vaze et al. 2022; the starter bundle's default): the largest
  head output. For the starter bundle the outputs are log label probabilities, so this is the log of
  the best label's probability.
* ``energy`` (Liu et al. 2020): ``logsumexp`` of the outputs.
* ``knn`` (Sun et al. 2022), the default for a run: the mean cosine similarity of the photo's
  backbone features to its ``k`` nearest neighbours among the in-vocabulary calibration photos of
  the fit half (the **bank**, ``BUNDLE/open_set_bank.npy``, at most ``MAX_BANK`` rows). A weak hashtag
  head is as confident on an empty background as on the object it learnt, so its logits separate
  badly; its features separate far better (docs/apps.md).

``fit_guard`` chooses the lowest threshold at which at most ``max_unseen_rate`` of the unseen fit
photos pass (strictly above it); the check photos, which played no part, measure it. The guard is
stored in ``calibration.json`` under ``open_set``; a calibration without one (older bundles) has no
guard and answers as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tagsight.fsio import ReasonError


def _max_logit(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = z.max(axis=1)
    return out


def _energy(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    out: np.ndarray = (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]
    return out


SCORES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {"max_logit": _max_logit, "energy": _energy,
                                                                  "knn": None}
BANK_FILE = "open_set_bank.npy"
MAX_BANK = 4096
KNN_K = 5


def _normalise(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float32)
    out: np.ndarray = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return out


def knn_scores(features: np.ndarray, bank: np.ndarray, k: int = KNN_K, self_column: np.ndarray | None = None,
               chunk: int = 1024) -> np.ndarray:
    """Mean cosine similarity of each row to its ``k`` nearest bank rows; ``self_column[i] >= 0`` names row i's
    own copy in the bank, which is left out (a bank photo is not its own neighbour)."""
    bank_n = _normalise(bank)
    f = _normalise(features)
    k = max(1, min(k, len(bank_n) - int(self_column is not None)))
    out = np.empty(len(f), dtype=np.float64)
    for start in range(0, len(f), chunk):
        sims = f[start:start + chunk] @ bank_n.T
        if self_column is not None:
            own = np.asarray(self_column[start:start + chunk])
            rows = np.flatnonzero(own >= 0)
            sims[rows, own[rows]] = -np.inf
        out[start:start + chunk] = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    return out


def open_set_scores(logits: np.ndarray, score: str = "max_logit") -> np.ndarray:
    """Per photo, how much it looks like the vocabulary (higher = more familiar), from the head's outputs."""
    fn = SCORES.get(score)
    if fn is None:
        raise ValueError(f"unknown logit open-set score {score!r} (known: max_logit, energy)")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or not z.shape[1]:
        raise ValueError(f"logits must be [N, L] with L >= 1, got shape {z.shape}")
    return fn(z)


@dataclass(frozen=True)
class OpenSetGuard:
    """Photos whose ``score`` is ``>= threshold`` may be described; the others are unfamiliar."""

    score: str
    threshold: float
    max_unseen_rate: float
    k: int = KNN_K
    bank: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown open-set score {self.score!r} (known: {sorted(SCORES)})")
        if not 0 <= self.max_unseen_rate < 1 or math.isnan(self.threshold) or self.k < 1:
            raise ValueError(f"max_unseen_rate must be in [0, 1), threshold a number and k >= 1, got {self}")
        if self.score == "knn" and (self.bank is None or self.bank.ndim != 2 or not len(self.bank)):
            raise ValueError("the knn open-set score needs a bank of in-vocabulary features [N, D]")

    def scores(self, logits: np.ndarray, features: np.ndarray | None = None,
               self_column: np.ndarray | None = None) -> np.ndarray:
        if self.score != "knn":
            return open_set_scores(logits, self.score)
        if features is None:
            raise ValueError("the knn open-set score needs the photos' features")
        return knn_scores(features, self.knn_bank(), self.k, self_column)

    def knn_bank(self) -> np.ndarray:
        """The in-vocabulary feature bank of the knn score (ValueError for a guard without one)."""
        if self.bank is None:
            raise ValueError(f"the {self.score} open-set guard has no feature bank")
        return self.bank

    def familiar(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Bool per photo: it passes the guard."""
        return self.scores(logits, features) >= self.threshold

    def with_threshold(self, threshold: float, max_unseen_rate: float) -> OpenSetGuard:
        return OpenSetGuard(self.score, threshold, max_unseen_rate, self.k, self.bank)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": self.score, "threshold": self.threshold, "max_unseen_rate": self.max_unseen_rate}
        if self.score == "knn":
            d.update(k=self.k, bank=BANK_FILE, bank_size=int(len(self.knn_bank())))
        return d

    def save_bank(self, bundle_dir: str | Path) -> Path | None:
        """Write the feature bank beside calibration.json (knn only)."""
        if self.score != "knn":
            return None
        from tagsight.fsio import atomic_write_bytes

        import io

        buf = io.BytesIO()
        np.save(buf, self.knn_bank().astype(np.float16))
        path = Path(bundle_dir) / BANK_FILE
        atomic_write_bytes(path, buf.getvalue())
        return path


def make_bank(features: np.ndarray, seed: int = 0, limit: int = MAX_BANK) -> tuple[np.ndarray, np.ndarray]:
    """``(bank, rows)``: normalised features of at most ``limit`` of the given rows (a seeded subset), and which."""
    rows = np.arange(len(features))
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
    return _normalise(np.asarray(features)[rows]), rows


def guard_from_dict(d: dict[str, Any] | None, bundle_dir: str | Path | None = None) -> OpenSetGuard | None:
    """The guard of a calibration's ``open_set`` record (its bank read from ``bundle_dir``); None for a
    calibration made without unseen photos."""
    if not d:
        return None
    try:
        bank = None
        if d["score"] == "knn":
            path = Path(bundle_dir or ".") / d.get("bank", BANK_FILE)
            if not path.is_file():
                raise ReasonError("bad_calibration", f"the open-set guard's feature bank {path} is missing")
            bank = np.load(path).astype(np.float32)
        return OpenSetGuard(str(d["score"]), float(d["threshold"]), float(d["max_unseen_rate"]),
                            int(d.get("k", KNN_K)), bank)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReasonError("bad_calibration", f"open_set record {d!r} is not a guard: {exc}") from None


def fit_guard(unseen_scores: np.ndarray, max_unseen_rate: float, score: str = "max_logit",
              base: OpenSetGuard | None = None) -> OpenSetGuard:
    """The lowest threshold that lets at most ``floor(max_unseen_rate * n)`` unseen photos through
    (``base`` carries the score's bank and k)."""
    s = np.sort(np.asarray(unseen_scores, dtype=np.float64))[::-1]
    if not len(s):
        raise ReasonError("no_unseen", "the open-set guard needs photos showing none of the vocabulary's concepts")
    allowed = int(math.floor(max_unseen_rate * len(s)))
    # strictly above the (allowed+1)-th highest unseen score: ties at it do not pass
    threshold = float(np.nextafter(s[allowed], np.inf)) if allowed < len(s) else float(s[-1])
    if base is not None:
        return base.with_threshold(threshold, max_unseen_rate)
    return OpenSetGuard(score, threshold, max_unseen_rate)


def pass_rate(familiar: np.ndarray) -> dict[str, float | int | None]:
    """``{"photos", "passing", "rate"}`` of a bool array (rate None for no photos)."""
    n, k = int(len(familiar)), int(np.sum(familiar))
    return {"photos": n, "passing": k, "rate": round(k / n, 4) if n else None}
