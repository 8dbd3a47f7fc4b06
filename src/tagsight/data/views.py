"""A label-free stream for self-supervised objectives: every sample of a split, as augmented views.

``ViewStream`` is a ``UniformStream``: a ``PostStream`` (data/pipeline.py) that ignores hashtags and
draws uniformly (SEER samples random public photos) from the samples of the split selected by ``select``:

* ``all``: every post of the split, whether or not its hashtags map to a vocabulary label (the
  uncurated pool);
* ``labelled``: only posts with at least one vocabulary label (the pool hashtag pretraining sees),
  to measure what the curation by labels does to self-supervised features.

Order, rank split, worker split, exact positions and per-sample augmentation seeds are those of
every ``PostStream``; the generator's ``TokenStream`` is a ``UniformStream`` too. Items are ``{"image", ["local"], "index"}``: the transform
returns either one tensor (evaluation: ``"image"`` ``[3, S, S]``) or a dict of views (multi-crop:
``"image"`` ``[n_global, 3, G, G]`` and ``"local"`` ``[n_local, 3, L, L]``).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import torch
from PIL import Image

from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import PostStream, StreamConfig, TransformT, ViewTransform, augmentation_seed
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

SELECTIONS = ("all", "labelled")


class UniformStream(PostStream[TransformT]):
    """Samples of ``select`` (``all`` or ``labelled``) drawn uniformly, whatever their hashtags."""

    def __init__(self, index: SampleIndex, vocab: Vocabulary, transform: TransformT,
                 cfg: StreamConfig, select: str = "all", rank: int | None = None,
                 world_size: int | None = None) -> None:
        if select not in SELECTIONS:
            raise ValueError(f"data.select {select!r} is not one of {SELECTIONS}")
        self.select = select
        if cfg.sampling != "none":
            log.info("sampling %r does not apply to a label-free stream: samples are drawn uniformly", cfg.sampling)
        super().__init__(index, vocab, transform, cfg, rank=rank, world_size=world_size)

    def eligible(self) -> np.ndarray:
        """Every sample for ``all``, the labelled ones for ``labelled``."""
        labelled = self.labelled_mask()
        return labelled if self.select == "labelled" else np.ones_like(labelled)


class ViewStream(UniformStream[ViewTransform]):
    """Uniformly drawn samples of ``select`` (``all`` or ``labelled``) as views, without targets."""

    def item(self, index: int, position: int) -> dict[str, Any]:
        """One sample decoded and transformed with its own seeded generator; no target."""
        generator = torch.Generator().manual_seed(augmentation_seed(self.cfg.seed, self.epoch, position))
        with Image.open(io.BytesIO(self.index.read_jpeg(index))) as img:
            views = self.transform(img, generator)
        return {**(views if isinstance(views, dict) else {"image": views}), "index": index}
