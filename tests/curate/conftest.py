"""Constructed photos for the curation tests."""

import numpy as np
import pytest
from PIL import Image, ImageDraw


def photo(seed: int = 0, size=(128, 96)) -> Image.Image:
    """A sharp, colourful, well-exposed synthetic photo: coloured shapes with edges on a gradient."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.linspace(60, 190, w)[None, :, None] * np.ones((h, 1, 3))
    img = Image.fromarray(np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.integers(0, w - 10), rng.integers(0, h - 10)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle([x, y, x + rng.integers(5, 30), y + rng.integers(5, 30)], fill=colour)
    return img


@pytest.fixture
def make_photo():
    return photo
