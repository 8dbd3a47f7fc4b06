"""``ResNetHashtagsStandIn``: an App of the real cost of the small-preset hashtag model, for the load benchmark.

A randomly initialised timm resnet18 at 64 px with a linear head over 240 labels (the size of the
``cpu_small`` preset's model), preprocessing like serving will (shorter side to 64, centre crop,
normalise), answering the top-5 labels with softmax scores. It is a STAND-IN, not the hashtags app
of ``tagsight.apps`` (built on another branch): same compute per image, meaningless labels. Rerun
the benchmark with ``--bundle`` once the real apps are merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from tagsight.apps.base import App
from tagsight.apps.embedder import Embedder, FeatureApp
from tagsight.models.backbone import create_backbone
from tagsight.models.heads import LinearHead

MULTI_APP_NAMES = ("hashtags", "alt-text", "categorize", "moderate")


class ResNetHashtagsStandIn(App):
    name = "hashtags"

    def __init__(self, arch: str = "resnet18", size: int = 64, num_labels: int = 240, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.backbone = create_backbone(arch, img_size=size).eval()
        self.head = LinearHead(self.backbone.num_features, num_labels).eval()
        self.size, self.labels = size, [f"label_{i:03d}" for i in range(num_labels)]
        cfg = self.backbone.data_config
        self.mean = np.array(cfg.mean, dtype=np.float32) * 255
        self.inv_std = 1 / (np.array(cfg.std, dtype=np.float32) * 255)

    def _tensor(self, img: Image.Image) -> np.ndarray:
        w, h = img.size
        scale = self.size / min(w, h)
        img = img.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.Resampling.BILINEAR)
        left, top = (img.width - self.size) // 2, (img.height - self.size) // 2
        arr = np.asarray(img.crop((left, top, left + self.size, top + self.size)), dtype=np.float32)
        return ((arr - self.mean) * self.inv_std).transpose(2, 0, 1)

    @torch.inference_mode()
    def predict(self, images: Sequence[Image.Image], k: int = 5) -> list[dict[str, Any]]:
        if not isinstance(k, int) or not 1 <= k <= len(self.labels):
            raise ValueError(f"k must be an integer in [1, {len(self.labels)}], got {k!r}")
        batch = torch.from_numpy(np.stack([self._tensor(im) for im in images]))
        probs = self.head(self.backbone(batch)).softmax(dim=1)
        scores, idx = probs.topk(k, dim=1)
        return [{"hashtags": [{"tag": self.labels[i], "score": round(float(s), 4)} for s, i in zip(srow, irow)]}
                for srow, irow in zip(scores.tolist(), idx.tolist())]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "stand_in": True, "arch": self.backbone.name, "input_size": self.size,
                "num_labels": len(self.labels)}


class StandInHead(FeatureApp):
    """A random linear head over a shared ``Embedder``: the top-``k`` of ``num_labels`` placeholder labels.

    Several of them over one embedder are the multi-app stand-in (``stand_in_apps``): each costs a head,
    the backbone is what ``/v1/analyze`` runs once for all of them.
    """

    options = {"k": int}

    def __init__(self, name: str, embedder: Embedder, num_labels: int = 240, seed: int = 0) -> None:
        super().__init__(embedder)
        self.name = name
        torch.manual_seed(seed)
        self.head = LinearHead(embedder.num_features, num_labels).eval()
        self.labels = [f"{name}_{i:03d}" for i in range(num_labels)]

    def check_option_values(self, options: dict[str, Any]) -> None:
        from tagsight.fsio import ReasonError

        if not 1 <= options.get("k", 5) <= len(self.labels):
            raise ReasonError("bad_option", f"k must be in [1, {len(self.labels)}], got {options['k']}")

    @torch.inference_mode()
    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        k = self.check_options(options).get("k", 5)
        probs = self.head(torch.from_numpy(np.asarray(features, dtype=np.float32))).softmax(dim=1)
        scores, idx = probs.topk(k, dim=1)
        return [{"labels": [{"label": self.labels[i], "score": round(float(s), 4)} for s, i in zip(srow, irow)]}
                for srow, irow in zip(scores.tolist(), idx.tolist())]


def stand_in_apps(n: int, arch: str = "resnet18", size: int = 64) -> dict[str, App]:
    """``n`` (1 to 4) stand-in apps sharing one random ``arch`` backbone at ``size`` px, as a bundle's apps do."""
    if not 1 <= n <= len(MULTI_APP_NAMES):
        raise ValueError(f"the multi-app stand-in has 1 to {len(MULTI_APP_NAMES)} apps, got {n}")
    torch.manual_seed(0)
    embedder = Embedder(create_backbone(arch, img_size=size))
    return {name: StandInHead(name, embedder, seed=i + 1) for i, name in enumerate(MULTI_APP_NAMES[:n])}
