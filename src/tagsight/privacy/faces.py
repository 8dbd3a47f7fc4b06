"""Face detection and blurring with OpenCV's bundled Haar cascade (frontal faces); counting people with MTCNN.

OpenCV is imported lazily and the cascade is loaded once per process. The cascade's detection
window is 24x24 pixels, so faces smaller than that in the image given are not found; blur runs
on the stored (resized) image, which is what leaves the machine. Haar cascades miss profiles,
tilted and occluded faces: treat blurring as harm reduction, not a guarantee.

Counting people for alt text needs the opposite trade-off: a count read to a blind person must be
right when it is said. The Haar cascade fires on textures and tiled patterns (172 "people" on a
wallpaper), so ``count_people`` uses MTCNN (Zhang et al. 2016) from ``facenet-pytorch``, whose wheel
ships its weights (``pip install --no-deps facenet-pytorch``), and keeps only faces it is at least
``PEOPLE_MIN_PROBABILITY`` sure of and at least ``PEOPLE_MIN_FACE`` pixels high. Without the package
people are not counted at all (``people_counter()`` is None), rather than counted badly.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

CASCADE_FILE = "haarcascade_frontalface_default.xml"
PEOPLE_MIN_PROBABILITY = 0.99   # MTCNN face probability a counted face needs (docs/apps.md measures it)
PEOPLE_MIN_FACE = 20            # pixels: MTCNN's smallest face, also the smallest box counted
PEOPLE_HINT = "pip install --no-deps facenet-pytorch"
INSTALL_HINT = "pip install 'opencv-python-headless<5'"
Box = tuple[int, int, int, int]  # x, y, width, height


def _cv2() -> ModuleType:
    """The cv2 module, or an ImportError that says how to install it."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(f"face detection needs OpenCV with its Haar cascades: {INSTALL_HINT}") from exc
    return cv2


@lru_cache(maxsize=1)
def _cascade() -> Any:
    """The frontal-face cascade, loaded once per process."""
    cv2 = _cv2()
    data = getattr(cv2, "data", None)
    if data is None:
        raise ImportError(f"this OpenCV ({cv2.__version__}) ships no Haar cascades (OpenCV 5 removed them): {INSTALL_HINT}")
    classifier = cv2.CascadeClassifier(data.haarcascades + CASCADE_FILE)
    if classifier.empty():
        raise RuntimeError(f"OpenCV could not load {data.haarcascades + CASCADE_FILE}")
    return classifier


def detect_faces(img: Image.Image, min_neighbors: int = 5, scale_factor: float = 1.1) -> list[Box]:
    """Boxes ``(x, y, w, h)`` of frontal faces, sorted by position (deterministic order)."""
    cv2 = _cv2()
    grey = cv2.equalizeHist(np.ascontiguousarray(np.asarray(img.convert("L"))))
    found = _cascade().detectMultiScale(grey, scaleFactor=scale_factor, minNeighbors=min_neighbors)
    return sorted((int(x), int(y), int(w), int(h)) for x, y, w, h in found)


def count_faces(img: Image.Image) -> int:
    """Number of frontal faces the cascade finds."""
    return len(detect_faces(img))


def _enlarge(box: Box, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of ``box`` grown by ``margin`` of its size per side, clipped."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    return max(0, x - dx), max(0, y - dy), min(size[0], x + w + dx), min(size[1], y + h + dy)


def _check_strength(strength: int) -> None:
    if isinstance(strength, bool) or not isinstance(strength, int) or not 1 <= strength <= 100:
        raise ValueError(f"blur strength must be an integer in [1, 100], got {strength!r}")


def blur_boxes(img: Image.Image, boxes: list[Box], strength: int = 25, margin: float = 0.2) -> Image.Image:
    """A copy of ``img`` with each box (grown by ``margin``) pixelated and Gaussian-blurred.

    ``strength`` (1..100) is the blur radius as a percentage of the box's longer side; the box is
    first pixelated to at most 8 cells across, so no facial detail survives at any strength.
    """
    _check_strength(strength)
    out = img.convert("RGB") if img.mode not in ("RGB", "L") else img.copy()
    for box in boxes:
        region = _enlarge(box, out.size, margin)
        patch = out.crop(region)
        cells = (max(1, min(8, patch.width)), max(1, min(8, patch.height)))
        patch = patch.resize(cells, Image.Resampling.BOX).resize(patch.size, Image.Resampling.BILINEAR)
        radius = max(2.0, max(patch.size) * strength / 100)
        out.paste(patch.filter(ImageFilter.GaussianBlur(radius)), region[:2])
    return out


def blur_faces(img: Image.Image, strength: int = 25) -> tuple[Image.Image, int]:
    """``(image with every detected face blurred, number of faces)``; the input is returned when none."""
    _check_strength(strength)
    boxes = detect_faces(img)
    if not boxes:
        return img, 0
    log.debug("blurring %d face(s) in a %dx%d image", len(boxes), img.width, img.height)
    return blur_boxes(img, boxes, strength), len(boxes)


@lru_cache(maxsize=1)
def _mtcnn() -> Any:
    """facenet-pytorch's MTCNN on CPU, loaded once per process; ImportError when the package is absent."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu", min_face_size=PEOPLE_MIN_FACE)


def people_detector_available() -> bool:
    """Whether ``count_people`` can run (facenet-pytorch is installed)."""
    try:
        _mtcnn()
    except ImportError:
        return False
    return True


def detect_people(img: Image.Image, min_probability: float = PEOPLE_MIN_PROBABILITY) -> list[tuple[Box, float]]:
    """Faces MTCNN finds with at least ``min_probability``: ``((x, y, w, h), probability)``, sorted by position."""
    if not 0 <= min_probability <= 1:
        raise ValueError(f"min_probability must be in [0, 1], got {min_probability}")
    boxes, probs = _mtcnn().detect(img.convert("RGB"))
    if boxes is None:
        return []
    found = []
    for (x0, y0, x1, y1), p in zip(boxes, probs):
        w, h = int(round(x1 - x0)), int(round(y1 - y0))
        if p is not None and float(p) >= min_probability and min(w, h) >= PEOPLE_MIN_FACE:
            found.append(((int(round(x0)), int(round(y0)), w, h), float(p)))
    return sorted(found)


def count_people(img: Image.Image) -> int:
    """Number of faces MTCNN is sure of (see the module docstring); ImportError without facenet-pytorch."""
    return len(detect_people(img))
