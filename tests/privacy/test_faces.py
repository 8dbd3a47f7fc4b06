"""Face blurring: the blur mechanics with a stubbed detector, and the real Haar cascade on a real photo."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from tagsight.privacy import faces


def noise(size: int = 64, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def grace_hopper(side: int) -> Image.Image:
    """Matplotlib's bundled portrait photo, thumbnailed to ``side`` pixels."""
    mpl = pytest.importorskip("matplotlib")
    path = os.path.join(mpl.get_data_path(), "sample_data", "grace_hopper.jpg")
    if not os.path.exists(path):
        pytest.skip(f"matplotlib's sample photo {path} is not installed")
    img = Image.open(path).convert("RGB")
    img.thumbnail((side, side))
    return img


def test_blur_changes_the_box_and_nothing_else(monkeypatch):
    img = noise()
    before = np.asarray(img, dtype=int)
    monkeypatch.setattr(faces, "detect_faces", lambda im: [(20, 20, 20, 10)])
    out, n = faces.blur_faces(img)
    after = np.asarray(out, dtype=int)
    assert n == 1 and out.size == img.size and out.mode == "RGB"
    assert np.array_equal(np.asarray(img, dtype=int), before)  # the input is not modified
    left, top, right, bottom = 16, 18, 44, 32  # the box grown by 20% per side
    inside = np.abs(after[top:bottom, left:right] - before[top:bottom, left:right]).mean()
    assert inside > 40  # noise has a mean absolute deviation of ~64; a blurred patch is nearly flat
    assert after[top:bottom, left:right].std(axis=(0, 1)).max() < 20
    mask = np.ones(before.shape[:2], bool)
    mask[top:bottom, left:right] = False
    assert np.array_equal(after[mask], before[mask])


def test_boxes_at_the_border_are_clipped():
    out = faces.blur_boxes(noise(32), [(24, 24, 16, 16)])
    assert out.size == (32, 32)


def test_no_face_returns_the_input(monkeypatch):
    img = noise()
    monkeypatch.setattr(faces, "detect_faces", lambda im: [])
    assert faces.blur_faces(img) == (img, 0)


def test_strength_is_validated():
    with pytest.raises(ValueError, match="strength"):
        faces.blur_boxes(noise(), [(0, 0, 8, 8)], strength=0)


def test_missing_opencv_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match="opencv-python-headless<5"):
        faces.count_faces(noise())


def test_real_cascade_finds_and_blurs_a_face():
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    img = grace_hopper(128)
    boxes = faces.detect_faces(img)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert w >= 24 and 0.2 < (x + w / 2) / img.width < 0.8  # one face, roughly central, as in the photo
    out, n = faces.blur_faces(img)
    assert n == 1 and faces.count_faces(out) == 0


def test_real_cascade_finds_nothing_in_noise():
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    assert faces.count_faces(noise(96)) == 0
