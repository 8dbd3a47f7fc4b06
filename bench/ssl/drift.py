"""Where two equal computations part: tagsight's and lightly's DINO arms from the same weights, crops and BatchNorm
batches, step by step.

    python bench/ssl/drift.py --train ../shared/data/imagenette-160/train [--seed 0] [--shown 12]
        [--set objective.dino.batchnorm=crop] [--set KEY=VALUE ...]

Both arms are built as ``run.py --same-init`` builds them (lightly's arm gets the heads of tagsight's arm of the
seed; both get the seed's backbone) and trained on the same first ``--shown`` batches with the preset's optimiser
and learning-rate schedule over its whole budget (``--steps``, default the preset's), so the first steps are those
of the real run. Prints each step's two losses and their difference. With ``batchnorm: crop`` (each crop its own
BatchNorm batch, as lightly's arm runs them) the two arms compute the same thing, so the difference starts at
float32 rounding; where it then grows is where the training itself amplifies rounding, and the two runs of the
full budget end as different as that growth makes them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402


def losses(spec: bench.Spec, impl: str, seed: int, shown: int) -> list[float]:
    """The ``impl`` arm's losses over the first ``shown`` steps of the preset's schedule."""
    cfg = spec.config("dino")
    steps = bench.plan(cfg, spec)[0]
    backbone = bench.seeded_backbone(cfg, seed)
    arm = bench.make_arm(spec, cfg, "dino", impl, seed, backbone)
    photos = bench.FolderImages(spec.train)
    batches = list(itertools.islice(bench.loader(spec, "dino", cfg, backbone, photos, steps, seed, 0), shown))
    return bench.train(arm, lambda start: iter(batches[start:]), cfg, steps, spec.device).losses


def table(ours: list[float], theirs: list[float]) -> str:
    rows = [f"| {i} | {a:.7f} | {b:.7f} | {abs(a - b):.1e} |" for i, (a, b) in enumerate(zip(ours, theirs), start=1)]
    return "\n".join(["| step | tagsight loss | lightly loss | difference |", "|---:|---:|---:|---:|", *rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="photo folder (root/<class>/*.jpg), labels ignored")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shown", type=int, default=12, help="steps to train and show (default 12)")
    p.add_argument("--steps", type=int, default=0, help="the budget the schedule spans (0: the preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args(argv)
    if a.shown < 1:
        p.error("--shown must be >= 1")
    spec = bench.Spec(a.train, a.train, methods=("dino",), impls=("tagsight", "lightly"), seeds=(a.seed,),
                      steps=a.steps, overrides=tuple(a.overrides), workers=a.workers, same_init=True)
    sys.stdout.write(table(losses(spec, "tagsight", a.seed, a.shown), losses(spec, "lightly", a.seed, a.shown)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
