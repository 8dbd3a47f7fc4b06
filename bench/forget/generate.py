"""Make (or reuse) the 100,000-post demo feed and its ingested dataset for the forget benchmark.

    python3 bench/forget/generate.py --work /work/exp/forget/bench100k [--posts 100000] [--size 16]

Writes ``WORK/feed`` (demo generator, tiny images) and ``WORK/dataset`` (tagsight ingest) unless
they exist already, and ``WORK/generate.json`` with the seconds each took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import setup_logging  # noqa: E402

from tagsight.datasets.synthetic import FeedConfig, generate_feed  # noqa: E402
from tagsight.ingest.images import ImageConfig  # noqa: E402
from tagsight.ingest.pipeline import IngestConfig, ingest  # noqa: E402
from tagsight.ingest.sources import open_source  # noqa: E402
from tagsight.privacy.policy import ConsentPolicy  # noqa: E402


def feed_config(posts: int, size: int) -> FeedConfig:
    """The benchmark feed: ``posts`` posts by posts/50 authors (at least 8), photos drawn at ``size`` px, no 640 px specials."""
    return FeedConfig(n_posts=posts, n_authors=max(8, posts // 50), image_size=size, seed=0, n_large=0)


def ingest_config(size: int, workers: int) -> IngestConfig:
    return IngestConfig(samples_per_shard=1000, workers=workers, image=ImageConfig(max_side=size, min_side=8))


def prepare(work: Path, posts: int, size: int, workers: int) -> dict:
    """Generate and ingest when missing; returns the timings (0 for a reused folder)."""
    times = json.loads((work / "generate.json").read_text()) if (work / "generate.json").is_file() else {}
    feed, dataset = work / "feed", work / "dataset"
    if not (feed / "posts.jsonl").is_file():
        t0 = time.perf_counter()
        generate_feed(feed, feed_config(posts, size))
        times["generate_seconds"] = round(time.perf_counter() - t0, 1)
    if not (dataset / "manifest.json").is_file():
        t0 = time.perf_counter()
        policy = ConsentPolicy(optout_files=(str(feed / "optout.txt"),))
        ingest(open_source(feed / "posts.jsonl", "jsonl", name="demo"), dataset, policy, ingest_config(size, workers))
        times["ingest_seconds"] = round(time.perf_counter() - t0, 1)
    times.update(posts=posts, image_size=size)
    work.mkdir(parents=True, exist_ok=True)
    (work / "generate.json").write_text(json.dumps(times, indent=1))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/tagsight-bench-forget"))
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    setup_logging()
    print(json.dumps(prepare(args.work, args.posts, args.size, args.workers), indent=1))


if __name__ == "__main__":
    main()
