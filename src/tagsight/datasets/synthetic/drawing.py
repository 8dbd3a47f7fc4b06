"""Drawing the eight concepts on varied backgrounds: each a distinct shape with its own colours."""

from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tagsight.datasets.synthetic.config import CONCEPTS


# ---------------------------------------------------------------- drawing

_RGB = tuple[int, int, int]
T = TypeVar("T")


def jitter(g: np.random.Generator, rgb: _RGB, amount: int = 22) -> _RGB:
    """``rgb`` with each channel moved by up to ``amount`` at random, clipped to [0, 255]."""
    r, gr, b = (int(v) for v in np.clip(np.array(rgb) + g.integers(-amount, amount + 1, 3), 0, 255))
    return r, gr, b


def pick_option(g: np.random.Generator, options: tuple[T, ...]) -> T:
    """One of ``options``, uniformly."""
    return options[int(g.integers(len(options)))]


def box(s: int, x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A box given in fractions of a square of side ``s``, in pixels."""
    return [x0 * s, y0 * s, x1 * s, y1 * s]


def points(s: int, *xy: tuple[float, float]) -> list[tuple[float, float]]:
    """Points given in fractions of a square of side ``s``, in pixels."""
    return [(x * s, y * s) for x, y in xy]


def _draw_ball(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    style = int(g.integers(3))
    styles = (((240, 240, 240), (20, 20, 20)), ((230, 110, 30), (30, 20, 10)), ((210, 30, 40), (250, 250, 250)))
    fill, line = styles[style]  # football, basketball, red ball
    d.ellipse(box(s, 0.05, 0.05, 0.95, 0.95), fill=jitter(g, fill, 12), outline=line, width=max(1, s // 40))
    w = max(1, s // 30)
    if style == 0:
        d.regular_polygon((s / 2, s / 2, s * 0.16), 5, fill=line)
        for a in range(5):
            ang = np.deg2rad(90 + 72 * a)
            d.regular_polygon((s / 2 + np.cos(ang) * s * 0.36, s / 2 - np.sin(ang) * s * 0.36, s * 0.09), 5, fill=line)
    else:
        d.line(points(s, (0.5, 0.05), (0.5, 0.95)), fill=line, width=w)
        d.line(points(s, (0.05, 0.5), (0.95, 0.5)), fill=line, width=w)
        d.arc(box(s, -0.35, 0.1, 0.35, 0.9), -60, 60, fill=line, width=w)
        d.arc(box(s, 0.65, 0.1, 1.35, 0.9), 120, 240, fill=line, width=w)


def _draw_car(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    body = jitter(g, pick_option(g, ((200, 30, 30), (30, 60, 190), (235, 200, 30), (180, 180, 190), (25, 25, 30))))
    d.polygon(points(s, (0.27, 0.47), (0.35, 0.27), (0.66, 0.27), (0.76, 0.47)), fill=body)
    d.polygon(points(s, (0.33, 0.46), (0.38, 0.31), (0.49, 0.31), (0.49, 0.46)), fill=(170, 210, 235))
    d.polygon(points(s, (0.52, 0.46), (0.52, 0.31), (0.64, 0.31), (0.71, 0.46)), fill=(170, 210, 235))
    d.rounded_rectangle(box(s, 0.04, 0.45, 0.96, 0.72), radius=s * 0.06, fill=body)
    d.ellipse(box(s, 0.88, 0.5, 0.95, 0.56), fill=(255, 240, 150))
    for cx in (0.26, 0.74):
        d.ellipse(box(s, cx - 0.12, 0.6, cx + 0.12, 0.84), fill=(15, 15, 15))
        d.ellipse(box(s, cx - 0.05, 0.67, cx + 0.05, 0.77), fill=(160, 160, 165))


def _draw_tree(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.rectangle(box(s, 0.44, 0.5, 0.56, 0.97), fill=jitter(g, (100, 65, 30)))
    if g.random() < 0.3:
        green = jitter(g, (20, 90, 40))
        for y0, y1, hw in (0.05, 0.35, 0.2), (0.2, 0.52, 0.3), (0.35, 0.7, 0.4):
            d.polygon(points(s, (0.5, y0), (0.5 - hw, y1), (0.5 + hw, y1)), fill=green)
        return
    crown = (40, 130, 40) if g.random() < 0.8 else (210, 110, 30)
    for cx, cy, r in ((0.5, 0.3, 0.24), (0.32, 0.42, 0.18), (0.68, 0.42, 0.18), (0.5, 0.48, 0.2)):
        d.ellipse(box(s, cx - r, cy - r, cx + r, cy + r), fill=jitter(g, crown, 18))


def _draw_house(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    wall = jitter(g, pick_option(g, ((235, 220, 190), (245, 245, 240), (170, 70, 50), (240, 220, 120))))
    roof = jitter(g, pick_option(g, ((140, 30, 30), (90, 60, 40), (80, 80, 90))))
    d.rectangle(box(s, 0.66, 0.14, 0.76, 0.36), fill=roof)
    d.rectangle(box(s, 0.18, 0.45, 0.82, 0.95), fill=wall)
    d.polygon(points(s, (0.1, 0.47), (0.5, 0.1), (0.9, 0.47)), fill=roof)
    d.rectangle(box(s, 0.44, 0.68, 0.57, 0.95), fill=(100, 60, 30))
    for x in (0.24, 0.63):
        frame = max(1, s // 50)
        d.rectangle(box(s, x, 0.55, x + 0.13, 0.68), fill=(160, 200, 230), outline=(250, 250, 250), width=frame)


def _draw_flower(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.line(points(s, (0.5, 0.45), (0.5, 0.98)), fill=(40, 130, 40), width=max(2, s // 20))
    d.ellipse(box(s, 0.5, 0.68, 0.72, 0.78), fill=(50, 150, 50))
    petal = jitter(g, pick_option(g, ((235, 90, 160), (220, 30, 50), (150, 60, 200), (250, 220, 40), (250, 250, 250))))
    n = int(g.integers(5, 9))
    for k in range(n):
        a = 2 * np.pi * k / n
        cx, cy = 0.5 + 0.2 * np.cos(a), 0.38 + 0.2 * np.sin(a)
        d.ellipse(box(s, cx - 0.14, cy - 0.14, cx + 0.14, cy + 0.14), fill=petal, outline=jitter(g, petal, 30))
    d.ellipse(box(s, 0.39, 0.27, 0.61, 0.49), fill=jitter(g, pick_option(g, ((250, 200, 30), (110, 70, 30)))))


def _draw_dog(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    fur = jitter(g, pick_option(g, ((140, 90, 45), (30, 25, 20), (215, 170, 90), (235, 230, 220), (120, 120, 120))))
    dark = tuple(max(0, v - 60) for v in fur)
    d.line(points(s, (0.22, 0.5), (0.08, 0.3)), fill=fur, width=max(2, s // 22))
    for x in (0.24, 0.34, 0.58, 0.68):
        d.rectangle(box(s, x, 0.55, x + 0.07, 0.9), fill=fur)
    d.ellipse(box(s, 0.18, 0.38, 0.78, 0.68), fill=fur)
    d.ellipse(box(s, 0.64, 0.18, 0.92, 0.46), fill=fur)
    d.ellipse(box(s, 0.82, 0.32, 0.99, 0.44), fill=tuple(min(255, v + 30) for v in fur))
    d.ellipse(box(s, 0.94, 0.33, 0.99, 0.38), fill=(10, 10, 10))
    d.ellipse(box(s, 0.61, 0.2, 0.7, 0.44), fill=dark)
    d.ellipse(box(s, 0.76, 0.25, 0.8, 0.29), fill=(10, 10, 10))


def _draw_cake(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    d.ellipse(box(s, 0.05, 0.84, 0.95, 0.96), fill=jitter(g, (225, 225, 230), 10))
    colours = ((245, 170, 190), (250, 245, 235), (110, 60, 35), (245, 215, 120))
    layers = int(g.integers(2, 4))
    for k in range(layers):
        hw, y1 = 0.4 - 0.08 * k, 0.9 - 0.18 * k
        d.rectangle(box(s, 0.5 - hw, y1 - 0.18, 0.5 + hw, y1), fill=jitter(g, pick_option(g, colours), 12))
        d.rectangle(box(s, 0.5 - hw, y1 - 0.18, 0.5 + hw, y1 - 0.14), fill=(252, 250, 250))
    top, spread = 0.9 - 0.18 * layers, 0.38 - 0.08 * (layers - 1)
    for x in np.linspace(0.5 - spread, 0.5 + spread, int(g.integers(3, 6))):
        wax = jitter(g, pick_option(g, ((60, 120, 220), (230, 60, 90), (250, 250, 250))), 15)
        d.rectangle(box(s, x - 0.015, top - 0.14, x + 0.015, top), fill=wax)
        d.ellipse(box(s, x - 0.025, top - 0.21, x + 0.025, top - 0.14), fill=(255, 190, 40))


def _draw_boat(d: ImageDraw.ImageDraw, s: int, g: np.random.Generator) -> None:
    hull = jitter(g, pick_option(g, ((90, 55, 30), (25, 40, 90), (245, 245, 245), (190, 40, 40))))
    sail = jitter(g, pick_option(g, ((250, 250, 245), (250, 250, 245), (220, 60, 50), (250, 210, 60))), 8)
    d.line(points(s, (0.5, 0.08), (0.5, 0.68)), fill=(80, 55, 35), width=max(2, s // 40))
    d.polygon(points(s, (0.53, 0.1), (0.53, 0.64), (0.88, 0.64)), fill=sail)
    d.polygon(points(s, (0.47, 0.18), (0.47, 0.64), (0.2, 0.64)), fill=sail)
    d.polygon(points(s, (0.04, 0.66), (0.96, 0.66), (0.8, 0.86), (0.2, 0.86)), fill=hull)
    d.line(points(s, (0.08, 0.7), (0.92, 0.7)), fill=(250, 250, 250), width=max(1, s // 60))


_DRAW: dict[str, Callable[[ImageDraw.ImageDraw, int, np.random.Generator], None]] = {
    "ball": _draw_ball, "car": _draw_car, "tree": _draw_tree, "house": _draw_house,
    "flower": _draw_flower, "dog": _draw_dog, "cake": _draw_cake, "boat": _draw_boat,
}
SCENES: dict[str, tuple[_RGB, _RGB, _RGB | None]] = {  # top, bottom, ground below a horizon (or None)
    "sky": ((90, 150, 230), (200, 225, 250), None),
    "park": ((110, 170, 235), (200, 225, 245), (70, 150, 60)),
    "beach": ((100, 165, 235), (210, 230, 250), (225, 205, 150)),
    "sea": ((120, 175, 235), (215, 230, 250), (30, 90, 150)),
    "indoor": ((205, 195, 180), (170, 160, 145), (120, 90, 65)),
    "sunset": ((250, 150, 60), (150, 70, 120), (40, 40, 80)),
    "grass": ((90, 160, 70), (50, 120, 40), None),
    "road": ((140, 185, 235), (215, 230, 250), (95, 95, 100)),
}


def draw_background(g: np.random.Generator, scene: str, w: int, h: int) -> np.ndarray:
    """A vertical gradient, an optional horizon with ground below, low- and high-frequency noise."""
    top, bottom, ground = SCENES[scene]
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (1 - t) * np.array(jitter(g, top, 18)) + t * np.array(jitter(g, bottom, 18))
    img = np.broadcast_to(img, (h, w, 3)).copy()
    if ground is not None:
        horizon = int(h * g.uniform(0.45, 0.75))
        img[horizon:] = np.array(jitter(g, ground, 18)) * np.linspace(0.9, 1.1, h - horizon)[:, None, None]
    coarse = g.normal(0, g.uniform(6, 18), (4, 4, 3)).astype(np.float32)
    low = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((w, h), Image.Resampling.BILINEAR)) for c in range(3)], -1)
    out: np.ndarray = img + low
    return out


def _object_layer(g: np.random.Generator, concept: str, size: int) -> Image.Image:
    """One object drawn at 2x on a transparent layer, downsampled, flipped and rotated at random."""
    big = Image.new("RGBA", (2 * size, 2 * size), (0, 0, 0, 0))
    _DRAW[concept](ImageDraw.Draw(big), 2 * size, g)
    layer = big.resize((size, size), Image.Resampling.LANCZOS)
    if g.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = float(g.uniform(-180, 180) if concept == "ball" else g.uniform(-20, 20))
    return layer.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)


def _place(g: np.random.Generator, canvas: Image.Image, concepts: tuple[str, ...]) -> None:
    w, h = canvas.size
    n = len(concepts)
    for k, concept in enumerate(concepts):
        scale = g.uniform(0.55, 0.85) if n == 1 else g.uniform(0.4, 0.55)
        layer = _object_layer(g, concept, max(8, int(scale * min(w, h))))
        lw, lh = layer.size
        slot_w = w / n
        cx = slot_w * k + g.uniform(0.35, 0.65) * slot_w
        cy = g.uniform(0.4, 0.6) * h
        canvas.paste(layer, (int(cx - lw / 2), int(cy - lh / 2)), layer)


def render_photo(concepts: tuple[str, ...], size: tuple[int, int], g: np.random.Generator,
                 background: str = "park") -> Image.Image:
    """Draw one upright RGB photo of ``concepts`` (names from CONCEPTS) at ``size`` (width, height)."""
    unknown = [c for c in concepts if c not in CONCEPTS]
    if unknown or background not in SCENES:
        raise ValueError(f"unknown concept(s) {unknown} or background {background!r}; "
                         f"concepts are {sorted(CONCEPTS)}, backgrounds {sorted(SCENES)}")
    w, h = size
    canvas = Image.fromarray(np.clip(draw_background(g, background, w, h), 0, 255).astype(np.uint8))
    _place(g, canvas, concepts)
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(g.uniform(0.2, 0.9)) * max(w, h) / 96))
    noisy = np.asarray(canvas, dtype=np.float32) + g.normal(0, g.uniform(2, 7), (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
