"""Aesthetic score: a small ridge head on frozen embeddings, trained on specialists' ratings.

Before anyone has rated a photo, the score is a documented prior from the classical measures,
each mapped to [0, 1] and averaged with equal weight:

- sharpness ``clip(log10(1 + laplacian_var) / 3)`` (1 at a Laplacian variance of ~1,000);
- contrast ``clip(rms_contrast / 0.25)``;
- colour ``clip(colourfulness / 60)`` (Hasler-Suesstrunk "quite colourful");
- exposure ``1 - 2 |mean_luminance - 0.5|``.

With ratings (``tagsight curate aesthetic-train``), the head predicts a photo's mean specialist
rating (1-5) from the backbone's embedding; the filter then reports it rescaled to [0, 1].
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from PIL import Image

from tagsight.curate.filters.base import FILTERS, Candidate, Filter, fit_long_side
from tagsight.curate.filters.blur import BlurFilter
from tagsight.curate.filters.photometric import colourfulness
from tagsight.storage import dataset_path, read_bytes, write_text

log = logging.getLogger(__name__)


PRIOR_MEASURES = ("sharpness", "contrast", "colour", "exposure")


def prior_measures(c: Candidate) -> dict[str, float]:
    """The four parts of the classical prior, each in [0, 1] (see the module docstring)."""
    y = c.grey()
    parts = [np.log10(1.0 + BlurFilter().score(c)["laplacian_var"]) / 3.0, y.std() / 0.25,
             colourfulness(c.rgb()) / 60.0, 1.0 - 2.0 * abs(float(y.mean()) - 0.5)]
    return dict(zip(PRIOR_MEASURES, np.clip(parts, 0.0, 1.0).tolist()))


def aesthetic_prior(c: Candidate) -> float:
    """The classical prior in [0, 1]: the mean of ``prior_measures``."""
    return float(np.mean(list(prior_measures(c).values())))


def image_prior_measures(img: Image.Image) -> dict[str, float]:
    """``prior_measures`` of a plain image (not a catalog sample), e.g. a generated one.

    The image is first resized (bicubic) so its long side is the blur filter's ``measure_side``
    (128 px), the size catalog photos are measured at: a 32 px sample and a 128 px photo are then
    measured at one scale. Bicubic interpolation adds no hard steps of its own (the blur filter's BOX
    resampling would turn an upscaled pixel grid into hard steps and inflate the sharpness of tiny
    images). An upscaled sample is still smoother than a photo stored at 128 px, so compare
    generated images with each other (before with after), not with the curation histograms.
    """
    sized = fit_long_side(img.convert("RGB"), BlurFilter.measure_side, 3, Image.Resampling.BICUBIC)
    return prior_measures(Candidate(key="", post_key="", load=lambda: sized))


@dataclass
class RidgeHead:
    """``rating = x_std @ w + b`` over standardised features, fitted in closed form."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: float
    backbone: str
    img_size: int | None
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float, backbone: str, img_size: int | None) -> RidgeHead:
        if len(x) < 2:
            raise ValueError(f"need ratings of at least 2 photos to fit an aesthetic head, got {len(x)}")
        mean, std = x.mean(0), x.std(0) + 1e-6
        z = (x - mean) / std
        bias = float(y.mean())
        w = np.linalg.solve(z.T @ z + l2 * len(z) * np.eye(z.shape[1]), z.T @ (y - bias))
        return cls(mean, std, w, bias, backbone, img_size)

    def predict(self, x: np.ndarray) -> np.ndarray:
        ratings: np.ndarray = ((x - self.mean) / self.std) @ self.weight + self.bias
        return ratings

    def score_images(self, images: list[Image.Image]) -> np.ndarray:
        """The predicted rating of each image rescaled from 1-5 to [0, 1] (the filter's ``aesthetic`` score)."""
        ratings = self.predict(embed(images, self.backbone, self.img_size))
        return np.clip((ratings - 1.0) / 4.0, 0.0, 1.0)

    def save(self, path: str | Path) -> str | Path:
        """Write the head file to a local path (atomically) or an fsspec URL (one object put whole)."""
        data = {"backbone": self.backbone, "img_size": self.img_size, "bias": self.bias, "stats": self.stats,
                **{k: getattr(self, k).tolist() for k in ("mean", "std", "weight")}}
        return write_text(dataset_path(path) if isinstance(path, str) else path, json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> RidgeHead:
        """A head file, local or at an fsspec URL (read through ``tagsight.storage.read_bytes``)."""
        d = json.loads(read_bytes(dataset_path(path) if isinstance(path, str) else path))
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("mean", "std", "weight")}
        return cls(**arrays, bias=float(d["bias"]), backbone=d["backbone"], img_size=d["img_size"],
                   stats=d.get("stats", {}))


def embed(images: list[Image.Image], backbone_spec: str, img_size: int | None, batch_size: int = 64) -> np.ndarray:
    """Frozen embeddings ``[N, D]`` of PIL images with the backbone's eval transform."""
    import torch

    from tagsight.data.transforms import eval_transform
    from tagsight.eval.backbones import load_backbone

    backbone = load_backbone(backbone_spec, img_size)
    transform = eval_transform(backbone.data_config)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = torch.stack([transform(img, torch.Generator()) for img in images[i:i + batch_size]])
            out.append(backbone(batch).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, backbone.num_features), np.float32)


@FILTERS.register("aesthetic")
@dataclass
class AestheticFilter(Filter):
    """Reject below ``min_score`` in [0, 1]: the trained head's rating when ``head`` is a file, else the prior."""

    min_score: float = 0.0
    head: str | None = None
    name = "aesthetic"
    metrics = ("aesthetic", "aesthetic_prior")
    cost = 20
    _scores: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"aesthetic: min_score must be in [0, 1], got {self.min_score}")

    def prepare(self, candidates: list[Candidate]) -> None:
        self._scores = {}
        if self.head:
            scores = RidgeHead.load(self.head).score_images([c.image for c in candidates])
            self._scores = {c.key: float(s) for c, s in zip(candidates, scores)}

    def score(self, c: Candidate) -> dict[str, float]:
        prior = aesthetic_prior(c)
        return {"aesthetic": self._scores.get(c.key, prior), "aesthetic_prior": prior}

    def reject(self, s: dict[str, float]) -> str | None:
        return "low_aesthetic" if s["aesthetic"] < self.min_score else None
