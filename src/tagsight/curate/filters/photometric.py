"""Exposure, contrast and colourfulness: three classical measures of how a photo is lit and coloured.

- exposure: mean luminance, and the share of clipped pixels (near black or near white);
- contrast: RMS contrast, the standard deviation of luminance in [0, 1];
- colourfulness: Hasler and Suesstrunk (2003), ``sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2)``
  over the opponent channels rg = R - G and yb = (R + G) / 2 - B (0-255 units; about 15 reads as
  "slightly colourful", 33 "moderately", 59 "quite", 82+ "highly").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagsight.curate.filters.base import FILTERS, Candidate, Filter


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler-Suesstrunk colourfulness of an ``[H, W, 3]`` image in 0-255."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


@FILTERS.register("exposure")
@dataclass
class ExposureFilter(Filter):
    min_mean: float = 0.12
    max_mean: float = 0.90
    max_clipped: float = 0.30
    clip_margin: float = 0.02
    name = "exposure"
    metrics = ("mean_luminance", "clipped_fraction")

    def __post_init__(self) -> None:
        if not 0 <= self.min_mean < self.max_mean <= 1 or not 0 <= self.max_clipped <= 1:
            raise ValueError("exposure: need 0 <= min_mean < max_mean <= 1 and 0 <= max_clipped <= 1")

    def score(self, c: Candidate) -> dict[str, float]:
        y = c.grey()
        clipped = float(((y <= self.clip_margin) | (y >= 1 - self.clip_margin)).mean())
        return {"mean_luminance": float(y.mean()), "clipped_fraction": clipped}

    def reject(self, s: dict[str, float]) -> str | None:
        if s["mean_luminance"] < self.min_mean:
            return "underexposed"
        if s["mean_luminance"] > self.max_mean:
            return "overexposed"
        return "clipped" if s["clipped_fraction"] > self.max_clipped else None


@FILTERS.register("contrast")
@dataclass
class ContrastFilter(Filter):
    min_rms: float = 0.05
    name = "contrast"
    metrics = ("rms_contrast",)

    def score(self, c: Candidate) -> dict[str, float]:
        return {"rms_contrast": float(c.grey().std())}

    def reject(self, s: dict[str, float]) -> str | None:
        return "low_contrast" if s["rms_contrast"] < self.min_rms else None


@FILTERS.register("colourfulness")
@dataclass
class ColourfulnessFilter(Filter):
    min_colourfulness: float = 8.0
    name = "colourfulness"
    metrics = ("colourfulness",)

    def score(self, c: Candidate) -> dict[str, float]:
        return {"colourfulness": colourfulness(c.rgb())}

    def reject(self, s: dict[str, float]) -> str | None:
        return "dull_colour" if s["colourfulness"] < self.min_colourfulness else None
