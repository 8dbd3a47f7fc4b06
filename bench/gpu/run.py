"""The accelerator check: one command that measures tagsight's GPU paths in minutes, or a dry run on a CPU.

    python3 bench/gpu/run.py --data .gpu/data --out OUT_DIR     # on a CUDA machine (dataset from prepare.py)
    python3 bench/gpu/run.py                                    # on a CPU: a tiny dry run (< 1 minute)
    python3 bench/gpu/run.py --publish OUT_DIR                  # put a GPU run's section into docs/benchmarks.md

Sections, in order (each timed, each recorded as ok / failed with its error / skipped when the time
budget would be exceeded, so one failure never hides the other figures): environment and bf16 matmul
rate; compute-only hashtag training steps (eager); the Trainer with the real input pipeline; the input
pipeline alone; torchrun with a SIGKILL and resume; SwAV preset; the latent path (VAE preset trained, latent
diffusion preset on its RUN/vae, generate); eval feature
extraction; ``tagsight serve`` under 8 and 32 clients; compiled training steps last (compilation is the
slowest part). Writes ``OUT_DIR/gpu.json`` and ``OUT_DIR/gpu.md`` (the docs section) as it goes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))                # sizes, sections, report
sys.path.insert(0, str(HERE.parent))         # bench/common.py

log = logging.getLogger("bench.gpu")
TITLE = "gpu: the accelerator path (bench/gpu)"

# (name, seconds it may need on the GPU at most: skipped when less than that is left)
PLAN: tuple[tuple[str, float], ...] = (
    ("environment", 15), ("steps_eager", 40), ("trainer", 90), ("input_pipeline", 30), ("torchrun", 100),
    ("swav", 60), ("latent_diffusion", 120), ("eval_features", 30), ("serving", 60), ("steps_compiled", 150),
)


def sections() -> dict[str, Callable[[Any], Any]]:
    import sections as s

    return {"environment": s.environment, "steps_eager": lambda c: s.training_steps(c, compiled=False),
            "trainer": s.trainer_runs, "input_pipeline": s.input_pipeline, "torchrun": s.torchrun_kill_resume,
            "swav": s.swav, "latent_diffusion": s.latent_diffusion, "eval_features": s.eval_features,
            "serving": s.serving, "steps_compiled": lambda c: s.training_steps(c, compiled=True)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Measure tagsight's accelerator paths (dry run on a CPU).")
    p.add_argument("--data", type=Path, default=None,
                   help="folder from bench/gpu/prepare.py (dataset/ + vocab/); default: a tiny demo feed made now")
    p.add_argument("--out", type=Path, default=None, help="where gpu.json and gpu.md go (default: a scratch folder)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds the sections may take together (GPU)")
    p.add_argument("--only", default="", help="comma-separated section names to run (default: all)")
    p.add_argument("--dry", action="store_true", help="the tiny CPU version even when a GPU is present")
    p.add_argument("--publish", type=Path, default=None, metavar="OUT_DIR",
                   help="write OUT_DIR/gpu.md as the section of docs/benchmarks.md and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from common import setup_logging, write_section

    setup_logging()
    if args.publish is not None:
        write_section(TITLE, (args.publish / "gpu.md").read_text())
        log.info("wrote the section %r of docs/benchmarks.md from %s", TITLE, args.publish / "gpu.md")
        return 0
    import torch

    from sections import Context, scratch
    from sizes import DRY, GPU

    dry = args.dry or not torch.cuda.is_available()
    if dry:
        log.warning("no CUDA device (or --dry): a tiny dry run on the CPU; the real figures need a GPU")
    work = scratch("tagsight-gpu-")
    dataset, vocab = locate_data(args.data, work)
    out = args.out or work / "out"
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(DRY if dry else GPU, "cpu" if dry else "cuda", dataset, vocab, work)
    only = {s for s in args.only.split(",") if s}
    record = run_sections(ctx, args.budget, only, out, dry)
    for log_file in ("torchrun-1.log", "torchrun-2.log", "serve.log"):
        if (work / log_file).is_file():
            (out / log_file).write_text((work / log_file).read_text()[-200_000:])
    failed = [name for name, r in record["sections"].items() if r["status"] == "failed"]
    log.info("sections: %s", ", ".join(f"{n} {r['status']}" for n, r in record["sections"].items()))
    return 1 if failed else 0


def locate_data(data: Path | None, work: Path) -> tuple[Path, Path]:
    """The dataset and vocabulary to train on: ``data``'s, or a tiny synthetic feed ingested now."""
    if data is not None:
        return data / "dataset", data / "vocab" / "vocab.json"
    from prepare import prepare_demo

    made = prepare_demo(work / "data")
    return made / "dataset", made / "vocab" / "vocab.json"


def run_sections(ctx: Any, budget: float, only: set[str], out: Path, dry: bool) -> dict[str, Any]:
    from report import markdown

    table, start = sections(), time.perf_counter()
    record: dict[str, Any] = {"mode": "dry" if dry else "gpu", "sizes": ctx.sizes.__dict__, "sections": {}}
    for name, need in PLAN:
        if only and name not in only:
            continue
        left = budget - (time.perf_counter() - start)
        if not dry and left < need:
            record["sections"][name] = {"status": "skipped", "reason": f"{left:.0f} s of the budget left, needs {need:.0f}"}
            continue
        record["sections"][name] = run_one(ctx, name, table[name])
        record["total_s"] = round(time.perf_counter() - start, 1)
        (out / "gpu.json").write_text(json.dumps(record, indent=1, default=str))
        (out / "gpu.md").write_text(markdown(record))
    return record


def run_one(ctx: Any, name: str, fn: Callable[[Any], Any]) -> dict[str, Any]:
    log.info("section %s ...", name)
    t0 = time.perf_counter()
    from sections import Skipped

    try:
        result = fn(ctx)
    except Skipped as why:
        return {"status": "skipped", "reason": str(why)}
    except Exception as exc:  # noqa: BLE001 - a failed section is recorded and the check goes on
        log.error("section %s failed: %s", name, exc)
        return {"status": "failed", "seconds": round(time.perf_counter() - t0, 1),
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
    ctx.results[name] = result
    seconds = round(time.perf_counter() - t0, 1)
    log.info("section %s done in %.1f s: %s", name, seconds, json.dumps(result, default=str)[:400])
    return {"status": "ok", "seconds": seconds, "result": result}


if __name__ == "__main__":
    sys.exit(main())
