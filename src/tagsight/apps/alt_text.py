"""Alt text in the style of automatic alt text: "Image may contain: 2 people, dog, beach".

Only concepts whose held-out precision met the target when the bundle was calibrated
(``calibration.json``: each such label has its own probability threshold) may be named; an image
names those whose calibrated probability reaches their threshold, most confident first, at most
``max_concepts``. People are counted with OpenCV's frontal-face Haar cascade
(``tagsight.privacy.faces``); the count is all that is said about them: no identity, no face
box, no attribute. With nothing to say the text is "No photo description available.".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.apps.base import APPS
from tagsight.apps.calibration import Calibrator, calibrator_from_dict, load_calibration
from tagsight.apps.embedder import Embedder, FeatureApp, as_bool, check_features
from tagsight.apps.hashtags import check_calibration, hashtag_head_logits
from tagsight.fsio import ReasonError
from tagsight.models.heads import LinearHead

NOTHING = "No photo description available."
PREFIX = "Image may contain: "


def people_phrase(n: int) -> str | None:
    return None if n <= 0 else "1 person" if n == 1 else f"{n} people"


def sentence(people: int, concepts: Sequence[str]) -> str:
    """The alt text for a face count and concept names (already ordered)."""
    parts = [p for p in (people_phrase(people), *concepts) if p]
    return PREFIX + ", ".join(parts) if parts else NOTHING


def default_face_counter(img: Image.Image) -> int:
    from tagsight.privacy.faces import count_faces

    return count_faces(img)


@APPS.register("alt-text")
class AltTextApp(FeatureApp):
    """Precise concepts and a people count, as one sentence per image."""

    name = "alt-text"
    options = {"max_concepts": int, "count_people": as_bool}

    def __init__(self, embedder: Embedder, head: LinearHead, calibrator: Calibrator, concepts: Sequence[dict],
                 max_concepts: int = 5, face_counter: Callable[[Image.Image], int] | None = None) -> None:
        super().__init__(embedder)
        self.head, self.calibrator = head.eval(), calibrator
        allowed = [c for c in concepts if c.get("alt_text")]
        self.indices = np.asarray([c["index"] for c in allowed], dtype=np.int64)
        self.names = [c["name"] for c in allowed]
        self.thresholds = np.asarray([c["threshold"] for c in allowed], dtype=np.float64)
        self.max_concepts = _check_max(max_concepts)
        self.face_counter = face_counter or default_face_counter

    @classmethod
    def load(cls, bundle_dir: Path, embedder: Embedder, head: LinearHead) -> AltTextApp:
        cal = load_calibration(bundle_dir)
        check_calibration(cal, embedder, head, str(bundle_dir))
        return cls(embedder, head, calibrator_from_dict(cal["calibrator"]), cal["concepts"])

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        opts = self.check_options(options)
        limit = _check_max(opts.get("max_concepts", self.max_concepts))
        count_people = opts.get("count_people", True)
        if count_people and images is None:
            raise ReasonError("images_needed", "alt-text counts people on the images: pass them with the features")
        x = check_features(features, images, self.embedder.num_features)
        probs = self.calibrator.probabilities(hashtag_head_logits(self.head, x))[:, self.indices]
        return [self._answer(row, self.face_counter(images[i]) if count_people else 0, limit)
                for i, row in enumerate(probs)]

    def _answer(self, probs: np.ndarray, people: int, limit: int) -> dict[str, Any]:
        hit = np.flatnonzero(probs >= self.thresholds)
        hit = hit[np.argsort(-probs[hit], kind="stable")][:limit]
        concepts = [{"name": self.names[j], "probability": round(float(probs[j]), 4)} for j in hit]
        return {"alt_text": sentence(people, [c["name"] for c in concepts]), "concepts": concepts, "people": people}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "concepts": self.names, "max_concepts": self.max_concepts,
                "face_detector": "OpenCV Haar cascade (frontal faces), counts only"}


def _check_max(n: int) -> int:
    if n < 0:
        raise ReasonError("bad_option", f"max_concepts must be >= 0, got {n}")
    return int(n)
