"""The data the accelerator check trains on, made on the CPU machine and carried to the GPU one.

    python3 bench/gpu/prepare.py --out .gpu/data --data ../shared/data [--posts 1500]

writes ``OUT/dataset`` (real imagenette-160 val photos as social-imagenette posts, ingested through the
consent gate, ~10 MB for 1,500 posts) and ``OUT/vocab/vocab.json``. The GPU machine has no WordNet and
no DuckDB, so vocabulary and ingest happen here. Without ``--data`` (the dry run), ``prepare_demo``
makes a tiny synthetic feed instead.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("bench.gpu")


def prepare_imagenette(out: Path, data_root: Path, posts: int) -> Path:
    """social-imagenette val posts -> ingest (max side 256) -> vocabulary, through the CLI."""
    cli = [sys.executable, "-m", "tagsight.cli"]
    src = out / "source"
    _run([*cli, "datasets", "social-imagenette", "--out", str(src), "--data", str(data_root), "--splits", "val",
          "--limit", str(posts)])
    _run([*cli, "ingest", str(src / "val" / "posts.jsonl"), "--out", str(out / "dataset"),
          "--optout", str(src / "val" / "optout.txt"), "--max-side", "256"])
    _run([*cli, "vocab", "build", str(out / "dataset"), "--out", str(out / "vocab")])
    return out


def prepare_demo(out: Path, n_posts: int = 80) -> Path:
    """A tiny synthetic feed (the demo's), ingested, with its vocabulary: data for the dry run."""
    from tagsight.demo import DemoConfig, stage_feed, stage_ingest, stage_vocab

    cfg = DemoConfig(out_dir=out, n_posts=n_posts, pretrain_samples=0)
    feed, _ = stage_feed(cfg)
    dataset, _ = stage_ingest(cfg, feed)
    stage_vocab(cfg, dataset)
    return out


def _run(cmd: list[str]) -> None:
    log.info("$ %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def main() -> int:
    p = argparse.ArgumentParser(description="Make the dataset and vocabulary the accelerator check carries.")
    p.add_argument("--out", type=Path, required=True, help="folder to write (dataset/, vocab/, source/)")
    p.add_argument("--data", type=Path, required=True, help="folder holding imagenette-160/ and harrison/")
    p.add_argument("--posts", type=int, default=1500, help="social-imagenette val posts to build (default 1500)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    prepare_imagenette(args.out, args.data, args.posts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
