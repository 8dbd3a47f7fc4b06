"""Write the real photos that ship inside installed packages to a folder, as photos of nothing in a vocabulary.

scikit-image's ``skimage.data`` (only the images in its wheel: nothing is downloaded), matplotlib's
sample data and Pillow's test images when the wheel has them. Grey images are kept (as RGB);
volumes, masks and images smaller than 64 px are left out. Usage::

    python3 bench/apps/packaged_photos.py --out /tmp/packaged
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger("packaged_photos")

SKIMAGE = ("astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
           "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "rocket", "text",
           "retina", "microaneurysms", "horse", "checkerboard", "binary_blobs", "cell")
MATPLOTLIB = ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png")


def _rgb(a: np.ndarray) -> Image.Image | None:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-9)).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 64:
        return None
    return Image.fromarray(a[..., :3])


def skimage_photos() -> dict[str, Image.Image]:
    import skimage.data as data

    out = {}
    for name in SKIMAGE:
        try:
            img = _rgb(getattr(data, name)())
        except Exception as exc:  # a sample that needs a download is left out
            log.warning("skimage.data.%s left out: %s", name, exc)
            continue
        if img is not None:
            out[f"skimage-{name}"] = img
    return out


def matplotlib_photos() -> dict[str, Image.Image]:
    import matplotlib

    root = Path(matplotlib.get_data_path()) / "sample_data"
    return {f"matplotlib-{Path(n).stem}": Image.open(root / n).convert("RGB") for n in MATPLOTLIB
            if (root / n).is_file()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)
    photos = {**skimage_photos(), **matplotlib_photos()}
    for name, img in sorted(photos.items()):
        img.save(args.out / f"{name}.png")
    log.info("%d photos written to %s: %s", len(photos), args.out, ", ".join(sorted(photos)))


if __name__ == "__main__":
    main()
