"""Benchmark: forget one author in a 100,000-post dataset, against re-ingesting the feed without them.

    python3 bench/forget/run.py [--work DIR] [--posts 100000] [--size 16] [--no-doc] [--keep]

The feed (demo generator, photos drawn at ``--size`` px) and its dataset are made once in
``--work`` (reused when present; ``bench/forget/generate.py``). The author with the most kept
posts is forgotten, each time on a fresh copy of the dataset, through the real CLI as a subprocess:

- ``tagsight forget --author ID --root COPY``: tombstone recorded, loader filters (no rewrite);
- ``tagsight forget --author ID --root COPY --rewrite``: shards and catalog rewritten as a new version;
- baseline: what a user without ``tagsight forget`` does: ``tagsight ingest`` of the whole feed again
  with the author added to the opt-out list.

Afterwards it checks that the loader and (after the rewrite) the shards hold none of the author's
samples, and writes the section "Forget one author (100K posts)" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (command_line, facts_markdown, fmt, load_average, machine_facts, markdown_table, publish,  # noqa: E402
                    run_in_scratch, run_timed, setup_logging)
from generate import prepare  # noqa: E402

TITLE = "Forget one author (100K posts)"


def authors_by_posts(dataset: Path) -> list[tuple[str, int]]:
    """(author, kept posts), most posts first."""
    from tagsight.schema import catalog

    return Counter(catalog.read_table(dataset, "posts", ["author_id"]).column("author_id").to_pylist()).most_common()


def tagsight(*args: str) -> list[str]:
    return [sys.executable, "-m", "tagsight.cli", "-q", *args]


def shard_authors(dataset: Path) -> Counter:
    """Author ids of every sample in the manifest's shards, read from the tar files themselves."""
    out: Counter = Counter()
    for entry in json.loads((dataset / "manifest.json").read_text())["shards"]:
        with tarfile.open(dataset / "shards" / entry["name"]) as tar:
            for info in tar:
                if info.name.endswith(".json"):
                    out[json.loads(tar.extractfile(info).read()).get("author_id")] += 1
    return out


def check(dataset: Path, author: str, rewritten: bool) -> dict:
    """Samples of ``author`` the loader yields (must be 0) and the shards still hold (must be 0 after a rewrite)."""
    from tagsight.data.index import SampleIndex

    index = SampleIndex.build(dataset)
    in_loader = sum(a == author for a in index.author_ids)
    in_shards = shard_authors(dataset)[author]
    if in_loader or (rewritten and in_shards):
        raise SystemExit(f"forget left {in_loader} samples in the loader and {in_shards} in the shards")
    return {"loader": in_loader, "shards": in_shards, "left_out": index.forgotten}


def body(work: Path, args: argparse.Namespace, times: dict) -> str:
    facts = machine_facts(("pyarrow",))
    dataset, feed = args.work / "dataset", args.work / "feed"
    ranked = authors_by_posts(dataset)
    (author, n_posts), (typical, n_typical) = ranked[0], ranked[len(ranked) // 2]
    rows, checks = [], {}
    for label, who, n, extra in (
            (f"tagsight forget, busiest author ({n_posts} posts): tombstone + loader filter", author, n_posts, []),
            (f"tagsight forget --rewrite, busiest author ({n_posts} posts): new dataset version", author, n_posts,
             ["--rewrite"]),
            (f"tagsight forget --rewrite, median author ({n_typical} posts): new dataset version", typical, n_typical,
             ["--rewrite"])):
        copy = work / f"copy{len(rows)}"
        shutil.copytree(dataset, copy / "dataset")
        os.sync()  # the copy's writeback must not be charged to the forget that follows
        cmd = tagsight("forget", "--author", who, "--root", str(copy), "--cache-dir", str(copy / "no-cache"), *extra)
        t = run_timed(label, cmd, n)
        if not t.ok:
            raise SystemExit(t.output)
        checks[label.split(":")[0]] = check(copy / "dataset", who, bool(extra))
        rows.append((label, t))
        shutil.rmtree(copy)
    optout = work / "optout.txt"
    optout.write_text((feed / "optout.txt").read_text() + f"\n{author}\n")
    base_cmd = tagsight("ingest", str(feed / "posts.jsonl"), "--format", "jsonl", "--source-name", "demo", "--out",
                        str(work / "reingest"), "--optout", str(optout), "--max-side", str(args.size),
                        "--shard-size", "1000", "--workers", "2")
    base = run_timed("baseline: re-ingest the feed with the busiest author opted out", base_cmd, n_posts)
    if not base.ok:
        raise SystemExit(base.output)
    table = markdown_table(["what", "wall s", "CPU s", "vs baseline (wall)"],
                           [(t.label, fmt(t.wall, 2), fmt(t.cpu, 2), f"{base.wall / t.wall:.1f}x faster")
                            for _, t in rows] + [(base.label, fmt(base.wall, 2), fmt(base.cpu, 2), "1.0x")])
    worst = max((t for _, t in rows), key=lambda t: t.wall)
    reading = (f"Reading: the slowest forget took {worst.wall:.1f} s of wall time for {worst.cpu:.1f} CPU-s "
               f"({worst.wall / worst.cpu:.0f}x: the process waited for a core on a machine whose load average is "
               "in the facts below). " + ("Every forget met the 60 s target in wall time." if worst.wall < 60 else
               "The 60 s target is met in CPU-s, not in wall time under this load; on an idle 2-core machine the "
               "wall time is close to the CPU time."))
    counts = json.loads((dataset / "manifest.json").read_text())["counts"]
    return "\n\n".join([
        f"Forget one author ({author}, the busiest: {n_posts} kept posts; {typical}, the median: {n_typical}) "
        f"in a dataset of {counts['posts_in']:,} posts "
        f"({counts['posts_kept']:,} kept, {counts['media_kept']:,} samples in "
        f"{len(json.loads((dataset / 'manifest.json').read_text())['shards'])} shards; photos drawn at "
        f"{args.size} px by the demo generator). Each forget runs on a fresh copy of the dataset (written "
        "back to disk before the timing starts), through the CLI (Python start-up included). Target: under 60 s. The machine is shared by several "
        "jobs (see the load average): CPU seconds are the steadier figure.",
        table,
        reading,
        "Checks after each run (samples of the author): " + "; ".join(
            f"{k}: loader {v['loader']}, shards {v['shards']}, left out by the loader {v['left_out']}"
            for k, v in checks.items()) + ".",
        f"Making the data (not part of the comparison): generating the {args.posts:,}-post feed took "
        f"{times.get('generate_seconds', 'n/a (reused)')} s, ingesting it {times.get('ingest_seconds', 'n/a (reused)')} s.",
        "Command:\n\n```bash\n" + command_line([sys.executable, *sys.argv]).replace(sys.executable, "python3") + "\n```",
        "Baseline command:\n\n```bash\n" + command_line(base_cmd).replace(sys.executable, "python3") + "\n```",
        facts_markdown({**facts, "load average at end (1/5/15 min)": load_average()}),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/tagsight-bench-forget"))
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--no-doc", action="store_true", help="print the section instead of writing docs/benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    setup_logging()
    times = prepare(args.work, args.posts, args.size, workers=2)
    section = run_in_scratch("tagsight-bench-forget-", args.keep, lambda work: body(work, args, times))
    publish(TITLE, section, args.no_doc)


if __name__ == "__main__":
    main()
