"""Hashtag suggestion: the top-k labels with calibrated probabilities, shown as people spell them, or abstain.

For each image the hashtag head's logits go through the bundle's calibrator (``calibration.json``,
``tagsight apps calibrate``); the ``k`` most probable labels whose probability is at least
``threshold`` are suggested, most probable first, each with the hashtag spelling people wrote most
often for it (e.g. ``#GoldenRetriever``). When none reaches the threshold the answer abstains
(``"abstained": true`` and no suggestion) instead of guessing. A calibration with an open-set guard
(``tagsight.apps.openset``) also abstains on photos that do not look like the vocabulary
(``"reason": "unfamiliar"``); every abstention names the closest label and its probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from tagsight.apps.base import APPS
from tagsight.apps.calibrators import Calibrator, calibrator_from_dict, concept_name, load_calibration
from tagsight.apps.embedder import Embedder, FeatureApp, check_features
from tagsight.apps.openset import OpenSetGuard, guard_from_dict
from tagsight.fsio import ReasonError


class LabelHead(Protocol):
    """What the hashtag and alt-text apps need of a head: features ``[N, D]`` -> one output per label
    (a run's ``LinearHead``, the starter bundle's ``StarterHead``)."""

    out_features: int

    def __call__(self, features: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> LabelHead: ...


def hashtag_head_logits(head: LabelHead, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits: np.ndarray = head(torch.from_numpy(features)).double().numpy()
    return logits


def check_calibration(calibration: dict[str, Any], embedder: Embedder, head: LabelHead, where: str) -> None:
    """Refuse a calibration fitted for another backbone or head size."""
    if calibration["backbone_fingerprint"] != embedder.fingerprint:
        raise ReasonError("calibration_mismatch", f"{where}: calibration.json was fitted on another backbone; "
                                                  "rerun 'tagsight apps calibrate'")
    if len(calibration["concepts"]) != int(head.out_features):
        raise ReasonError("calibration_mismatch", f"{where}: calibration.json has {len(calibration['concepts'])} "
                                                  f"labels, the head {head.out_features}")


@APPS.register("hashtags")
class HashtagsApp(FeatureApp):
    """Top-k calibrated hashtag suggestions with abstention."""

    name = "hashtags"
    options = {"k": int, "threshold": float}

    def __init__(self, embedder: Embedder, head: LabelHead, calibrator: Calibrator, labels: Sequence[str],
                 display: Sequence[str], k: int = 5, threshold: float = 0.3,
                 guard: OpenSetGuard | None = None) -> None:
        super().__init__(embedder)
        if len(labels) != head.out_features or len(display) != len(labels):
            raise ValueError(f"{head.out_features} head outputs, {len(labels)} labels, {len(display)} spellings")
        self.head, self.calibrator, self.guard = head.eval(), calibrator, guard
        self.labels, self.display = list(labels), list(display)
        self.k, self.threshold = _check_k(k), _check_threshold(threshold)

    @classmethod
    def load(cls, bundle_dir: Path, embedder: Embedder, head: LabelHead) -> HashtagsApp:
        cal = load_calibration(bundle_dir)
        check_calibration(cal, embedder, head, str(bundle_dir))
        return cls(embedder, head, calibrator_from_dict(cal["calibrator"]), [c["label"] for c in cal["concepts"]],
                   cal["display"], guard=guard_from_dict(cal.get("open_set"), bundle_dir))

    def check_option_values(self, options: dict[str, Any]) -> None:
        _check_k(options.get("k", self.k))
        _check_threshold(options.get("threshold", self.threshold))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated label probabilities ``[N, L]``."""
        return self._scored(features)[0]

    def _scored(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities ``[N, L]`` and whether the open-set guard lets each photo through."""
        x = check_features(features, None, self.embedder.num_features)
        logits = hashtag_head_logits(self.head, x)
        familiar = self.guard.familiar(logits, x) if self.guard else np.ones(len(x), dtype=bool)
        return self.calibrator.probabilities(logits), familiar

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        opts = self.check_options(options)
        k, threshold = _check_k(opts.get("k", self.k)), _check_threshold(opts.get("threshold", self.threshold))
        check_features(features, images, self.embedder.num_features)
        probs, familiar = self._scored(features)
        return [self._answer(row, bool(ok), k, threshold) for row, ok in zip(probs, familiar)]

    def _answer(self, probs: np.ndarray, familiar: bool, k: int, threshold: float) -> dict[str, Any]:
        top = np.argsort(-probs, kind="stable")[:k]
        tags = [{"hashtag": self.display[c], "label": self.labels[c], "name": concept_name(self.labels[c]),
                 "probability": round(float(probs[c]), 4)} for c in top if probs[c] >= threshold and familiar]
        answer: dict[str, Any] = {"hashtags": tags, "abstained": not tags, "threshold": threshold}
        if not tags:
            best = int(top[0])
            answer["reason"] = "below_threshold" if familiar else "unfamiliar"
            answer["closest"] = {"hashtag": self.display[best], "probability": round(float(probs[best]), 4)}
        return answer

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "labels": len(self.labels), "calibrator": self.calibrator.to_dict(),
                "k": self.k, "threshold": self.threshold,
                "open_set_guard": self.guard.to_dict() if self.guard else None}


def _check_k(k: int) -> int:
    if k < 1:
        raise ReasonError("bad_option", f"k must be >= 1, got {k}")
    return int(k)


def _check_threshold(t: float) -> float:
    if not 0 <= t <= 1:
        raise ReasonError("bad_option", f"threshold must be in [0, 1], got {t}")
    return float(t)
