"""Fetching URL lists: ``tagsight ingest --format urls`` against ``img2dataset --url_list`` over HTTP.

N photos of imagenette-160/train are served by ``bench/fetch/server.py`` on 127.0.0.1 (its own
process, started here and stopped after every timed run, so its CPU time is counted for neither
tool). Both tools get the same plain URL list (one URL a line, as img2dataset's ``--input_format
txt`` takes it) and store WebDataset shards with the longest side at most ``--max-side`` px, JPEG
quality ``--jpeg-quality``, the same number of samples per shard, ``--workers`` processes each.
Both check the opt-out headers they check by default (tagsight also asks for robots.txt and
TDM-Rep's tdmrep.json once per site; the server answers 404, a site without them).

The machinery is bench/ingest's (``bench/ingest/run.py``): CPU time of each tool and all its
workers from ``getrusage(RUSAGE_CHILDREN)``, a tiny run of each tool for its start-up cost
(steady = (N - n) / (cost(N) - cost(n))), rounds alternating the tools, medians of per-round
ratios, the machine section. Output parity: photos stored, stored width x height of every photo,
shard bytes. Finally, the CPU cost of tagsight's fetching alone (``Fetcher.fetch_all`` in this
process, no image work) and a cProfile of it, to show where a fetch's time goes, and one whole ingest's
CPU split by thread (``cpu_split.py``: the fetch threads against the main thread's image work).

    python bench/fetch/run.py [--data ../shared/data] [--limit 3000] [--workers 1] [--img2dataset PATH]
    python bench/fetch/run.py --quick --no-doc     # 24 photos, one round: a smoke test

Writes the ``## fetch: tagsight vs img2dataset over HTTP`` section of docs/benchmarks.md
(``--no-doc`` prints it instead). Without img2dataset (``--img2dataset`` or on PATH) its column is
skipped and the section says why.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import logging
import os
import pstats
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))  # bench/ itself, for `common`
sys.path.insert(1, str(BENCH.parent / "src"))  # this checkout's tagsight, for the fetching-alone measurement

from common import (REPO, Timing, command_line, facts_markdown, fmt, load_average, machine_facts,  # noqa: E402
                    markdown_table, publish, run_in_scratch, run_timed, setup_logging, warm_page_cache)


def _load_ingest_bench() -> Any:
    """bench/ingest/run.py as a module: its runs, checks and tables are this benchmark's too."""
    spec = importlib.util.spec_from_file_location("bench_ingest_run", BENCH / "ingest" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ib = _load_ingest_bench()
log = logging.getLogger("bench.fetch")

TITLE = "fetch: tagsight vs img2dataset over HTTP"
DATASET = ib.DATASET
SERVER = Path(__file__).resolve().parent / "server.py"
CPU_SPLIT = Path(__file__).resolve().parent / "cpu_split.py"
QUICK = {"limit": 24, "tiny": 8, "repeat": 1, "profile_limit": 24}


@dataclass
class Served:
    """The photos behind the server: their URLs, the tiny subset's, and the server process."""

    base: str
    urls: list[str]
    tiny_urls: list[str]
    files: list[Path]
    process: subprocess.Popen[str] = field(repr=False)


# --------------------------------------------------------------------------------------- server


def start_server(data_root: Path, files: list[Path], work: Path) -> tuple[subprocess.Popen[str], int]:
    """The photo server as its own process, and its port; returns once it listens (the port is its first line)."""
    listing = work / "served.txt"
    listing.write_text("".join(f"{f.relative_to(data_root).as_posix()}\n" for f in files), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(SERVER), str(data_root), str(listing)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise SystemExit(f"bench/fetch: the photo server did not start (said {line!r})")
    return proc, int(line.split()[1])


def serve(data_root: Path, work: Path, limit: int, tiny: int) -> Served:
    files = ib.strided(ib.list_images(data_root), limit)
    if not files:
        raise SystemExit(f"no images under {data_root}")
    warm_page_cache(files)
    proc, port = start_server(data_root, files, work)
    base = f"http://127.0.0.1:{port}/"
    urls = [base + f.relative_to(data_root).as_posix() for f in files]
    log.info("%d photos served at %s", len(urls), base)
    return Served(base, urls, ib.strided(urls, tiny), files, proc)


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------- commands


def tagsight_command(urls: Path, out: Path, args: argparse.Namespace, shard: int) -> list[str]:
    """This checkout's tagsight (``python -m tagsight.cli`` with ``src`` first on PYTHONPATH)."""
    return [sys.executable, "-m", "tagsight.cli", "ingest", str(urls), "--format", "urls", "--out", str(out),
            *_ingest_options(args, shard)]


def _ingest_options(args: argparse.Namespace, shard: int) -> list[str]:
    return ["--workers", str(args.workers), "--max-side", str(args.max_side), "--jpeg-quality",
            str(args.jpeg_quality), "--shard-size", str(shard), "--allow-private-addresses",
            "--fetch-threads", str(args.thread_count)]


def img2dataset_command(urls: Path, out: Path, args: argparse.Namespace, shard: int) -> list[str]:
    """bench/ingest's img2dataset command, with img2dataset's default X-Robots-Tag check kept on."""
    cmd = ib.img2dataset_command(urls, out, args.workers, args, shard)
    i = cmd.index("--disallowed_header_directives")
    return cmd[:i] + cmd[i + 2:]


def find_img2dataset(given: Path | None) -> tuple[Path | None, str]:
    """The img2dataset script to run, or None and why it is not measured."""
    if given is not None:
        return (given, "") if given.is_file() else (None, f"{given} does not exist")
    found = shutil.which("img2dataset")
    if found:
        return Path(found), ""
    return None, ("img2dataset is not installed (it pins webdataset<0.3: bench/ingest/README.md installs it in its "
                  "own environment; pass --img2dataset PATH)")


# --------------------------------------------------------------------------------------- runs


def _run_once(label: str, tool: str, urls: list[str], out: Path, args: argparse.Namespace, shard: int,
              work: Path) -> Timing:
    shutil.rmtree(out, ignore_errors=True)
    listing = work / f"urls-{len(urls)}.txt"
    listing.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
    if tool == "tagsight":
        cmd, env = tagsight_command(listing, out, args, shard), {"PYTHONPATH": str(REPO / "src")}
    else:
        cmd, env = img2dataset_command(listing, out, args, shard), ib.ENV
    timing = run_timed(label, cmd, len(urls), env=env)
    ib.check_run(tool, timing, out)
    return timing


def run_round(config: Any, served: Served, work: Path, args: argparse.Namespace, shard: int) -> None:
    """One full and one tiny run of one tool, appended to ``config`` (bench/ingest's Config)."""
    label = f"{config.tool} x{config.processes}"
    config.loads.append(os.getloadavg()[0])
    config.full_runs.append(_run_once(label, config.tool, served.urls, config.out, args, shard, work))
    tiny_out = work / f"tiny-{config.tool}"
    config.tiny_runs.append(_run_once(f"{label} (tiny)", config.tool, served.tiny_urls, tiny_out, args, shard, work))
    shutil.rmtree(tiny_out, ignore_errors=True)


# --------------------------------------------------------------------------------------- parity


@dataclass
class Parity:
    stored: dict[str, int]
    compared: int = 0
    equal: int = 0
    examples: list[str] = field(default_factory=list)
    shard_bytes: dict[str, int] = field(default_factory=dict)


def _tagsight_sizes(out: Path) -> dict[str, tuple[int, int]]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "catalog" / "media.parquet", columns=["path", "status", "width", "height"]).to_pylist()
    return {r["path"]: (r["width"], r["height"]) for r in rows if r["status"] == "ok"}


def _img2dataset_sizes(out: Path) -> dict[str, tuple[int, int]]:
    import pyarrow.parquet as pq

    sizes = {}
    for path in sorted(out.glob("*.parquet")):
        for r in pq.read_table(path, columns=["url", "status", "width", "height"]).to_pylist():
            if r["status"] == "success":
                sizes[r["url"]] = (r["width"], r["height"])
    return sizes


def parity(ts_out: Path, i2d_out: Path | None) -> Parity:
    """Photos stored by each tool, and the stored width x height of every photo both stored (keyed by URL)."""
    ts = _tagsight_sizes(ts_out)
    check = Parity({"tagsight": ib.tagsight_kept(ts_out)},
                   shard_bytes={"tagsight": sum(p.stat().st_size for p in (ts_out / "shards").glob("*.tar"))})
    if i2d_out is None:
        return check
    i2d = _img2dataset_sizes(i2d_out)
    check.stored["img2dataset"] = ib.img2dataset_stats(i2d_out)[0]
    check.shard_bytes["img2dataset"] = sum(p.stat().st_size for p in i2d_out.glob("*.tar"))
    common = sorted(ts.keys() & i2d.keys())
    check.compared, check.equal = len(common), sum(ts[k] == i2d[k] for k in common)
    check.examples = [f"{k}: tagsight {ts[k]}, img2dataset {i2d[k]}" for k in common if ts[k] != i2d[k]][:3]
    return check


# --------------------------------------------------------------------------------------- fetch cost


def fetch_cost(urls: list[str], args: argparse.Namespace) -> tuple[float, float, list[tuple[str, float]]]:
    """tagsight's fetching alone, in this process: (CPU ms per URL with the run's threads, the same one
    URL at a time, cProfile's top functions by own time in ms per URL for the one-at-a-time run)."""
    from tagsight.ingest.fetch import FetchConfig, Fetcher

    cfg = FetchConfig(allow_private_addresses=True, threads=args.thread_count)
    with Fetcher(cfg, 50 * 2**20) as fetcher:
        fetcher.fetch(urls[0])  # robots.txt and tdmrep.json, once for the site, outside the timing
        t0 = time.process_time()
        bodies = fetcher.fetch_all(urls)
        threaded = time.process_time() - t0
    if any(not isinstance(b, bytes) for b in bodies):
        raise SystemExit(f"bench/fetch: fetching failed: {next(b for b in bodies if not isinstance(b, bytes))!r}")
    profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for the server is not the fetcher's cost
    with Fetcher(cfg, 50 * 2**20) as fetcher:
        fetcher.fetch(urls[0])
        t0 = time.process_time()
        profiler.runcall(lambda: [fetcher.fetch(u) for u in urls])
        serial = time.process_time() - t0
    if args.pstats:
        profiler.dump_stats(args.pstats)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = sorted(((f"{Path(k[0]).name}:{k[2]}", v[2]) for k, v in stats.items()), key=lambda x: -x[1])[:8]
    n = len(urls)
    return 1000 * threaded / n, 1000 * serial / n, [(name, 1000 * s / n) for name, s in top]


def cpu_split(served: Served, work: Path, args: argparse.Namespace, shard: int) -> dict[str, float]:
    """Steady CPU ms per photo of one whole ingest in one process (``cpu_split.py`` on the full and the tiny
    URL lists, the difference over the difference in photos): ``process``, ``main`` and ``fetch`` threads."""
    runs = []
    for urls in (served.urls, served.tiny_urls):
        listing, out = work / f"split-{len(urls)}.txt", work / f"split-out-{len(urls)}"
        listing.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run([sys.executable, str(CPU_SPLIT), str(listing), str(out), *_ingest_options(args, shard)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"bench/fetch: cpu_split.py failed:\n{proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        shutil.rmtree(out, ignore_errors=True)
    full, tiny = runs
    photos = full["photos"] - tiny["photos"]
    return {k: 1000 * (full[k] - tiny[k]) / photos for k in ("process", "main", "fetch")}


# --------------------------------------------------------------------------------------- report


@dataclass
class Results:
    args: argparse.Namespace
    facts: dict[str, str]
    configs: list[Any]
    check: Parity
    skipped: str
    shard: int
    work: Path
    base: str
    cost: tuple[float, float, list[tuple[str, float]]]
    split: dict[str, float]


def verdict(r: Results) -> str:
    t = next(c for c in r.configs if c.tool == "tagsight")
    if r.skipped:
        return (f"**Target (issue 19, point 4): tagsight >= 2x img2dataset in images per CPU-second. Not measured "
                f"here: {r.skipped}.** tagsight alone: {fmt(t.full.per_cpu)} images per CPU-second end to end, "
                f"{fmt(t.steady_per_cpu)} steady.")
    i = next(c for c in r.configs if c.tool == "img2dataset")
    e2e_r, steady_r = ib.round_ratios(r.configs, r.args.workers)
    e2e, steady = ib._med(e2e_r), ib._med(steady_r)
    status = ("Undetermined" if e2e != e2e else "Met end to end and in steady state" if e2e >= 2 and steady >= 2
              else "Met end to end, not in steady state" if e2e >= 2 else "Not met")
    return (f"**Target (issue 19, point 4): tagsight >= 2x img2dataset in images per CPU-second. {status}.** "
            f"tagsight fetches and stores {fmt(t.full.per_cpu)} images per CPU-second end to end against "
            f"img2dataset's {fmt(i.full.per_cpu)} ({e2e:.2f}x, median of the per-round ratios); in steady state "
            f"(start-up taken out) {fmt(t.steady_per_cpu)} against {fmt(i.steady_per_cpu)} ({steady:.2f}x). "
            f"Start-up: {fmt(t.tiny.cpu, 1)} CPU-s for tagsight, {fmt(i.tiny.cpu, 1)} for img2dataset "
            f"({t.tiny.items} photos).")


def parity_lines(check: Parity, n: int) -> str:
    stored = ", ".join(f"{tool} {k:,} of {n:,}" for tool, k in check.stored.items())
    lines = [f"- Photos stored (tagsight: kept plus recorded duplicates; img2dataset: successes): {stored}."]
    if check.compared:
        lines.append(f"- Stored width x height, by URL: {check.equal:,} of {check.compared:,} photos identical"
                     + (f"; e.g. {'; '.join(check.examples)}" if check.examples else "") + ".")
    lines.append("- Shard bytes: " + ", ".join(f"{tool} {b / 2**20:.1f} MiB ({b / max(n, 1) / 1024:.1f} KiB per photo)"
                                               for tool, b in check.shard_bytes.items()) + ".")
    return "\n".join(lines)


def cost_lines(r: Results) -> str:
    threaded, serial, top = r.cost
    t = next(c for c in r.configs if c.tool == "tagsight")
    steady_ms = 1000 / t.steady_per_cpu if t.steady_per_cpu == t.steady_per_cpu else float("nan")
    rows = [[f"`{name}`", fmt(ms, 3)] for name, ms in top]
    return (f"tagsight's fetching alone (`tagsight.ingest.fetch.Fetcher` in the benchmark's process, the same URLs, "
            f"no image work): {fmt(threaded, 3)} CPU ms per URL with {r.args.thread_count} threads, "
            f"{fmt(serial, 3)} one URL at a time under cProfile; against {fmt(steady_ms, 3)} CPU ms per photo "
            f"for the whole steady ingest above. {split_line(r.split)} Functions with the most own time in the "
            f"profiled run (ms per URL, profiler overhead included):\n\n" + markdown_table(["function", "ms per URL"], rows))


def split_line(split: dict[str, float]) -> str:
    rest = split["process"] - split["main"] - split["fetch"]
    return (f"In one whole ingest in one process, split by thread (`bench/fetch/cpu_split.py` on the full and the "
            f"tiny URL lists, steady CPU per photo): {fmt(split['process'], 3)} ms in all, {fmt(split['fetch'], 3)} "
            f"in the fetch threads, {fmt(split['main'], 3)} in the main thread (the image work, chunk cache, "
            f"shards, catalog) and {fmt(rest, 3)} elsewhere.")


def _shown(command: Sequence[str]) -> list[str]:
    """A tool command as a reader would type it: console scripts by name, this interpreter as ``python3``."""
    return ["python3" if c == sys.executable else c for c in ib._short(command)]


def render(r: Results) -> str:
    n = r.configs[0].full.items
    cmds = "\n".join(command_line(_shown(c.full.command)).replace(str(r.work), "$TMP").replace(r.base, "$BASE/")
                     for c in r.configs)
    bench_cmd = command_line([Path(sys.executable).name, *sys.argv])
    parts = [
        f"{n:,} photos of `{DATASET}` served over HTTP/1.1 from 127.0.0.1 by `bench/fetch/server.py` (its own "
        f"process, not counted), fetched and stored as WebDataset shards, longest side {r.args.max_side} px, JPEG "
        f"quality {r.args.jpeg_quality}, {r.shard} samples per shard, {r.args.workers} process(es) and "
        f"{r.args.thread_count} fetch threads per tool. Produced by:\n\n```\n{bench_cmd}\n```",
        "Machine:\n\n" + facts_markdown(r.facts),
        f"Tool commands (`$TMP` a scratch folder, `$BASE` the server; each also ran on a strided subset of "
        f"{r.configs[0].tiny.items} URLs for its start-up cost; steady = (N - n) / (cost(N) - cost(n)); "
        f"{r.args.repeat} round(s), tools alternated; the tables show each tool's run with the median CPU time, "
        f"ratios are medians of the per-round ratios):\n\n```\n{cmds}\n```",
        ib.results_table(r.configs),
    ]
    if r.skipped:
        parts.append(f"img2dataset: skipped ({r.skipped}).")
    else:
        parts.append("tagsight / img2dataset:\n\n" + ib.ratio_table(r.configs))
    parts += [verdict(r), "Same output, checked:\n\n" + parity_lines(r.check, n), cost_lines(r), WORK_NOTE,
              "What each change to the fetching path bought is in `bench/fetch/README.md`."]
    return "\n\n".join(parts)


WORK_NOTE = """Not the same work. Per photo both tools download it, decode, resize (longest side to the
target, never up), re-encode as JPEG and write a tar shard with a JSON sidecar, and check the
response's X-Robots-Tag. tagsight also asks the site for robots.txt and tdmrep.json once, checks
the tdm-reservation header, the content type and the size limit while streaming, validates every
URL, checks the header before decoding, applies the EXIF orientation, computes a perceptual hash and
the sha256, de-duplicates, keeps a resumable chunk cache and writes a 5-table catalog and a
manifest. img2dataset fetches with `urllib` (a new connection per photo), tagsight with one
keep-alive connection pool for the run."""


# --------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ib.default_data_dir(), help="shared data folder (holds imagenette-160)")
    p.add_argument("--limit", type=int, default=3000, help="photos served and fetched (default 3000)")
    p.add_argument("--workers", type=int, default=1, help="processes per tool (default 1)")
    p.add_argument("--max-side", type=int, default=128, help="longest side of stored images (default 128)")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality for both tools (default 90)")
    p.add_argument("--shard-size", type=int, default=None, help="samples per shard (default: min(2 x workers, 5) "
                   "shards, as bench/ingest)")
    p.add_argument("--img2dataset", type=Path, default=None, help="img2dataset's script (default: the one on PATH)")
    p.add_argument("--thread-count", type=int, default=16, help="fetch threads of each tool (default 16, "
                   "tagsight's default)")
    p.add_argument("--tiny", type=int, default=16, help="URLs in the start-up-cost runs (default 16)")
    p.add_argument("--repeat", type=int, default=2, help="rounds, tools alternated (default 2)")
    p.add_argument("--profile-limit", type=int, default=1000, help="URLs in the fetching-alone runs (default 1000)")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK['limit']} photos, one round")
    p.add_argument("--pstats", type=Path, default=None, help="also dump the fetch cProfile stats here")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown file to update")
    p.add_argument("--no-doc", action="store_true", help="print the section instead of writing it")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (outputs of every run)")
    args = p.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    ib.require_positive(p, args, ("limit", "workers", "max_side", "jpeg_quality", "shard_size", "thread_count", "tiny",
                                  "repeat", "profile_limit"))
    if args.tiny >= args.limit:
        p.error("--tiny must be smaller than --limit")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    data_root = args.data / DATASET
    if not data_root.is_dir():
        print(f"bench/fetch: {data_root} not found (pass --data or set TAGSIGHT_DATA)", file=sys.stderr)
        return 2
    i2d, skipped = find_img2dataset(args.img2dataset)
    args.img2dataset = i2d
    facts = machine_facts(ib.PACKAGES[:2])
    if i2d is not None and (i2d.parent / "python").exists():
        facts.update(ib._versions_in(i2d.parent / "python", ("img2dataset", "albumentations", "webdataset")))
    section = run_in_scratch("tagsight-bench-fetch-", args.keep,
                             lambda work: _run_all(args, data_root, work, facts, skipped))
    publish(TITLE, section, args.no_doc, args.doc)
    return 0


def _run_all(args: argparse.Namespace, data_root: Path, work: Path, facts: dict[str, str], skipped: str) -> str:
    served = serve(data_root, work, args.limit, args.tiny)
    try:
        shard = ib.shard_size(len(served.urls), args.workers, args.shard_size)
        tools = ("tagsight",) if args.img2dataset is None else ("tagsight", "img2dataset")
        configs = [ib.Config(tool, args.workers, work / f"out-{tool}") for tool in tools]
        for r in range(args.repeat):
            log.info("round %d of %d", r + 1, args.repeat)
            for config in configs:
                run_round(config, served, work, args, shard)
        facts["load average at end (1/5/15 min)"] = load_average()
        check = parity(configs[0].out, configs[1].out if len(configs) > 1 else None)
        cost = fetch_cost(ib.strided(served.urls, args.profile_limit), args)
        split = cpu_split(served, work, args, shard)
    finally:
        stop_server(served.process)
    return render(Results(args, facts, configs, check, skipped, shard, work, served.base, cost, split))


if __name__ == "__main__":
    sys.exit(main())
