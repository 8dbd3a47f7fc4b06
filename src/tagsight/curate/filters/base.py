"""The filter interface: score a sample, then decide from the scores with a stable reason code.

A filter reads what a sample offers (``Candidate``: decoded image, catalog row, metadata) and
returns named scores; ``reject(scores)`` returns a reason code when the sample fails, else None.
Filters are built by name from ``FILTERS`` with their own validated dataclass settings, so a chain
is a YAML list (``configs/curate_default.yaml``). A filter that has nothing to judge (no likes in
the source, no moderation head configured) says so with ``applies`` and is recorded as skipped.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from tagsight.registry import Registry


@dataclass
class Candidate:
    """One sample under curation: its key, post key, stored image (decoded on first use) and catalog facts."""

    key: str
    post_key: str
    load: Callable[[], Image.Image]
    media: dict[str, Any] = field(default_factory=dict)   # the catalog media row (source size, phash, ...)
    post: dict[str, Any] = field(default_factory=dict)    # the catalog post row (likes, license, ...)
    _image: Image.Image | None = field(default=None, repr=False)
    _grey: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            self._image = self.load()
        return self._image

    def release(self) -> None:
        """Drop the decoded pixels (the chain keeps metadata of every candidate, pixels of one pass at most)."""
        self._image = self._grey = None

    def grey(self) -> np.ndarray:
        """Luminance in [0, 1] as float32 ``[H, W]`` (Rec. 601 weights), computed once."""
        if self._grey is None:
            self._grey = np.asarray(self.image.convert("L"), dtype=np.float32) / 255.0
        return self._grey

    def rgb(self) -> np.ndarray:
        return np.asarray(self.image.convert("RGB"), dtype=np.float32)


def fit_long_side(img: Image.Image, side: int, min_px: int, resample: Image.Resampling) -> Image.Image:
    """``img`` scaled so its long side is ``side`` (each side at least ``min_px``): measures that depend on scale
    are taken at one size whatever the stored thumbnail's."""
    scale = side / max(img.size)
    return img.resize((max(min_px, round(img.width * scale)), max(min_px, round(img.height * scale))), resample)


class Filter(abc.ABC):
    """A named, configured filter; ``metrics`` lists the score names it writes to the catalog."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    cost: ClassVar[int] = 1          # relative cost: the chain runs cheap filters first

    def prepare(self, candidates: list[Candidate]) -> None:  # noqa: B027 (optional hook)
        """See every candidate that reached this filter once before scoring (e.g. popularity ranks)."""

    def applies(self, candidate: Candidate) -> bool:
        return True

    @abc.abstractmethod
    def score(self, candidate: Candidate) -> dict[str, float]:
        """The filter's metrics for one candidate."""

    @abc.abstractmethod
    def reject(self, scores: dict[str, float]) -> str | None:
        """A reason code when the scores fail the filter, else None."""


FILTERS: Registry[Filter] = Registry("curation filter")
