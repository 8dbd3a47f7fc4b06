"""One backbone forward for several apps: the shared embedder and the base of apps that work on its features.

``Embedder.embed(images)`` runs the backbone (eval mode, no grad) on the evaluation transform of its
data config, in batches, and returns float32 features ``[B, D]``. A ``FeatureApp`` answers from
those features (``predict_features``), so a caller serving several apps embeds a batch once and
hands the same features to each (``tagsight.apps.bundle.Bundle.predict``); ``predict(images)``
embeds and answers in one call, as the ``App`` interface requires.
"""

from __future__ import annotations

import abc
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from tagsight.apps.base import App
from tagsight.data.transforms import eval_transform
from tagsight.models.backbone import backbone_fingerprint
from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone
from tagsight.progress import Progress

if TYPE_CHECKING:  # the dataset index is a fitting-time input; serving never loads it
    from tagsight.data.index import SampleIndex
    from tagsight.engines import Engine


class Embedder:
    """A frozen backbone with its evaluation transform; ``embed`` maps PIL images to features."""

    def __init__(self, backbone: Backbone, device: str = "cpu", batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.transform = eval_transform(backbone.data_config)
        self.batch_size = batch_size
        self._fingerprint: str | None = None

    @property
    def num_features(self) -> int:
        return self.backbone.num_features

    @property
    def fingerprint(self) -> str:
        """Hash of the backbone's weights and data config (heads and indexes record it to refuse a mismatch)."""
        if self._fingerprint is None:
            self._fingerprint = backbone_fingerprint(self.backbone)
        return self._fingerprint

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Features ``[len(images), D]`` (float32), in input order."""
        out = [np.zeros((0, self.num_features), dtype=np.float32)]
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            x = torch.stack([self.transform(_rgb(img)) for img in chunk]).to(self.device)
            out.append(self.backbone(x).float().cpu().numpy())
        return np.concatenate(out)


EMBED_BLOCK_BATCHES = 4  # an engine's block: this many whole batches, so blocks hold the batches of one process


def embed_block(embedder: Embedder, index: SampleIndex, rows: list[int]) -> np.ndarray:
    """The per-block function of embeddings on an engine: features of the samples ``rows``, batch by batch as
    ``embed_samples`` computes them in one process."""
    return np.concatenate([np.zeros((0, embedder.num_features), dtype=np.float32)] + [
        embedder.embed([Image.open(io.BytesIO(index.read_jpeg(i))) for i in rows[k:k + embedder.batch_size]])
        for k in range(0, len(rows), embedder.batch_size)])


def _embed_on(engine: Engine, index: SampleIndex, rows: np.ndarray, embedder: Embedder, desc: str) -> np.ndarray:
    if embedder.device.type != "cpu":
        raise ValueError(f"embeddings on the {engine.name} engine run on the workers' CPUs; got device {embedder.device}")
    size = EMBED_BLOCK_BATCHES * embedder.batch_size
    blocks = [[int(i) for i in rows[k:k + size]] for k in range(0, len(rows), size)]
    parts: dict[int, np.ndarray] = {}
    with Progress(len(rows), desc, "img") as progress:
        for k, feats in engine.map(embed_block, ((b,) for b in blocks), common=(embedder, index)):
            parts[k] = feats
            progress.update(len(feats))
    return np.concatenate([np.zeros((0, embedder.num_features), dtype=np.float32)]
                          + [parts[k] for k in range(len(blocks))])


def embed_samples(index: SampleIndex, rows: np.ndarray, embedder: Embedder, desc: str,
                  engine: Engine | None = None) -> np.ndarray:
    """Features ``[len(rows), D]`` of the dataset samples ``rows`` (positions in ``index``), with progress;
    ``engine`` embeds them by blocks of whole batches (the same feature bits)."""
    if engine is not None:
        return _embed_on(engine, index, rows, embedder, desc)
    chunks = [np.zeros((0, embedder.num_features), dtype=np.float32)]
    with Progress(len(rows), desc, "img") as progress:
        for start in range(0, len(rows), embedder.batch_size):
            chunk = rows[start:start + embedder.batch_size]
            chunks.append(embedder.embed([Image.open(io.BytesIO(index.read_jpeg(int(i)))) for i in chunk]))
            progress.update(len(chunk))
    return np.concatenate(chunks)


def _rgb(img: Image.Image) -> Image.Image:
    if not isinstance(img, Image.Image):
        raise ReasonError("not_an_image", f"expected a PIL image, got {type(img).__name__}")
    return img if img.mode == "RGB" else img.convert("RGB")


def as_bool(value: Any) -> bool:
    """A per-request flag: a bool, 0/1, or "true"/"false"/"yes"/"no"/"1"/"0" (query strings)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


as_bool.__name__ = "boolean"


class FeatureApp(App):
    """An app that answers from backbone features; ``options`` names the per-request settings it accepts."""

    options: dict[str, Any] = {}

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def predict(self, images: Sequence[Image.Image], **options: Any) -> list[dict[str, Any]]:
        return self.predict_features(self.embedder.embed(images), images, **options)

    @abc.abstractmethod
    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        """One answer per row of ``features`` (the embedder's output for ``images``, in order)."""

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` converted to their types; ReasonError naming an unknown or ill-typed option."""
        out = {}
        for key, value in options.items():
            if key not in self.options:
                raise ReasonError("unknown_option", f"app {self.name!r} has no option {key!r} "
                                                    f"(options: {', '.join(sorted(self.options)) or 'none'})")
            try:
                out[key] = self.options[key](value)
            except (TypeError, ValueError):
                raise ReasonError("bad_option", f"app {self.name!r}: option {key}={value!r} is not a "
                                                f"{self.options[key].__name__}") from None
        self.check_option_values(out)
        return out

    def check_option_values(self, options: dict[str, Any]) -> None:
        """ReasonError ``bad_option`` for a typed option value the app cannot use (e.g. ``k=0``); none by default."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backbone": self.embedder.backbone.name,
                "backbone_fingerprint": self.embedder.fingerprint[:16], "options": sorted(self.options)}


def check_features(features: np.ndarray, images: Sequence[Image.Image] | None, dim: int) -> np.ndarray:
    """``features`` as float32 ``[N, dim]``, matching ``images`` in length when given."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ReasonError("bad_features", f"expected features [N, {dim}], got {list(x.shape)}")
    if images is not None and len(images) != len(x):
        raise ReasonError("bad_features", f"{len(x)} feature rows for {len(images)} images")
    return x
