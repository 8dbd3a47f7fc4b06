"""How right the people count of alt text is: MTCNN (what alt text uses) against the Haar cascade.

Photo sets, all available offline:

* ``faces``: photos with known faces: scikit-image's astronaut and cameraman, matplotlib's Grace
  Hopper (one face each) and the 100 face crops of ``skimage.data.lfw_subset()`` (25 px, upscaled to
  100 px on a grey canvas of 160 px; one face each).
* ``non-faces``: the 100 non-face crops of ``lfw_subset`` (same treatment): no face.
* ``textures``: rendered pictures of nothing (``tagsight.datasets.synthetic.write_unseen``: empty scenes,
  noise, stripes and checkerboards, tiled wallpapers, text pages, screenshots) and the packaged
  texture and pattern photos (brick, grass, gravel, checkerboard, text, page, ...): no face.
* ``imagenette``: the first ``--imagenette`` val photos of the classes with people in them; every
  detection is cut out into a contact sheet (``--sheet``) to be judged by eye, by index.

    python3 bench/apps/faces_precision.py --packaged /tmp/packaged --data /work/shared/data/imagenette-160 \\
        --sheet /tmp/faces_sheet.png --out /tmp/faces.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tagsight.datasets.synthetic import write_unseen
from tagsight.privacy.faces import detect_faces, detect_people

log = logging.getLogger("faces_precision")

KNOWN_FACES = ("skimage-astronaut.png", "skimage-camera.png", "matplotlib-grace_hopper.png")
TEXTURES = ("skimage-brick.png", "skimage-grass.png", "skimage-gravel.png", "skimage-checkerboard.png",
            "skimage-text.png", "skimage-page.png", "skimage-binary_blobs.png", "skimage-colorwheel.png",
            "skimage-hubble_deep_field.png", "skimage-immunohistochemistry.png", "skimage-coins.png",
            "skimage-retina.png", "skimage-microaneurysms.png", "skimage-cell.png", "skimage-moon.png")
# tench, chain saw, french horn, garbage truck, parachute
PEOPLE_CLASSES = ("n01440764", "n03000684", "n03394916", "n03417042", "n03888257")


def lfw(kind: str) -> list[Image.Image]:
    import skimage.data as data

    crops = data.lfw_subset()[:100] if kind == "faces" else data.lfw_subset()[100:]
    out = []
    for c in crops:
        face = Image.fromarray((c * 255).astype(np.uint8)).resize((100, 100), Image.BICUBIC).convert("RGB")
        canvas = Image.new("RGB", (160, 160), (128, 128, 128))
        canvas.paste(face, (30, 30))
        out.append(canvas)
    return out


def counts(images: list[Image.Image]) -> dict[str, list[int]]:
    return {"mtcnn": [len(detect_people(im)) for im in images], "haar": [len(detect_faces(im)) for im in images]}


def summary(c: dict[str, list[int]], truth: int | None) -> dict:
    out = {}
    for det, n in c.items():
        n = np.asarray(n)
        row = {"photos": len(n), "detections": int(n.sum()), "photos_with_a_count": int((n > 0).sum())}
        if truth is not None:
            row["right_counts"] = int((n == truth).sum())
        out[det] = row
    return out


def sheet(items: list[tuple[Image.Image, float, str]], path: Path, cell: int = 96) -> None:
    cols = 10
    rows = max(1, (len(items) + cols - 1) // cols)
    board = Image.new("RGB", (cols * cell, rows * (cell + 14)), "white")
    d = ImageDraw.Draw(board)
    for k, (crop, p, _) in enumerate(items):
        x, y = (k % cols) * cell, (k // cols) * (cell + 14)
        board.paste(crop.resize((cell, cell)), (x, y))
        d.text((x + 2, y + cell), f"{k} {p:.3f}", fill="black")
    board.save(path)


def imagenette(data: Path, n: int, sheet_path: Path) -> dict:
    photos = []
    for wnid in PEOPLE_CLASSES:
        photos += sorted((data / "val" / wnid).iterdir())[: n // len(PEOPLE_CLASSES)]
    items = []
    for path in photos:
        img = Image.open(path).convert("RGB")
        for (x, y, w, h), p in detect_people(img):
            items.append((img.crop((x, y, x + w, y + h)), p, path.name))
    sheet(items, sheet_path)
    return {"photos": len(photos), "detections": len(items),
            "crops": [{"index": k, "photo": name, "probability": round(p, 4)} for k, (_, p, name) in enumerate(items)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packaged", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--imagenette", type=int, default=200)
    p.add_argument("--rendered", type=int, default=60)
    p.add_argument("--sheet", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    known = [Image.open(args.packaged / n).convert("RGB") for n in KNOWN_FACES]
    rendered = [Image.open(q).convert("RGB") for q in write_unseen(Path("/tmp/faces-rendered"), args.rendered, 160, 2)]
    textures = rendered + [Image.open(args.packaged / n).convert("RGB") for n in TEXTURES
                           if (args.packaged / n).is_file()]
    result = {"faces": summary(counts(known + lfw("faces")), truth=1),
              "non_faces": summary(counts(lfw("non-faces")), truth=0),
              "textures": summary(counts(textures), truth=0),
              "imagenette": imagenette(args.data, args.imagenette, args.sheet)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "imagenette"}, indent=1))
    print(json.dumps({k: v for k, v in result["imagenette"].items() if k != "crops"}))


if __name__ == "__main__":
    main()
