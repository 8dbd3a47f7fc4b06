"""Training input pipeline from object storage against local disk: images/s and bytes read per image.

Setup (not timed): ``tagsight datasets social-imagenette`` (``--limit`` photos of imagenette-160's training split as
simulated posts), ``tagsight ingest`` (longest side ``--max-side``) and ``tagsight vocab build`` as subprocesses in a
scratch folder; then moto's S3 server is started on 127.0.0.1 (in this process, behind a counting TCP proxy) and the
dataset is uploaded to ``s3://bench/ds``.

Each pass drains ``make_loader(HashtagStream(..., train_transform))`` (``--samples`` images, ``--workers`` workers,
``--batch``) from one source: local disk (``os.pread``, warm page cache); S3 with the block cache off (every sample
one ranged GET of its exact bytes); S3 with a cold cache (``--block`` byte blocks fetched once, kept on local disk);
S3 with that cache warm. Passes are interleaved ``--repeat`` times (a fresh cache folder per cold pass), median kept.
Bytes per image: what crossed the proxy (HTTP headers included) for S3, the JPEG bytes read by ``pread`` for local
disk. The first index scan over S3 (tar headers and JSON members by byte ranges) is timed on its own.

    python bench/s3/run.py [--data ../shared/data] [--limit 1500] [--samples 1500] [--workers 2]

Writes the ``## s3: training input from object storage`` section of docs/benchmarks.md (``--no-doc`` prints it).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ itself, for `common`
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `tests.s3server`

from common import (REPO, command_line, facts_markdown, fmt, machine_facts,  # noqa: E402
                    markdown_table, publish, run_in_scratch, setup_logging, warm_page_cache)

log = logging.getLogger("bench.s3")

TITLE = "s3: training input from object storage"
PACKAGES = ("tagsight", "torch", "s3fs", "fsspec", "moto", "pillow")


@dataclass(frozen=True)
class Pass:
    """One drained loader: images, wall seconds, bytes read and requests made."""

    label: str
    images: int
    wall: float
    bytes_read: int
    requests: int

    @property
    def per_s(self) -> float:
        return self.images / self.wall

    @property
    def bytes_per_image(self) -> float:
        return self.bytes_read / self.images


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tagsight.cli", *args]


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path, list[list[str]]]:
    """(dataset, vocab.json, the setup commands) made by subprocesses (not timed)."""
    si, ds, vocab = work / "si", work / "ds", work / "vocab"
    commands = [
        _cli("datasets", "social-imagenette", "--data", str(args.data), "--out", str(si), "--limit", str(args.limit),
             "--splits", "train"),
        _cli("ingest", str(si / "train" / "posts.jsonl"), "--out", str(ds), "--max-side", str(args.max_side)),
        _cli("vocab", "build", str(ds), "--out", str(vocab)),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for cmd in commands:
        log.info("setup: %s", command_line(cmd))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False)
        if proc.returncode:
            raise RuntimeError(f"setup command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}")
    return ds, vocab / "vocab.json", commands


def drain(label: str, index: Any, vocab: Any, args: argparse.Namespace, counter: Any | None) -> Pass:
    """Time pulling ``args.samples`` images through the training loader over ``index`` (workers started inside)."""
    from tagsight.data.pipeline import HashtagStream, StreamConfig, make_loader
    from tagsight.data.transforms import train_transform
    from tagsight.models.backbone import DataConfig

    data_config = DataConfig(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_size=args.size)
    cfg = StreamConfig(epoch_length=args.samples, batch_size=args.batch, seed=0)
    stream = HashtagStream(index, vocab, train_transform(data_config, (0.35, 1.0)), cfg, rank=0, world_size=1)
    before = (counter.bytes_down, counter.requests) if counter else (0, 0)
    t0, images, local_bytes = time.perf_counter(), 0, 0
    for batch in make_loader(stream, args.workers):
        images += len(batch["image"])
        local_bytes += int(index.jpg_size[batch["index"].numpy()].sum())
    wall = time.perf_counter() - t0
    if counter:
        read, requests = counter.bytes_down - before[0], counter.requests - before[1]
    else:
        read, requests = local_bytes, 0
    out = Pass(label, images, wall, read, requests)
    log.info("%s: %d images in %.2fs (%.0f/s), %.0f bytes/image, %d requests", label, images, wall, out.per_s,
             out.bytes_per_image, requests)
    return out


def measure(args: argparse.Namespace, work: Path, dataset: Path, vocab_path: Path) -> tuple[list[Pass], dict]:
    """All passes, interleaved, plus the first index scan over S3."""
    from tagsight.data.index import SampleIndex
    from tagsight.storage import CacheConfig
    from tagsight.tags.vocab import Vocabulary
    from tests.s3server import FaultyProxy, environ, moto_s3, s3_env, upload

    vocab, runs = Vocabulary.load(vocab_path), []
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(dataset, "s3://bench/ds")   # before any local index exists: the S3 index is scanned, not fetched
        proxy = FaultyProxy(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))
        with environ({"AWS_ENDPOINT_URL": proxy.endpoint}):
            off = CacheConfig(folder=work / "cache-off", max_bytes=0)
            t0, b0 = time.perf_counter(), proxy.bytes_down
            SampleIndex.build("s3://bench/ds", cache=off)
            scan = {"seconds": time.perf_counter() - t0, "bytes": proxy.bytes_down - b0,
                    "shard_bytes": sum(p.stat().st_size for p in (dataset / "shards").iterdir())}
            local = SampleIndex.build(dataset)
            warm_page_cache((dataset / "shards").iterdir())
            for r in range(args.repeat):
                cache = CacheConfig(folder=work / f"cache-{r}", max_bytes=args.cache_bytes, block_bytes=args.block)
                runs.append(drain("local disk", local, vocab, args, None))
                runs.append(drain("S3, cache off", SampleIndex.build("s3://bench/ds", cache=off), vocab, args, proxy))
                cold = SampleIndex.build("s3://bench/ds", cache=cache)   # the scan fills blocks: empty them
                shutil.rmtree(cache.folder / "blocks", ignore_errors=True)
                runs.append(drain("S3, cold cache", cold, vocab, args, proxy))
                runs.append(drain("S3, warm cache", SampleIndex.build("s3://bench/ds", cache=cache), vocab, args,
                                  proxy))
                shutil.rmtree(work / f"cache-{r}", ignore_errors=True)
        proxy.close()
    return runs, scan


def section(args: argparse.Namespace, runs: list[Pass], scan: dict, commands: list[list[str]]) -> str:
    labels = list(dict.fromkeys(r.label for r in runs))
    base = statistics.median(r.per_s for r in runs if r.label == "local disk")
    rows = []
    for label in labels:
        mine = [r for r in runs if r.label == label]
        rate = statistics.median(r.per_s for r in mine)
        rows.append([label, fmt(rate), f"{rate / base:.2f}x", fmt(statistics.median(r.bytes_per_image for r in mine)),
                     fmt(statistics.median(r.requests / r.images for r in mine), 2)])
    table = markdown_table(["source", "images/s", "vs local", "bytes read / image", "requests / image"], rows)
    cmd = "python bench/s3/run.py " + " ".join(sys.argv[1:])
    return "\n\n".join([
        f"`{cmd.strip()}` — {args.samples} samples per pass, {args.size} px, batch {args.batch}, {args.workers} "
        f"loader workers, median of {args.repeat} interleaved rounds; cache blocks of {args.block} bytes. "
        "S3 is moto's server on 127.0.0.1 (in the benchmark's process, sharing its cores), so the figures show the "
        "cost of the client path (HTTP, s3fs, the cache), not of a network.",
        table,
        f"First index scan over S3 (tar headers and JSON members by byte ranges, cache off): {scan['seconds']:.2f} s, "
        f"{scan['bytes']:,} bytes read of {scan['shard_bytes']:,} in the shards.",
        "Setup commands (not timed): " + "; ".join(f"`{command_line(c)}`" for c in commands),
        facts_markdown(machine_facts(PACKAGES)),
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = os.environ.get("TAGSIGHT_DATA")
    p.add_argument("--data", type=Path, default=Path(data) if data else REPO.parent / "shared" / "data",
                   help="shared data folder (holds imagenette-160)")
    p.add_argument("--limit", type=int, default=1500, help="photos in the simulated feed (default 1500)")
    p.add_argument("--samples", type=int, default=1500, help="images per pass (default 1500)")
    p.add_argument("--size", type=int, default=64, help="training resolution in pixels (default 64)")
    p.add_argument("--max-side", type=int, default=160, help="ingest --max-side (default 160)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--block", type=int, default=1 << 20, help="cache block bytes (default 1 MiB)")
    p.add_argument("--cache-bytes", type=int, default=1 << 30, help="cache limit in bytes (default 1 GiB)")
    p.add_argument("--repeat", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown file to update")
    p.add_argument("--no-doc", action="store_true", help="print the section instead of writing it")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if not (args.data / "imagenette-160").is_dir():
        raise SystemExit(f"{args.data}/imagenette-160 not found: pass --data or set TAGSIGHT_DATA")

    def body(work: Path) -> str:
        dataset, vocab, commands = prepare(args, work)
        runs, scan = measure(args, work, dataset, vocab)
        return section(args, runs, scan, commands)

    publish(TITLE, run_in_scratch("bench-s3-", args.keep, body), args.no_doc, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
