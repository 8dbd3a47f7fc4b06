"""Blur: variance of the Laplacian of the luminance (Pech-Pacheco et al. 2000), on a fixed-size copy.

The variance depends on image scale, so it is measured on the image resized to ``measure_side``
on its long side (the stored thumbnails differ in size). A sharp photo has strong edges and a
high variance; a defocused or motion-blurred one a low variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tagsight.curate.filters.base import FILTERS, Candidate, Filter, fit_long_side


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a ``[H, W]`` image in [0, 1], scaled to 0-255 units."""
    g = grey.astype(np.float64) * 255.0
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var()) if lap.size else 0.0


@FILTERS.register("blur")
@dataclass
class BlurFilter(Filter):
    min_laplacian_var: float = 60.0
    measure_side: int = 128
    name = "blur"
    metrics = ("laplacian_var",)

    def __post_init__(self) -> None:
        if self.min_laplacian_var < 0 or self.measure_side < 16:
            raise ValueError("blur: min_laplacian_var must be >= 0 and measure_side >= 16")

    def score(self, c: Candidate) -> dict[str, float]:
        img = fit_long_side(c.image.convert("L"), self.measure_side, 3, Image.Resampling.BOX)
        return {"laplacian_var": laplacian_variance(np.asarray(img, dtype=np.float32) / 255.0)}

    def reject(self, s: dict[str, float]) -> str | None:
        return "blurry" if s["laplacian_var"] < self.min_laplacian_var else None
