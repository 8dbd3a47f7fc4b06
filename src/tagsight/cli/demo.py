"""``tagsight demo``: generate the synthetic feed and run every stage on it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run every pipeline stage on a generated synthetic feed",
                       description="Generate a small synthetic social feed (drawn photos, hashtags as people "
                                   "write them, mixed visibility and consent, opt-outs, GPS EXIF) and take it "
                                   "through every tagsight stage, ending with a summary. Needs no ../shared.")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default ./demo)")
    p.add_argument("--posts", type=int, default=400, help="number of posts to generate (default 400)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    p.add_argument("--pretrain-samples", type=int, default=4096, help="samples seen by the demo pretraining "
                   "(about a minute on 2 cores; 0 skips it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.demo import DemoConfig, run_demo

    lines = run_demo(DemoConfig(out_dir=args.out, n_posts=args.posts, seed=args.seed, workers=args.workers,
                                pretrain_samples=args.pretrain_samples))
    print("\n".join(lines))
    return 0
