"""Alt text in the style of automatic alt text: "Image may contain: 2 people, dog, beach".

Only concepts whose held-out precision met the target when the bundle was calibrated
(``calibration.json``: each such label has its own probability threshold) may be named; an image
names those whose calibrated probability reaches their threshold, most confident first, at most
``max_concepts``. A calibration made with photos of nothing in the vocabulary carries an open-set
guard (``tagsight.apps.openset``): a photo the guard finds unfamiliar names no concept at all.

People are counted with MTCNN (``tagsight.privacy.faces.count_people``), only faces it is sure of;
the count is all that is said about them: no identity, no face box, no attribute. Without the
detector installed people are not counted (``"people": null``).

With no concept to say the text is "No photo description available." and the answer says why
(``why``): ``no_precise_concepts`` (calibration found no concept precise enough), ``unfamiliar``
(the photo does not look like the vocabulary) or ``below_threshold``; ``closest`` names the concept
that came closest (the largest probability relative to its threshold), with both numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.apps.base import APPS
from tagsight.apps.calibrators import Calibrator, calibrator_from_dict, concept_name, load_calibration
from tagsight.apps.embedder import Embedder, FeatureApp, as_bool, check_features
from tagsight.apps.hashtags import LabelHead, check_calibration, hashtag_head_logits
from tagsight.apps.openset import OpenSetGuard, guard_from_dict
from tagsight.fsio import ReasonError

NOTHING = "No photo description available."
PREFIX = "Image may contain: "
PeopleCounter = Callable[[Image.Image], int]


def people_phrase(n: int | None) -> str | None:
    return None if not n or n <= 0 else "1 person" if n == 1 else f"{n} people"


def sentence(people: int | None, concepts: Sequence[str]) -> str:
    """The alt text for a face count (None: not counted) and concept names (already ordered)."""
    parts = [p for p in (people_phrase(people), *concepts) if p]
    return PREFIX + ", ".join(parts) if parts else NOTHING


def default_face_counter() -> PeopleCounter | None:
    """MTCNN's sure-face count when facenet-pytorch is installed, else None (people are not counted)."""
    from tagsight.privacy.faces import count_people, people_detector_available

    return count_people if people_detector_available() else None


@APPS.register("alt-text")
class AltTextApp(FeatureApp):
    """Precise concepts of familiar photos and a people count, as one sentence per image."""

    name = "alt-text"
    options = {"max_concepts": int, "count_people": as_bool}

    def __init__(self, embedder: Embedder, head: LabelHead, calibrator: Calibrator, concepts: Sequence[dict[str, Any]],
                 max_concepts: int = 5, face_counter: PeopleCounter | None | str = "default",
                 guard: OpenSetGuard | None = None) -> None:
        super().__init__(embedder)
        self.head, self.calibrator, self.guard = head.eval(), calibrator, guard
        allowed = [c for c in concepts if c.get("alt_text")]
        self.indices = np.asarray([c["index"] for c in allowed], dtype=np.int64)
        self.names = [c["name"] for c in allowed]
        self.labels = [c.get("name") or concept_name(c["label"]) for c in concepts]
        self.thresholds = np.asarray([c["threshold"] for c in allowed], dtype=np.float64)
        self.max_concepts = _check_max(max_concepts)
        if isinstance(face_counter, str) and face_counter != "default":
            raise ValueError(f"face_counter must be a people counter, None or 'default', got {face_counter!r}")
        self.face_counter = default_face_counter() if isinstance(face_counter, str) else face_counter

    @classmethod
    def load(cls, bundle_dir: Path, embedder: Embedder, head: LabelHead) -> AltTextApp:
        cal = load_calibration(bundle_dir)
        check_calibration(cal, embedder, head, str(bundle_dir))
        return cls(embedder, head, calibrator_from_dict(cal["calibrator"]), cal["concepts"],
                   guard=guard_from_dict(cal.get("open_set"), bundle_dir))

    def check_option_values(self, options: dict[str, Any]) -> None:
        _check_max(options.get("max_concepts", self.max_concepts))

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        opts = self.check_options(options)
        limit = _check_max(opts.get("max_concepts", self.max_concepts))
        count = bool(opts.get("count_people", True)) and self.face_counter is not None
        if count and images is None:
            raise ReasonError("images_needed", "alt-text counts people on the images: pass them with the features")
        x = check_features(features, images, self.embedder.num_features)
        people = self._people(images, len(x), count)
        logits = hashtag_head_logits(self.head, x)
        probs = self.calibrator.probabilities(logits)
        scores = self.guard.scores(logits, x) if self.guard else None
        familiar = scores >= self.guard.threshold if self.guard and scores is not None else np.ones(len(x), dtype=bool)
        return [self._answer(row, bool(familiar[i]), None if scores is None else float(scores[i]), people[i], limit)
                for i, row in enumerate(probs)]

    def _people(self, images: Sequence[Image.Image] | None, n: int, count: bool) -> list[int | None]:
        """People per image when asked and a counter is installed, else None per image."""
        if not count or self.face_counter is None or images is None:
            return [None] * n
        return [self.face_counter(image) for image in images]

    def _answer(self, probs: np.ndarray, familiar: bool, score: float | None, people: int | None,
                limit: int) -> dict[str, Any]:
        said = probs[self.indices]
        hit = np.flatnonzero(said >= self.thresholds) if familiar else np.zeros(0, dtype=np.int64)
        hit = hit[np.argsort(-said[hit], kind="stable")][:limit]
        concepts = [{"name": self.names[j], "probability": round(float(said[j]), 4)} for j in hit]
        answer: dict[str, Any] = {"alt_text": sentence(people, [c["name"] for c in concepts]), "concepts": concepts,
                                  "people": people}
        if not concepts:
            answer["why"] = self._why(probs, said, familiar, score)
        return answer

    def _why(self, probs: np.ndarray, said: np.ndarray, familiar: bool, score: float | None) -> dict[str, Any]:
        """Why no concept is said, and which came closest (its probability against its threshold)."""
        if len(self.indices):
            j = int(np.argmax(said / np.maximum(self.thresholds, 1e-12)))   # the largest share of its threshold
            closest = {"name": self.names[j], "probability": round(float(said[j]), 4),
                       "threshold": round(float(self.thresholds[j]), 4)}
        else:
            j = int(np.argmax(probs))
            closest = {"name": self.labels[j], "probability": round(float(probs[j]), 4), "threshold": None}
        if not len(self.indices):
            reason, detail = "no_precise_concepts", ("calibration found no concept precise enough to say "
                                                     f"(0 of {len(self.labels)} labels reached the target)")
        elif not familiar and self.guard is not None:
            reason, detail = "unfamiliar", (f"the photo does not look like what the model knows (open-set "
                                            f"{self.guard.score} {score:.3f} < {self.guard.threshold:.3f})")
        else:
            reason, detail = "below_threshold", "no concept is shown with enough confidence"
        return {"reason": reason, "detail": detail, "closest": closest}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "concepts": self.names, "max_concepts": self.max_concepts,
                "open_set_guard": self.guard.to_dict() if self.guard else None,
                "face_detector": ("MTCNN (facenet-pytorch), sure faces only, counts only" if self.face_counter
                                  else "none installed: people are not counted (pip install --no-deps "
                                       "facenet-pytorch)")}


def _check_max(n: int) -> int:
    if n < 0:
        raise ReasonError("bad_option", f"max_concepts must be >= 0, got {n}")
    return int(n)
