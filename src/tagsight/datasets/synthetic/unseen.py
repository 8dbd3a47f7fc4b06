"""Photos of nothing in the vocabulary (scenes, noise, stripes, wallpaper, documents, screenshots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tagsight.datasets.synthetic.drawing import SCENES, box, draw_background, jitter, pick_option, points


# ---------------------------------------------------------------- photos of nothing in the vocabulary

UNSEEN_KINDS = ("scene", "noise", "stripes", "wallpaper", "document", "screenshot")


def _unseen_noise(g: np.random.Generator, w: int, h: int) -> Image.Image:
    coarse = g.uniform(0, 255, (int(g.integers(3, 12)), int(g.integers(3, 12)), 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return Image.fromarray(np.clip(base + g.normal(0, g.uniform(10, 40), (h, w, 3)), 0, 255).astype(np.uint8))


def _unseen_stripes(g: np.random.Generator, w: int, h: int) -> Image.Image:
    period, angle = float(g.uniform(4, 24)), float(g.uniform(0, np.pi))
    y, x = np.mgrid[0:h, 0:w]
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    if g.random() < 0.5:  # a checkerboard
        wave = np.sign(wave) * np.sign(np.sin((-x * np.sin(angle) + y * np.cos(angle)) * 2 * np.pi / period))
    a, b = np.array(jitter(g, (230, 220, 200), 60)), np.array(jitter(g, (60, 70, 90), 60))
    t = (wave[..., None] + 1) / 2
    return Image.fromarray((t * a + (1 - t) * b).astype(np.uint8))


def _unseen_wallpaper(g: np.random.Generator, w: int, h: int) -> Image.Image:
    """A tiled motif: small ovals with dots, the kind of pattern face detectors mistake for crowds."""
    tile = int(g.integers(10, 24))
    motif = Image.new("RGB", (tile, tile), jitter(g, (200, 190, 170), 50))
    d = ImageDraw.Draw(motif)
    fg = jitter(g, (120, 80, 60), 60)
    d.ellipse(box(tile, 0.2, 0.15, 0.8, 0.85), outline=fg, width=1)
    for cx in (0.38, 0.62):
        d.ellipse(box(tile, cx - 0.06, 0.38, cx + 0.06, 0.48), fill=fg)
    d.line(points(tile, (0.4, 0.68), (0.6, 0.68)), fill=fg, width=1)
    out = Image.new("RGB", (w, h))
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            out.paste(motif, (x, y))
    return out


def _unseen_document(g: np.random.Generator, w: int, h: int) -> Image.Image:
    page = Image.new("RGB", (w, h), jitter(g, (245, 243, 235), 8))
    d = ImageDraw.Draw(page)
    words = ("the", "report", "of", "minutes", "total", "invoice", "page", "section", "and", "notes", "2024")
    y = int(h * 0.06)
    while y < h * 0.94:
        line = " ".join(str(pick_option(g, words)) for _ in range(int(g.integers(3, 9))))
        d.text((int(w * 0.06), y), line, fill=jitter(g, (30, 30, 35), 20))
        y += int(g.integers(9, 14))
    return page


def _unseen_screenshot(g: np.random.Generator, w: int, h: int) -> Image.Image:
    shot = Image.new("RGB", (w, h), jitter(g, (235, 236, 240), 15))
    d = ImageDraw.Draw(shot)
    d.rectangle((0, 0, w, max(6, h // 10)), fill=jitter(g, (50, 90, 160), 40))
    for _ in range(int(g.integers(3, 8))):
        x0, y0 = int(g.uniform(0, w * 0.7)), int(g.uniform(h * 0.15, h * 0.85))
        x1, y1 = min(w - 1, x0 + int(g.uniform(w * 0.15, w * 0.5))), min(h - 1, y0 + int(g.uniform(6, h * 0.2)))
        d.rectangle((x0, y0, x1, y1), fill=jitter(g, (200, 205, 215), 40), outline=(90, 90, 100))
        d.text((x0 + 2, y0 + 1), str(pick_option(g, ("OK", "Cancel", "Settings", "Search", "Files", "12:04"))),
               fill=(20, 20, 20))
    return shot


def _unseen_scene(g: np.random.Generator, w: int, h: int) -> Image.Image:
    scene = str(pick_option(g, tuple(SCENES)))
    return Image.fromarray(np.clip(draw_background(g, scene, w, h), 0, 255).astype(np.uint8))


_UNSEEN_DRAW = {"scene": _unseen_scene, "noise": _unseen_noise, "stripes": _unseen_stripes,
                "wallpaper": _unseen_wallpaper, "document": _unseen_document, "screenshot": _unseen_screenshot}


def render_unseen(kind: str, size: tuple[int, int], g: np.random.Generator) -> Image.Image:
    """One RGB picture of ``kind`` (``UNSEEN_KINDS``) that shows none of CONCEPTS: an empty scene, a
    texture, a tiled pattern, a text page or a screenshot; calibration uses such pictures as photos of
    nothing in a vocabulary."""
    if kind not in _UNSEEN_DRAW:
        raise ValueError(f"unknown unseen kind {kind!r}; kinds are {UNSEEN_KINDS}")
    w, h = size
    if w < 8 or h < 8:
        raise ValueError(f"unseen pictures need at least 8x8 pixels, got {size}")
    return _UNSEEN_DRAW[kind](g, w, h)


def write_unseen(out_dir: Path, n: int, size: int = 128, seed: int = 0) -> list[Path]:
    """``n`` pictures of nothing in the vocabulary (kinds in turn) as JPEGs in ``out_dir``; their paths."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out_dir.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        kind = UNSEEN_KINDS[i % len(UNSEEN_KINDS)]
        path = out_dir / f"unseen-{i:04d}-{kind}.jpg"
        render_unseen(kind, (size, size), g).save(path, quality=92)
        paths.append(path)
    return paths
