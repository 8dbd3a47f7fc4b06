"""A deterministic per-class split of a labelled photo folder, as hard links, to choose settings without val.

    python bench/ssl/split.py ../shared/data/imagenette-160/train /work/exp/ssl/split [--holdout 0.2] [--seed 0]

Reads ``SRC/<class>/<photo>`` as the benchmark does (``tagsight.eval.datasets.FolderImages``) and writes
``OUT/fit/<class>/<photo>`` and ``OUT/holdout/<class>/<photo>`` as hard links to the source files (no copy; both
trees must be on one filesystem). In every class, the photos are ordered by the SHA-256 of ``"<seed>:<class>/<name>"``
and the first ``round(holdout x n)`` go to ``holdout`` (at least one, and at least one left to ``fit``), so the
split depends only on the seed and each photo's own name: adding or removing a photo moves no other photo.
Then ``bench/ssl/run.py --train OUT/fit --eval-train OUT/fit --val OUT/holdout`` compares settings on photos
that the final benchmark's val set never contributes to.

Writes ``OUT/split.json`` (source, seed, fraction, per-class counts); counts reconcile: in = fit + holdout. An
``OUT`` that already holds a split is refused (remove it first), so a split is never mixed with another one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tagsight.eval.datasets import FolderImages

log = logging.getLogger("bench.ssl.split")

PARTS = ("fit", "holdout")


@dataclass(frozen=True)
class SplitConfig:
    """Where from, where to, which fraction to hold out, with which seed."""

    source: Path
    out: Path
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.holdout < 1:
            raise ValueError(f"--holdout must be in (0, 1), got {self.holdout}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")


def _key(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def assign(names: list[str], holdout: float, seed: int) -> dict[str, str]:
    """``{name: "fit" | "holdout"}`` for the photos of one class (names relative to the source root)."""
    if len(names) < 2:
        raise ValueError(f"a class needs at least 2 photos to split, got {len(names)}: {names}")
    order = sorted(names, key=lambda n: _key(seed, n))
    n_hold = min(len(names) - 1, max(1, round(holdout * len(names))))
    return {n: ("holdout" if i < n_hold else "fit") for i, n in enumerate(order)}


def split(cfg: SplitConfig) -> dict[str, dict[str, int]]:
    """Link every photo of ``cfg.source`` into ``cfg.out/fit`` or ``cfg.out/holdout``; per-class counts."""
    if any((cfg.out / p).exists() for p in (*PARTS, "split.json")):
        raise FileExistsError(f"{cfg.out} already holds a split (fit/, holdout/ or split.json): remove it first")
    photos = FolderImages(cfg.source)
    plans = {}
    for c, cls in enumerate(photos.classes):      # every class planned (and refused) before any link is made
        paths = {str(p.relative_to(photos.root)): p for p, label in photos.items if label == c}
        plans[cls] = (paths, assign(sorted(paths), cfg.holdout, cfg.seed))
    counts: dict[str, dict[str, int]] = {}
    for cls, (paths, where) in plans.items():
        for name, part in where.items():
            dest = cfg.out / part / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(paths[name], dest)
        counts[cls] = {"in": len(where), **{p: sum(v == p for v in where.values()) for p in PARTS}}
        if counts[cls]["in"] != counts[cls]["fit"] + counts[cls]["holdout"]:
            raise RuntimeError(f"class {cls}: counts do not reconcile: {counts[cls]}")
    total = {k: sum(v[k] for v in counts.values()) for k in ("in", *PARTS)}
    (cfg.out / "split.json").write_text(json.dumps({"source": str(cfg.source), "holdout": cfg.holdout,
                                                    "seed": cfg.seed, "total": total, "classes": counts}, indent=1))
    log.info("%s: %d photos -> %d fit + %d holdout in %s", cfg.source, total["in"], total["fit"], total["holdout"],
             cfg.out)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="labelled photo folder: SRC/<class>/<photo>")
    p.add_argument("out", type=Path, help="writes OUT/fit, OUT/holdout and OUT/split.json")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of each class held out (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    split(SplitConfig(args.source, args.out, args.holdout, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
