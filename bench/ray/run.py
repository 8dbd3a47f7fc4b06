"""The Ray engine against the local one, and 1 against 2 Ray nodes.

```
python bench/ray/run.py [--data ../shared/data] [--limit 400] [--workers 2] [--nodes]
                        [--out results.json] [--quick]
```

Two sections, each on the same copy of ``--limit`` imagenette-160 photos (spread over the classes):

- ``engines``: ``ingest`` of the photos (blocks of 50 media, longest side 128 px) with ``--engine local`` and ``--engine ray`` (a local Ray with
  ``--workers`` CPUs), images per wall-second and per CPU-second. CPU is user + system time of this
  process and every process below it (pool workers; Ray's GCS, raylet and workers), read from /proc
  just before and after the ingest, so Ray's start-up is excluded and reported apart. The two
  dataset versions must be equal.
- ``nodes`` (with ``--nodes``): a Ray cluster of ``ray start --head --num-cpus 1`` and, second, one
  more ``ray start --address HEAD --num-cpus 1`` node, both on this machine, each started as a
  process of this script and stopped by its process id; wall time with one node, then two.
``--quick``: 12 generated photos and no ``--nodes`` unless asked: a check that the script works
(tests/bench/test_ray_bench.py), not a measurement. Prints a Markdown summary; ``--out`` saves the JSON.
URL fetching against img2dataset is ``bench/fetch/run.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.common import REPO, descendants, load_average  # noqa: E402

log = logging.getLogger("bench.ray")
SRC = str(REPO / "src")


# --------------------------------------------------------------------------------------- inputs


def pick_photos(data: Path, limit: int) -> list[Path]:
    """``limit`` photos spread over the classes of imagenette-160 (train then val), in a stable order."""
    classes = sorted(p for split in ("train", "val") for p in (data / "imagenette-160" / split).iterdir() if p.is_dir())
    per_class = [sorted(c.glob("*.JPEG")) for c in classes]
    picked, i = [], 0
    while len(picked) < limit and any(i < len(c) for c in per_class):
        picked += [c[i] for c in per_class if i < len(c)][: limit - len(picked)]
        i += 1
    return picked


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` small generated photos (for --quick)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng, out = np.random.default_rng(0), []
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((96, 72))
        out.append(folder / f"{i:04d}.jpg")
        coarse.save(out[-1], quality=90)
    return out


def posts_source(photos: list[Path], folder: Path) -> Path:
    """A JSONL source whose posts hold copies of ``photos`` (copied: sources read media below their folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, photo in enumerate(photos):
        name = f"{i:05d}.jpg"
        if photo.parent != folder:
            shutil.copyfile(photo, folder / name)
        else:
            name = photo.name
        lines.append(json.dumps({"post_id": str(i), "author_id": f"a{i % 7}", "created_at": 0,
                                 "visibility": "public", "caption": f"#c{i % 10}", "media": [name]}))
    (folder / "posts.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "posts.jsonl"


# --------------------------------------------------------------------------------------- measuring


def tree_cpu(exclude: set[int] = frozenset()) -> float:
    """CPU seconds (user + system) of this process and every live process below it, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in [os.getpid(), *descendants(os.getpid())]:
        if pid in exclude:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measured(fn: Callable[[], Any], items: int) -> dict[str, Any]:
    """Wall and process-tree CPU seconds of ``fn()``; its return value under ``value``."""
    cpu0, t0 = tree_cpu(), time.perf_counter()
    value = fn()
    wall, cpu = time.perf_counter() - t0, tree_cpu() - cpu0
    return {"items": items, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "per_wall_s": round(items / wall, 1),
            "per_cpu_s": round(items / cpu, 1) if cpu > 0 else None, "value": value}


CHUNK = 50  # media per block: 400 photos make 8 blocks, enough to keep two nodes busy (the default 256 makes 2)


def run_ingest(src: Path, out: Path, engine: Any, workers: int) -> str:
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    shutil.rmtree(out, ignore_errors=True)
    cfg = IngestConfig(workers=workers, chunk_size=CHUNK, image=ImageConfig(max_side=128), near_duplicate_radius=None)
    return ingest(open_source(src, "jsonl", name="bench"), out, cfg=cfg, engine=engine).version


# --------------------------------------------------------------------------------------- sections


def engines_section(src: Path, n: int, scratch: Path, workers: int) -> dict[str, Any]:
    import ray

    from tagsight.engines import EngineConfig, create_engine

    with create_engine(EngineConfig(workers=workers)) as local:
        local.start()
        result = {"local": measured(lambda: run_ingest(src, scratch / "local", local, workers), n)}
    t0 = time.perf_counter()
    with create_engine(EngineConfig(name="ray", workers=workers)) as engine:
        list(engine.map(abs, ((-i,) for i in range(2 * workers))))  # workers up before the clock starts
        result["ray_start_s"] = round(time.perf_counter() - t0, 2)
        result["ray"] = measured(lambda: run_ingest(src, scratch / "ray", engine, workers), n)
    assert not ray.is_initialized()
    result["same_version"] = result["local"]["value"] == result["ray"]["value"]
    result["ray_over_local_per_cpu"] = _ratio(result["ray"]["per_cpu_s"], result["local"]["per_cpu_s"])
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_node(args: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1", *args]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": SRC})


def _stop(proc: subprocess.Popen) -> None:
    """Stop a node this script started: its own process group (``ray start --block`` takes its daemons down)."""
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def _forget_cluster(port: int) -> None:
    """Remove the address file ``ray start --head`` left (the nodes were stopped by process id, not by
    ``ray stop``, which would stop every Ray on the machine), when it still names our head."""
    marker = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if marker.read_text().strip().endswith(f":{port}"):
            marker.unlink()
    except OSError:
        pass


def _wait_cpus(ray: Any, cpus: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while ray.cluster_resources().get("CPU", 0) < cpus:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not reach {cpus} CPUs in {timeout:.0f}s")
        time.sleep(0.5)


def nodes_section(src: Path, n: int, scratch: Path) -> dict[str, Any]:
    import ray

    from tagsight.engines import EngineConfig, create_engine

    port = _free_port()
    address = f"127.0.0.1:{port}"
    nodes = [_ray_node(["--head", "--port", str(port), "--include-dashboard", "false"])]
    result: dict[str, Any] = {}
    try:
        for count in (1, 2):
            if count == 2:
                nodes.append(_ray_node(["--address", address]))
            _wait_until_up(ray, address, count)
            with create_engine(EngineConfig(name="ray")) as engine:
                list(engine.map(abs, ((-i,) for i in range(4))))
                out = scratch / f"nodes{count}"
                result[f"{count}_node"] = measured(lambda out=out, engine=engine: run_ingest(src, out, engine, 0), n)
            ray.shutdown()
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            _stop(node)
        _forget_cluster(port)
    result["speedup_2_over_1"] = _ratio(result["2_node"]["per_wall_s"], result["1_node"]["per_wall_s"])
    return result


def _wait_until_up(ray: Any, address: str, cpus: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.init(address=address, logging_level=logging.WARNING, configure_logging=False)
            break
        except (ConnectionError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    _wait_cpus(ray, cpus, timeout)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# --------------------------------------------------------------------------------------- main


def summary(results: dict[str, Any]) -> str:
    lines = [f"# bench/ray ({results['photos']} photos, {results['workers']} workers, load {results['load']})", ""]
    for section, body in results["sections"].items():
        lines.append(f"## {section}")
        for key, value in body.items():
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "value"}
            lines.append(f"- {key}: {value}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--limit", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--nodes", action="store_true", help="also 1 against 2 Ray nodes (two `ray start` processes)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="12 generated photos: checks the script, measures nothing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    sys.path.insert(0, SRC)
    os.environ["PYTHONPATH"] = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")  # Ray workers import tagsight
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        scratch = Path(tmp)
        photos = make_photos(scratch / "gen", 12) if args.quick else pick_photos(args.data, args.limit)
        src = posts_source(photos, scratch / "src")
        n = len(photos)
        sections = {"engines": engines_section(src, n, scratch, args.workers)}
        if args.nodes:
            sections["nodes"] = nodes_section(src, n, scratch)
    results = {"photos": n, "workers": args.workers, "quick": args.quick, "load": load_average(),
               "sections": sections}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
