"""Measure a starter bundle (and the open-set guard) in the open world: imagenette val and photos of nothing.

1. A vocabulary from hashtags naming 7 of imagenette's 10 classes plus two broader labels that subsume
   some of them (#dog, #fish); church, gas pump and garbage truck are left OUT, as unseen objects.
2. imagenette-160 val is split by a hash of the file name: a calibration half (at most
   ``--per-class`` photos per class, all 10 classes: the 3 left out are photos of nothing in the
   vocabulary) and a report half (at most ``--per-class`` per class) that calibration never sees.
   The packaged photos (``bench/apps/packaged_photos.py``) are split the same way, and rendered
   pictures of nothing use seed 0 for calibration and seed 1 for the report.
3. ``tagsight apps starter`` is run on the calibration half; the bundle is then loaded as served and
   asked about the report half: per concept, how many alt texts name it and how many of those are
   right (the photo's class is the concept or one of its hyponyms); per kind of photo of nothing,
   how many get any concept in alt text and any suggested hashtag.

    python3 bench/apps/packaged_photos.py --out /tmp/packaged
    python3 bench/apps/starter_openworld.py --data /work/shared/data/imagenette-160 --packaged /tmp/packaged \\
        --work /tmp/starter-ow --out /tmp/starter_openworld.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image

from tagsight.apps.bundle import load_bundle
from tagsight.apps.calibration import CalibrationConfig
from tagsight.apps.starter import ancestors, calibrate_starter, synset_of
from tagsight.datasets.synthetic import write_unseen
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab

log = logging.getLogger("starter_openworld")

HASHTAGS = ("tench", "englishspringer", "cassetteplayer", "chainsaw", "frenchhorn", "golfball", "parachute",
            "dog", "fish")
LEFT_OUT = ("n03028079", "n03425413", "n03417042")   # church, gas pump, garbage truck


def half(name: str) -> str:
    return "calibration" if hashlib.sha256(name.encode()).digest()[0] < 128 else "report"


def make_vocab(work: Path) -> Path:
    posts = [(f"p{t}{i}", [t]) for t in HASHTAGS for i in range(10)]
    vocab = build_vocab(posts, VocabConfig(min_count=5), source={"kind": "bench", "name": "starter_openworld"})
    if len(vocab) != len(HASHTAGS):
        raise RuntimeError(f"expected {len(HASHTAGS)} labels, got {[label.label for label in vocab.labels]}")
    return vocab.save(work / "vocab")


def split_val(data: Path, work: Path, per_class: int) -> dict[str, list[tuple[Path, str]]]:
    """Symlink the calibration half into work/calibrate/<wnid>/; return both halves as (path, wnid)."""
    halves: dict[str, list[tuple[Path, str]]] = {"calibration": [], "report": []}
    for cls in sorted(p for p in (data / "val").iterdir() if p.is_dir()):
        taken: Counter = Counter()
        for photo in sorted(cls.iterdir()):
            h = half(photo.name)
            if taken[h] < per_class:
                halves[h].append((photo, cls.name))
                taken[h] += 1
    for photo, wnid in halves["calibration"]:
        link = work / "calibrate" / wnid / photo.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(photo, link)
    return halves


def split_packaged(packaged: Path, work: Path) -> list[Path]:
    """Symlink the calibration half of the packaged photos into work/unseen-packaged; return the report half."""
    report = []
    for photo in sorted(packaged.iterdir()):
        if half(photo.name) == "report":
            report.append(photo)
            continue
        link = work / "unseen-packaged" / photo.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(photo, link)
    return report


def answers(bundle_dir: Path, paths: list[Path], batch: int = 64) -> list[dict]:
    bundle = load_bundle(bundle_dir, batch_size=batch)
    out = []
    for start in range(0, len(paths), batch):
        imgs = [Image.open(p).convert("RGB") for p in paths[start:start + batch]]
        got = bundle.predict(imgs, ["alt-text", "hashtags"], {"alt-text": {"count_people": False}})
        out += [{"alt": a, "tags": t} for a, t in zip(got["alt-text"], got["hashtags"])]
    return out


def measure(bundle_dir: Path, halves: dict, packaged_report: list[Path], rendered_report: list[Path]) -> dict:
    vocab_labels = [c["label"] for c in json.loads((bundle_dir / "calibration.json").read_text())["concepts"]]
    name_of = {c["name"]: c["label"] for c in json.loads((bundle_dir / "calibration.json").read_text())["concepts"]}
    report = halves["report"]
    kinds = {"imagenette-left-out": [p for p, w in report if w in LEFT_OUT],
             "packaged": packaged_report, "rendered": rendered_report}
    in_vocab = [(p, w) for p, w in report if w not in LEFT_OUT]
    got = answers(bundle_dir, [p for p, _ in in_vocab] + [p for k in kinds.values() for p in k])
    per: dict[str, Counter] = defaultdict(Counter)
    for (_, wnid), a in zip(in_vocab, got):
        truth = ancestors(synset_of(wnid)) & set(vocab_labels)
        for c in a["alt"]["concepts"]:
            per[c["name"]]["said"] += 1
            per[c["name"]]["right"] += name_of[c["name"]] in truth
        per["_photos"]["with_concept"] += bool(a["alt"]["concepts"])
    result = {"in_vocabulary_photos": len(in_vocab),
              "in_vocabulary_with_a_concept": per.pop("_photos")["with_concept"],
              "concepts": {n: {"said": c["said"], "right": c["right"], "precision": round(c["right"] / c["said"], 4)}
                           for n, c in sorted(per.items())}, "unseen": {}}
    rest = got[len(in_vocab):]
    for kind, paths in kinds.items():
        these, rest = rest[:len(paths)], rest[len(paths):]
        result["unseen"][kind] = {
            "photos": len(paths), "with_a_concept": sum(bool(a["alt"]["concepts"]) for a in these),
            "with_a_hashtag": sum(not a["tags"]["abstained"] for a in these),
            "said": {str(p.name): a["alt"]["alt_text"] for p, a in zip(paths, these) if a["alt"]["concepts"]},
            "why_silent": dict(Counter(a["alt"]["why"]["reason"] for a in these if not a["alt"]["concepts"]))}
    total = sum(k["photos"] for k in result["unseen"].values())
    said = sum(k["with_a_concept"] for k in result["unseen"].values())
    result["unseen_total"] = {"photos": total, "with_a_concept": said, "rate": round(said / total, 4)}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--packaged", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-class", type=int, default=120)
    p.add_argument("--rendered", type=int, default=60)
    p.add_argument("--open-set-score", default="max_logit", choices=("max_logit", "energy", "knn"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    vocab = make_vocab(args.work)
    halves = split_val(args.data, args.work, args.per_class)
    packaged_report = split_packaged(args.packaged, args.work)
    rendered_report = write_unseen(args.work / "rendered-report", args.rendered, size=160, seed=1)
    cfg = CalibrationConfig(unseen=(str(args.work / "unseen-packaged"),), rendered_unseen=args.rendered,
                            open_set_score=args.open_set_score)
    cal = calibrate_starter(vocab, args.work / "bundle", args.work / "calibrate", cfg)
    log.info("calibrated: %s", json.dumps(cal["summary"]))
    result = {"calibration": {"counts": cal["heldout"], "summary": cal["summary"], "open_set": cal["open_set"],
                              "concepts": [{k: c.get(k) for k in ("name", "alt_text", "reason", "threshold",
                                                                   "imagenet_classes", "fit", "check")}
                                           for c in cal["concepts"]]},
              "report": measure(args.work / "bundle", halves, packaged_report, rendered_report)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["report"], indent=1))


if __name__ == "__main__":
    main()
