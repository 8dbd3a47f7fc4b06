"""The generator's input stream: every post of a split at the generator's resolution, with its tokens.

``TokenStream`` is a ``UniformStream`` (uniform draws over ``all`` posts of the split, or the
``labelled`` ones; exact positions and per-sample augmentation seeds as in ``data/pipeline.py``)
whose items are ``{"image": uint8 [3, S, S], "tokens": int64 [T], "index"}``; ``collate`` maps the
images to [-1, 1] (``data_config`` mean = std = 0.5). Training crops are random-resized (area
``crop_scale``) and flipped; held-out images are centre crops. Tokens come from each sample's
hashtags and, when ``captions`` is on, the captions reviewers wrote for it
(``catalog/reviews.parquet``, the latest caption of each reviewer, ``tagsight.curate.reviews``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tagsight.curate.reviews import latest, read_reviews
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig
from tagsight.data.transforms import EncodedTransform, EvalTransform, TrainTransform
from tagsight.data.views import UniformStream
from tagsight.generate.conditioning import NULL, TokenTable
from tagsight.generate.config import DiffusionConfig

log = logging.getLogger(__name__)


def reviewer_captions(dataset_dir: str | Path) -> dict[str, list[str]]:
    """Sample key -> the non-empty captions specialists wrote for it (each reviewer's latest)."""
    out: dict[str, list[str]] = {}
    for (key, _), row in sorted(latest(read_reviews(dataset_dir), "specialist").items()):
        if (row.get("caption") or "").strip():
            out.setdefault(key, []).append(row["caption"].strip())
    return out


class TokenStream(UniformStream[EncodedTransform]):
    """Images at the generator's resolution with their conditioning tokens (see the module docstring)."""


    def __init__(self, index: SampleIndex, table: TokenTable, transform: EncodedTransform, cfg: StreamConfig,
                 select: str = "all", captions: bool = True, rank: int | None = None,
                 world_size: int | None = None) -> None:
        super().__init__(index, table.vocab, transform, cfg, select=select, rank=rank, world_size=world_size)
        by_key = reviewer_captions(index.dataset_dir) if captions else {}
        rows = [table.row(table.sample_ids(tags, by_key.get(key, ()))) for key, tags in zip(index.keys, index.hashtags)]
        self.tokens = rows
        conditioned = sum(int(rows[i][0]) != NULL for i in self.candidates)
        log.info("%s split: %d of %d samples have tokens (%d with reviewer captions); the rest train the "
                 "unconditional model", cfg.split, conditioned, len(self.candidates),
                 sum(1 for i in self.candidates if index.keys[i] in by_key))

    def item(self, index: int, position: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.cfg.seed, self.epoch, position])
        image = self.transform.pixels(self.index.read_jpeg(index), rng)
        return {"image": image, "tokens": self.tokens[index], "index": index}


def image_transform(cfg: DiffusionConfig, data_config: Any, split: str) -> TrainTransform | EvalTransform:
    """Random-resized crop (area ``crop_scale``) + flip for training; the centre crop otherwise."""
    return TrainTransform(data_config, cfg.crop_scale) if split == "train" else EvalTransform(data_config)
