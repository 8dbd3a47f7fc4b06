"""Labelled images (class folders or shards) as an exactly resumable, rank/worker-split training stream.

The pattern of ``tagsight.data.pipeline.HashtagStream`` for ``LabelledImages``: the ``train`` split's
global order of epoch ``e`` is a permutation of the images seeded by ``(seed, e)`` (repeated or cut
to ``epoch_length``), identical on every rank; rank ``r`` of ``W`` takes positions ``r, r + W, ...``
truncated to ``epoch_length // W`` and cut into full batches; DataLoader worker ``w`` of ``K``
produces whole batches ``w, w + K, ...``; each sample's augmentation generator is seeded by
``(seed, epoch, position)``. So ``set_position(epoch, batches_done)`` resumes exactly. The ``eval``
split yields every image once in dataset order (ranks by position, last batch partial).
Items are ``{"image", "label", "index"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from tagsight.collectives import rank_world
from tagsight.data.pipeline import (ResumableStream, Transform, augmentation_seed, rank_positions,
                                    split_batches)
from tagsight.eval.datasets import LabelledImages

STREAM_SPLITS = ("train", "eval")


@dataclass(frozen=True)
class LabelledStreamConfig:
    """``epoch_length``: samples per epoch over all ranks (0 = the dataset's size); ``batch_size``: per rank."""

    batch_size: int
    epoch_length: int = 0
    seed: int = 0
    split: str = "train"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epoch_length < 0:
            raise ValueError(f"batch_size must be >= 1 and epoch_length >= 0, got {self.batch_size}, {self.epoch_length}")
        if self.split not in STREAM_SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {STREAM_SPLITS}")


class LabelledStream(ResumableStream):
    """``LabelledImages`` as ``{"image", "label", "index"}`` items in a resumable, rank-split order."""

    def __init__(self, images: LabelledImages, transform: Transform, cfg: LabelledStreamConfig,
                 rank: int | None = None, world_size: int | None = None) -> None:
        super().__init__()
        if not len(images):
            raise ValueError("the labelled image set is empty")
        self.images, self.transform, self.cfg = images, transform, cfg
        default_rank, default_world = rank_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self.epoch, self.batches_done = 0, 0

    @property
    def epoch_length(self) -> int:
        return self.cfg.epoch_length or len(self.images)

    def order(self, epoch: int) -> np.ndarray:
        """The global order of image indices of ``epoch`` (identical on every rank)."""
        n = len(self.images)
        if self.cfg.split == "eval":
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng([self.cfg.seed, epoch])
        repeats = -(-self.epoch_length // n)
        return np.concatenate([rng.permutation(n) for _ in range(repeats)])[: self.epoch_length].astype(np.int64)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch`` as arrays of global positions in ``order(epoch)``."""
        train = self.cfg.split == "train"
        positions = rank_positions(len(self.order(epoch)), self.rank, self.world_size, equal=train)
        return split_batches(positions, self.cfg.batch_size, drop_last=train)

    def item(self, index: int, position: int) -> dict[str, Any]:
        """One image transformed with its own seeded generator, and its class index."""
        generator = torch.Generator().manual_seed(augmentation_seed(self.cfg.seed, self.epoch, position))
        image = self.transform(self.images.load(index), generator)
        return {"image": image, "label": int(self.images.labels[index]), "index": index}


def labelled_loader(stream: LabelledStream, num_workers: int = 0) -> DataLoader[dict[str, Any]]:
    """A DataLoader over ``stream`` yielding the rank's batches in exact order for any ``num_workers``."""
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(stream, batch_size=stream.cfg.batch_size, num_workers=num_workers, drop_last=False)
