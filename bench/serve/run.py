"""Load benchmark of ``POST /v1/hashtags``: p50/p99 latency and throughput at 1, 8 and 32 clients, batching on/off.

For each batching setting a fresh server process (``bench/serve/server.py``: ``create_app`` under
uvicorn, the resnet18-64px + 240-label stand-in app or ``--bundle``'s real apps) is started on a
free port; then Debian's ``wrk`` (closed loop: each connection sends its next request when the
previous answer arrived) posts real imagenette-160 photos as multipart/form-data (``post.lua``
cycles through ``--photos`` prepared bodies) for ``--duration`` seconds per concurrency, after a
``--warmup`` run that is not counted. Latency percentiles are wrk's (``--latency``); req/s is
wrk's count of completed requests per second; non-2xx answers and socket errors are reported,
the mean batch size comes from the server's ``/metrics`` (batch-size sum / count over the run), and the
server's CPU time per request from ``/proc/PID/stat`` (a figure the other load on a shared machine
changes far less than latency: 2 cores / CPU-s per request bounds the throughput of an idle machine).

    python bench/serve/run.py --data ../shared/data [--duration 15] [--concurrency 1 8 32] [--bundle DIR]

Writes the ``## serve: /v1/hashtags under load`` section of docs/benchmarks.md (``--no-doc`` to print).

The multi-app rows (``--multi-app N``, 3 by default, 0 to skip; ``--multi-only`` runs only them) serve N
stand-in apps sharing one backbone (``bench_app.stand_in_apps``: the resnet18-64px backbone, N heads)
with batching on, and post the same photos two ways: N single-app requests per photo
(``/v1/hashtags``, ``/v1/alt-text``, ...) against one ``/v1/analyze?apps=...`` request per photo.
Photos per second, server CPU ms per photo and latency per request are compared; they go to the
section ``## serve: /v1/analyze for N apps against N single-app requests``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ itself, for `common`

from common import (REPO, command_line, facts_markdown, fmt, load_average, machine_facts,  # noqa: E402
                    markdown_table, publish, run_in_scratch, setup_logging)

log = logging.getLogger("bench.serve")
HERE = Path(__file__).resolve().parent
TITLE = "serve: /v1/hashtags under load"
MULTI_TITLE = "serve: /v1/analyze for N apps against N single-app requests"
PACKAGES = ("tagsight", "torch", "timm", "fastapi", "uvicorn", "pillow")
SETTINGS = {"on": (32, 5.0), "off": (1, 0.0)}  # batching: (max_batch, max_wait_ms)


@dataclass(frozen=True)
class Row:
    batching: str
    clients: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    mean_batch: float
    cpu_ms: float
    load: str


@dataclass(frozen=True)
class MultiRow:
    """One way of asking N apps about each photo, at one concurrency."""

    mode: str          # "single" (N requests per photo) or "analyze" (one request per photo)
    apps: int
    clients: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    cpu_ms: float      # server CPU per request
    load: str

    @property
    def requests_per_photo(self) -> int:
        return self.apps if self.mode == "single" else 1

    @property
    def photos_per_s(self) -> float:
        return self.rps / self.requests_per_photo

    @property
    def cpu_ms_per_photo(self) -> float:
        return self.cpu_ms * self.requests_per_photo


def multi_paths(mode: str, apps: list[str]) -> str:
    """PATHS for post.lua: every app's route in turn, or the one analyze route naming them all."""
    return " ".join(f"/v1/{a}" for a in apps) if mode == "single" else f"/v1/analyze?apps={','.join(apps)}"


# --------------------------------------------------------------------------------------- inputs


def write_bodies(data: Path, out: Path, count: int) -> tuple[str, int]:
    """``count`` multipart bodies, one imagenette-160 val photo each; returns (boundary, mean body bytes)."""
    photos = sorted((data / "imagenette-160" / "val").glob("*/*.JPEG"))[::37][:count]
    if len(photos) < count:
        raise SystemExit(f"need {count} photos under {data}/imagenette-160/val, found {len(photos)}")
    boundary = uuid.uuid4().hex
    out.mkdir(parents=True, exist_ok=True)
    sizes = []
    for i, photo in enumerate(photos):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{photo.name}\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        (out / f"body-{i}.bin").write_bytes(body)
        sizes.append(len(body))
    return boundary, sum(sizes) // len(sizes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------- the server


class Server:
    """``bench/serve/server.py`` in a subprocess, up when ``/healthz`` answers."""

    def __init__(self, batching: str, args: argparse.Namespace, multi_app: int = 0) -> None:
        max_batch, wait = SETTINGS[batching]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, str(HERE / "server.py"), "--port", str(self.port), "--max-batch",
                        str(max_batch), "--max-wait-ms", str(wait), "--torch-threads", str(args.torch_threads)]
        if args.bundle:
            self.command += ["--bundle", str(args.bundle)]
        elif multi_app:
            self.command += ["--multi-app", str(multi_app)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.proc = subprocess.Popen(self.command, env=env)
        deadline = time.monotonic() + 600  # importing torch and timm takes minutes on a loaded machine
        while True:
            try:
                httpx.get(self.url + "/healthz", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise SystemExit(f"the server did not start: {command_line(self.command)}") from None
                time.sleep(0.3)

    def apps(self) -> list[str]:
        return sorted(httpx.get(self.url + "/healthz", timeout=10).json()["apps"])

    def batch_totals(self, app: str = "hashtags") -> tuple[float, float]:
        """(sum, count) of the batch-size histogram of ``app``."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        pick = lambda name: float(re.search(rf'^{name}{{app="{app}"}} (\S+)$', text, re.M).group(1))  # noqa: E731
        return pick("tagsight_batch_size_sum"), pick("tagsight_batch_size_count")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


# --------------------------------------------------------------------------------------- wrk


def wrk_command(url: str, clients: int, seconds: float) -> list[str]:
    threads = 1 if clients < 8 else 2
    return ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s", "--latency", "--timeout", "10s",
            "-s", str(HERE / "post.lua"), url + "/v1/hashtags"]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests, req/s, p50/p99 (ms), non-2xx and socket errors from wrk's ``--latency`` report."""
    found = {"requests": float(re.search(r"(\d+) requests in", out).group(1)),
             "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
             "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
             "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    found["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    found["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return found


def run_wrk(url: str, clients: int, seconds: float, env: dict[str, str]) -> tuple[dict[str, float], str]:
    proc = subprocess.run(wrk_command(url, clients, seconds), env=env, capture_output=True, text=True, check=True)
    return parse_wrk(proc.stdout), proc.stdout


# --------------------------------------------------------------------------------------- the runs


def measure(batching: str, args: argparse.Namespace, env: dict[str, str]) -> list[Row]:
    server = Server(batching, args)
    rows = []
    try:
        run_wrk(server.url, 8, args.warmup, env)
        for clients in args.concurrency:
            before, cpu0 = server.batch_totals(), server.cpu_seconds()
            load = load_average()
            result, out = run_wrk(server.url, clients, args.duration, env)
            cpu = server.cpu_seconds() - cpu0
            after = server.batch_totals()
            mean_batch = (after[0] - before[0]) / max(1.0, after[1] - before[1])
            log.info("batching %s, %d clients: %.1f req/s, p50 %.1f ms, p99 %.1f ms, mean batch %.1f",
                     batching, clients, result["rps"], result["p50_ms"], result["p99_ms"], mean_batch)
            rows.append(Row(batching, clients, int(result["requests"]), result["rps"], result["p50_ms"],
                            result["p99_ms"], int(result["non_2xx"]), int(result["socket_errors"]), mean_batch,
                            1000 * cpu / max(1.0, result["requests"]), load))
    finally:
        server.stop()
    return rows


def measure_multi(args: argparse.Namespace, env: dict[str, str]) -> list[MultiRow]:
    """N single-app requests per photo against one /v1/analyze request per photo, same server, same photos."""
    server = Server("on", args, args.multi_app)
    rows = []
    try:
        apps = server.apps()[:args.multi_app] if args.bundle else server.apps()
        for mode in ("single", "analyze"):
            mode_env = {**env, "PATHS": multi_paths(mode, apps)}
            run_wrk(server.url, 8, args.warmup, mode_env)
            for clients in args.concurrency:
                cpu0, load = server.cpu_seconds(), load_average()
                result, _ = run_wrk(server.url, clients, args.duration, mode_env)
                cpu = server.cpu_seconds() - cpu0
                row = MultiRow(mode, len(apps), clients, int(result["requests"]), result["rps"], result["p50_ms"],
                               result["p99_ms"], int(result["non_2xx"]), 1000 * cpu / max(1.0, result["requests"]),
                               load)
                log.info("%s x %d apps, %d clients: %.1f photos/s, CPU %.1f ms/photo", mode, len(apps), clients,
                         row.photos_per_s, row.cpu_ms_per_photo)
                rows.append(row)
    finally:
        server.stop()
    return rows


def multi_section(rows: list[MultiRow], args: argparse.Namespace, facts: dict[str, str]) -> str:
    table = markdown_table(
        ["asked as", "apps", "clients", "requests", "photos/s", "p50 ms/request", "p99 ms/request", "non-2xx",
         "server CPU ms/photo", "load avg at start"],
        [(f"{r.apps} single-app requests" if r.mode == "single" else "one /v1/analyze", r.apps, r.clients,
          r.requests, fmt(r.photos_per_s, 1), fmt(r.p50_ms, 1), fmt(r.p99_ms, 1), r.non_2xx,
          fmt(r.cpu_ms_per_photo, 1), r.load) for r in rows])
    by = {(r.mode, r.clients): r for r in rows}
    ratios = [f"{c} clients: {by['analyze', c].photos_per_s / by['single', c].photos_per_s:.2f}x photos/s, "
              f"{by['single', c].cpu_ms_per_photo / max(by['analyze', c].cpu_ms_per_photo, 1e-9):.2f}x less CPU"
              for c in args.concurrency if ("single", c) in by and ("analyze", c) in by
              and by["single", c].photos_per_s > 0]
    app = f"the apps of `{args.bundle}`" if args.bundle else (
        f"{args.multi_app} stand-in apps sharing one backbone (`bench/serve/bench_app.py:stand_in_apps`: a random "
        "resnet18 at 64 px, one 240-label linear head per app)")
    return "\n".join([
        f"Command: `{command_line([sys.executable.rsplit('/', 1)[-1], *sys.argv])}`", "",
        *_load_warning(rows),
        f"App: {app}; batching on (`--max-batch 32 --max-wait-ms 5`); torch threads {args.torch_threads or 'default'}. "
        f"Debian `wrk` {_wrk_version()} posts {args.photos} imagenette-160 val photos in turn, each either to every "
        "app's `/v1/<app>` (one request per app) or once to `/v1/analyze?apps=...`; "
        f"{args.duration:g} s per row after a {args.warmup:g} s warm-up, one server for all rows.", "",
        table, "",
        "One analyze request over N single-app requests: " + (", ".join(ratios) or "n/a") + ".", "",
        facts_markdown(facts)])


def section(rows: list[Row], args: argparse.Namespace, facts: dict[str, str], mean_body: int) -> str:
    table = markdown_table(
        ["batching", "clients", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "mean batch",
         "server CPU ms/req", "load avg at start"],
        [(r.batching, r.clients, r.requests, fmt(r.rps, 1), fmt(r.p50_ms, 1), fmt(r.p99_ms, 1), r.non_2xx,
          r.socket_errors, fmt(r.mean_batch, 1), fmt(r.cpu_ms, 1), r.load) for r in rows])
    by = {(r.batching, r.clients): r for r in rows}
    speedups = [f"{c} clients: {by['on', c].rps / by['off', c].rps:.2f}x" for c in args.concurrency
                if ("on", c) in by and ("off", c) in by and by["off", c].rps > 0]
    app = f"the apps of `{args.bundle}`" if args.bundle else (
        "`bench/serve/bench_app.py:ResNetHashtagsStandIn` (a random resnet18 at 64 px + linear head over 240 "
        "labels: the small preset's compute, not the real hashtags app; rerun with `--bundle`)")
    return "\n".join([
        f"Command: `{command_line([sys.executable.rsplit('/', 1)[-1], *sys.argv])}`", "",
        *_load_warning(rows),
        f"Load tool: Debian `wrk` {_wrk_version()} (closed loop, `--latency`), `bench/serve/post.lua` posting "
        f"{args.photos} imagenette-160 val photos in turn as multipart/form-data (mean body {mean_body:,} bytes). "
        f"App: {app}; torch threads {args.torch_threads or 'default'}. Batching on = `--max-batch 32 --max-wait-ms 5`, "
        f"off = `--max-batch 1`. {args.duration:g} s per row after a {args.warmup:g} s warm-up; one fresh "
        "server per batching setting.", "",
        table, "",
        "Throughput with batching over without: " + (", ".join(speedups) or "n/a") + ".", "",
        *verdict(by), facts_markdown(facts)])


P99_TARGET_MS, P99_CLIENTS, BATCHING_TARGET = 100.0, 8, 2.0


def verdict(by: dict[tuple[str, int], Row]) -> list[str]:
    """The issue's targets read off the rows: p99 <= 100 ms at 8 clients (batching on), batching >= 2x req/s."""
    lines = []
    at8 = by.get(("on", P99_CLIENTS))
    if at8 is not None:
        met = "met" if at8.p99_ms <= P99_TARGET_MS else "**not met**"
        lines.append(f"p99 at {P99_CLIENTS} clients with batching: {at8.p99_ms:.1f} ms (target <= "
                     f"{P99_TARGET_MS:g} ms: {met}).")
    ratios = {c: by["on", c].rps / by["off", c].rps for (b, c) in by
              if b == "on" and ("off", c) in by and by["off", c].rps > 0}
    if ratios:
        best = max(ratios, key=ratios.get)
        met = "met" if ratios[best] >= BATCHING_TARGET else "**not met**"
        short = [f"{c} clients ({r:.2f}x)" for c, r in sorted(ratios.items()) if r < BATCHING_TARGET]
        lines.append(f"Batching throughput: {ratios[best]:.2f}x at {best} clients (target >= {BATCHING_TARGET:g}x: "
                     f"{met})" + (f"; below 2x at {', '.join(short)}" if short else "") + ". At 1 client the 5 ms "
                     "collection window costs throughput: serve one client at a time with `--max-batch 1`.")
    return [" ".join(lines), ""] if lines else []


def _load_warning(rows: list[Row] | list[MultiRow]) -> list[str]:
    """A warning paragraph when other work had more runnable processes than the machine has cores."""
    ones = [float(r.load.split()[0]) for r in rows if re.match(r"[\d.]+ ", r.load)]
    worst, cores = max(ones, default=0.0), os.cpu_count() or 1
    if worst <= cores:
        return []
    return [f"**Overloaded machine:** the 1-minute load average reached {worst:.1f} on {cores} cores during these "
            "runs (other jobs), so this server got a small share of the CPU. The latencies and req/s below say "
            "little about the targets; the ratios between rows and the server CPU ms per request are the "
            "figures to read. Rerun on a quiet machine.", ""]


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout + ""
    match = re.search(r"wrk (\S+)", out)
    return match.group(1) if match else "(version unknown)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("TAGSIGHT_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--duration", type=float, default=15.0, help="seconds per row")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--batching", nargs="+", default=["on", "off"], choices=sorted(SETTINGS))
    p.add_argument("--photos", type=int, default=16)
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads in the server (0: default)")
    p.add_argument("--bundle", type=Path, default=None, help="serve this bundle's real apps instead of the stand-in")
    p.add_argument("--multi-app", type=int, default=3, help="apps of the multi-app rows (0: no multi-app rows)")
    p.add_argument("--multi-only", action="store_true", help="run only the multi-app rows")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args()
    setup_logging()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    facts = machine_facts(PACKAGES)

    def env_for(work: Path) -> tuple[dict[str, str], int]:
        boundary, mean_body = write_bodies(args.data, work / "bodies", args.photos)
        return {**os.environ, "BODY_DIR": str(work / "bodies"), "BODY_COUNT": str(args.photos),
                "BOUNDARY": boundary}, mean_body

    def body(work: Path) -> str:
        env, mean_body = env_for(work)
        rows = [row for batching in args.batching for row in measure(batching, args, env)]
        return section(rows, args, facts, mean_body)

    def multi_body(work: Path) -> str:
        return multi_section(measure_multi(args, env_for(work)[0]), args, facts)

    if not args.multi_only:
        publish(TITLE, run_in_scratch("tagsight-bench-serve-", args.keep, body), args.no_doc)
    if args.multi_app:
        publish(MULTI_TITLE, run_in_scratch("tagsight-bench-serve-multi-", args.keep, multi_body), args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
