"""Measure a calibrated run bundle in the open world: precision per concept said on held-out in-vocabulary
photos (against verified labels), and how many photos of nothing in the vocabulary get a concept.

In-vocabulary photos are the run's held-out split of ``--dataset`` (never trained on); pass a bundle
calibrated on another dataset (``--heldout-dataset``, as the demo does) so that they are not the photos
the thresholds were chosen on either. Photos of nothing are the image folders given with ``--unseen``
(e.g. ``bench/apps/packaged_photos.py``'s output, which the calibration did not see) and
``--rendered`` pictures drawn with a seed calibration does not use::

    tagsight demo --out demo
    python3 bench/apps/packaged_photos.py --out /tmp/packaged
    python3 bench/apps/run_openworld.py demo/run --dataset demo/dataset --feed demo/feed --unseen /tmp/packaged \\
        --out /tmp/run_openworld.json

``--feed`` is the synthetic feed whose ``truth.jsonl`` says what each post shows (the verified labels).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from tagsight.apps.bundle import load_bundle
from tagsight.apps.calibration import read_unseen
from tagsight.apps.verified import load_verified
from tagsight.data.index import SampleIndex
from tagsight.datasets.synthetic import UNSEEN_KINDS, render_unseen

log = logging.getLogger("run_openworld")


def ask(bundle, images: list[Image.Image], batch: int = 64) -> list[dict]:
    out = []
    for start in range(0, len(images), batch):
        got = bundle.predict(images[start:start + batch], ["alt-text", "hashtags"],
                             {"alt-text": {"count_people": False}})
        out += [{"alt": a, "tags": t} for a, t in zip(got["alt-text"], got["hashtags"])]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--feed", type=Path, required=True, help="the synthetic feed (its truth.jsonl) of --dataset")
    p.add_argument("--source", default="demo", help="the source name the feed was ingested under")
    p.add_argument("--unseen", type=Path, action="append", default=[])
    p.add_argument("--rendered", type=int, default=120)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    bundle = load_bundle(args.bundle)
    run = bundle.run
    index = SampleIndex.build(args.dataset)
    held = np.flatnonzero(index.holdout(run.config.data.holdout_fraction, run.config.seed))
    from tagsight.demo import write_verified

    path = write_verified(args.feed, Path(run.lineage["vocab"]["path"]), args.out.with_suffix(".verified.jsonl"),
                          args.source)
    verified = load_verified(path, run.vocab())
    labels = [label.label for label in run.vocab().labels]
    rows = [int(i) for i in held if index.post_keys[i] in verified.rows]
    got = ask(bundle, [Image.open(io.BytesIO(index.read_jpeg(i))).convert("RGB") for i in rows])
    per: dict[str, Counter] = defaultdict(Counter)
    for i, a in zip(rows, got):
        truth = {labels[j].split(".")[0].replace("_", " ") for j in np.flatnonzero(verified.rows[index.post_keys[i]])}
        for c in a["alt"]["concepts"]:
            per[c["name"]]["said"] += 1
            per[c["name"]]["right"] += c["name"] in truth
    result = {"in_vocabulary": {"photos": len(rows), "with_a_concept": sum(bool(a["alt"]["concepts"]) for a in got),
                                "concepts": {n: {**c, "precision": round(c["right"] / c["said"], 4)}
                                             for n, c in sorted(per.items())}},
              "unseen": {}}
    g = np.random.default_rng(args.seed)
    sets = {str(folder): read_unseen([str(folder)])[:2] for folder in args.unseen}
    kinds = [UNSEEN_KINDS[i % len(UNSEEN_KINDS)] for i in range(args.rendered)]
    sets[f"rendered (seed {args.seed})"] = ([f"{i}-{k}" for i, k in enumerate(kinds)],
                                            [render_unseen(k, (128, 128), g) for k in kinds])
    for name, (names, images) in sets.items():
        answers = ask(bundle, images)
        result["unseen"][name] = {
            "photos": len(names), "with_a_concept": sum(bool(a["alt"]["concepts"]) for a in answers),
            "with_a_hashtag": sum(not a["tags"]["abstained"] for a in answers),
            "said": {Path(n).name: a["alt"]["alt_text"] for n, a in zip(names, answers) if a["alt"]["concepts"]},
            "why_silent": dict(Counter(a["alt"]["why"]["reason"] for a in answers if not a["alt"]["concepts"]))}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
