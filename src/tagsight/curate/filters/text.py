"""Text-heavy images (memes, screenshots, posters): the share of the picture covered by detected text.

Text regions come from the PP-OCR models that ship inside ``rapidocr-onnxruntime`` (ONNX weights in
the wheel, no download). Detection alone fires on fine textures (grass, fur, brass) in photo
thumbnails: on imagenette-160 it flagged springer spaniels on lawns as 40% text. So each detected
region is also read by the recogniser, and only regions read as at least ``min_chars`` letters or
digits with confidence >= ``min_confidence`` count. The score is the area of the union of those
regions over the image area, measured on the image scaled to ``measure_side`` on its long side. Install: ``pip install rapidocr-onnxruntime --no-deps`` plus its
dependencies without ``opencv-python`` (it would replace ``opencv-python-headless<5`` and its
Haar cascades); ``scripts/setup.sh`` does this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from tagsight.curate.filters.base import FILTERS, Candidate, Filter, fit_long_side

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install --no-deps rapidocr-onnxruntime && pip install onnxruntime pyclipper shapely six"


@lru_cache(maxsize=4)
def _engine(side: int) -> Any:
    """The detector, resizing its input to ``side`` on the long side (its default scales the SHORT side up to
    736 px: 30x slower on thumbnails, with nothing gained), one thread per process."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise ImportError(f"the text filter needs the PP-OCR detector: {INSTALL_HINT}") from exc
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return RapidOCR(det_limit_side_len=side, det_limit_type="max", intra_op_num_threads=1)


def text_boxes(img: Image.Image, min_confidence: float = 0.6,
               min_chars: int = 2) -> list[list[tuple[float, float]]]:
    """Quadrilaterals (4 corner points) of regions PP-OCR detects AND reads as text."""
    side = max(32, -(-max(img.size) // 32) * 32)
    found, _ = _engine(side)(np.asarray(img.convert("RGB")), use_det=True, use_cls=False, use_rec=True)
    return [[(float(x), float(y)) for x, y in box] for box, text, score in (found or [])
            if float(score) >= min_confidence and sum(ch.isalnum() for ch in text) >= min_chars]


def covered_fraction(boxes: list[list[tuple[float, float]]], size: tuple[int, int]) -> float:
    """Share of a ``size`` image covered by the union of the polygons ``boxes``."""
    if not boxes:
        return 0.0
    mask = Image.new("1", size, 0)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        draw.polygon(box, fill=1)
    return float(np.asarray(mask, dtype=bool).mean())


@FILTERS.register("text")
@dataclass
class TextFilter(Filter):
    max_text_fraction: float = 0.12
    measure_side: int = 256
    min_confidence: float = 0.6
    min_chars: int = 2
    name = "text"
    metrics = ("text_fraction", "text_boxes")
    cost = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_text_fraction <= 1.0 or self.measure_side < 32:
            raise ValueError("text: max_text_fraction must be in [0, 1] and measure_side >= 32")
        if not 0.0 <= self.min_confidence <= 1.0 or self.min_chars < 1:
            raise ValueError("text: min_confidence must be in [0, 1] and min_chars >= 1")

    def score(self, c: Candidate) -> dict[str, float]:
        img = fit_long_side(c.image.convert("RGB"), self.measure_side, 8, Image.Resampling.BICUBIC)
        boxes = text_boxes(img, self.min_confidence, self.min_chars)
        return {"text_fraction": covered_fraction(boxes, img.size), "text_boxes": float(len(boxes))}

    def reject(self, s: dict[str, float]) -> str | None:
        return "text_heavy" if s["text_fraction"] > self.max_text_fraction else None
