"""Fit the aesthetic head on specialists' ratings (``tagsight curate aesthetic-train``).

Each rated photo's target is its mean specialist rating (aspects and reviewers averaged, 1-5);
features are frozen embeddings of the stored image. The fit reports leave-out quality on a
seeded 20% split (Spearman rank correlation and mean absolute error) before refitting on all.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.curate.filters.aesthetic import RidgeHead, embed
from tagsight.curate.reviews import read_reviews, specialist_means
from tagsight.data.index import SampleIndex
from tagsight.storage import location


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 and ra.std() and rb.std() else float("nan")


def train_aesthetic_head(dataset_dir: str | Path, backbone: str, out: str | Path, img_size: int | None = None,
                         l2: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Fit and save the head; returns its statistics (also stored in the head file)."""
    means = specialist_means(read_reviews(dataset_dir))
    index = SampleIndex.build(dataset_dir)
    rows = [i for i, k in enumerate(index.keys) if k in means]
    if len(rows) < 5:
        raise ValueError(f"{location(dataset_dir)}: only {len(rows)} photos have specialist ratings; rate at least 5")
    images = [Image.open(io.BytesIO(index.read_jpeg(i))).convert("RGB") for i in rows]
    x = embed(images, backbone, img_size).astype(np.float64)
    y = np.asarray([means[index.keys[i]] for i in rows])
    order = np.random.default_rng(seed).permutation(len(rows))
    test, train = order[: max(1, len(rows) // 5)], order[max(1, len(rows) // 5):]
    held = RidgeHead.fit(x[train], y[train], l2, backbone, img_size).predict(x[test])
    head = RidgeHead.fit(x, y, l2, backbone, img_size)
    head.stats = {"ratings": len(rows), "heldout": len(test), "heldout_spearman": _spearman(held, y[test]),
                  "heldout_mae": float(np.abs(held - y[test]).mean()), "l2": l2}
    head.save(out)
    return head.stats
