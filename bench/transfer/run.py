"""Transfer of pretraining on noisy hashtags against clean labels, random weights and an ImageNet model.

    python bench/transfer/run.py [--config configs/experiments/transfer_cpu.yaml] [--work DIR]
        [--arms a,b] [--seeds 0,1] [--input NAME=DIR ...] [--data ../shared/data] [--render-only]

Every arm of the experiment file (YAML; arms are data, see bench/transfer/README.md) runs as tagsight
verbs: ``pretrain`` (pretrain arms, the same budget for each), then ``eval linear`` and ``eval knn``
on frozen features. Missing inputs (the social-imagenette corpus, its ingested train split and
vocabulary, their clean-label twins) are built by the commands the file lists, into ``--work``;
``--input NAME=DIR`` uses an existing folder instead. A result per arm and seed goes to
``WORK/results/ARM/seedN.json``; an existing one is skipped, so rerunning the command resumes.
At the end the ``## Transfer: ...`` section of docs/results.md and its plot are rewritten from every
result found under ``--work`` (``--no-doc`` prints the section instead).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))  # bench/ itself, for `common` and this package

from common import machine_facts, setup_logging, write_section  # noqa: E402
from transfer import jobs, results  # noqa: E402
from transfer.spec import SpecError, check_budgets, expand, load_experiment  # noqa: E402

log = logging.getLogger("bench.transfer")

DEFAULT_CONFIG = REPO / "configs" / "experiments" / "transfer_cpu.yaml"
PACKAGES = ("tagsight", "torch", "timm")


def default_data_dir() -> Path:
    env = os.environ.get("TAGSIGHT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def parse_list(text: str | None, cast=str) -> list:
    return [cast(x.strip()) for x in text.split(",") if x.strip()] if text else []


def parse_inputs(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SpecError("bad_input", f"--input {item!r} is not NAME=DIR")
        out[name.strip()] = path.strip()
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment file (YAML)")
    p.add_argument("--work", type=Path, required=True, help="folder for inputs, runs, features and results")
    p.add_argument("--arms", default=None, help="comma-separated arm names (default: every arm not 'planned')")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    p.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=DIR",
                   help="use an existing folder for an input of the experiment file (not built)")
    p.add_argument("--data", type=Path, default=default_data_dir(), help="shared data (imagenette-160, harrison)")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "results.md", help="Markdown file to update")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "results_transfer.png", help="bar chart to write")
    p.add_argument("--no-doc", action="store_true", help="print the section, write no doc and no plot")
    p.add_argument("--render-only", action="store_true", help="run nothing; rebuild the doc from existing results")
    args = p.parse_args(argv)
    try:
        args.seed_list = parse_list(args.seeds, int)
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not args.seed_list:
        p.error("--seeds names no seed")
    return args


def gpu_fact() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"


def title_of(exp) -> str:
    return exp.title or f"Transfer: {exp.name}"


def load_meta(work: Path) -> list[dict]:
    """Recorded invocations, oldest first; a finished entry replaces the 'running' entry of the same id."""
    path = work / "invocations.jsonl"
    entries: dict[str, dict] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.strip():
            entry = json.loads(line)
            entries[entry.get("id", entry.get("start", str(len(entries))))] = entry
    return list(entries.values())


def record_invocation(work: Path, entry: dict) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "invocations.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def command_text(argv: Sequence[str]) -> str:
    words = [Path(sys.executable).name, str(Path(sys.argv[0]).resolve()), *argv]
    return " ".join(shlex.quote(w) for w in words).replace(str(REPO) + "/", "")


def builtin_values(work: Path, args: argparse.Namespace) -> dict[str, str]:
    return {"work": str(work), "data": str(args.data.resolve()), "repo": str(REPO), "python": sys.executable}


def inputs_values(exp, work: Path, args: argparse.Namespace) -> dict[str, str]:
    return jobs.Inputs.create(exp, builtin_values(work, args), parse_inputs(args.inputs)).values


def render(args: argparse.Namespace, exp, work: Path, budget: dict | None, facts: dict) -> str:
    summaries = results.load_results(work, exp)
    plot_path = None if args.no_doc else results.plot(summaries, args.plot, title_of(exp))
    plot_name = os.path.relpath(plot_path, args.doc.parent) if plot_path else None
    invocations = load_meta(work)
    last = invocations[-1] if invocations else {}
    rerun = command_text([a for a in args.argv if a != "--render-only"])
    values = inputs_values(exp, work, args)
    meta = {"command": last.get("command", rerun), "eval_train": expand(exp.eval.train, values),
            "datasets": results.dataset_counts({n: Path(values[n]) for n in exp.inputs}),
            "eval_val": expand(exp.eval.val, values), "seeds": last.get("seeds", args.seed_list), "budget": budget,
            "machine": last.get("machine", facts), "invocations": invocations}
    text = results.section(exp, summaries, meta, plot_name)
    if args.no_doc:
        print(f"## {title_of(exp)}\n\n{text}")
    else:
        write_section(title_of(exp), text, args.doc)
        log.info("wrote %s and %s", args.doc, plot_path)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    setup_logging()
    work = args.work.resolve()
    try:
        exp = load_experiment(args.config)
        arms = exp.select(parse_list(args.arms))
        budget = check_budgets(exp, arms, REPO)
        inputs = jobs.Inputs.create(exp, builtin_values(work, args), parse_inputs(args.inputs))
    except SpecError as exc:
        print(f"bench/transfer: {exc} [{exc.reason}]", file=sys.stderr)
        return 2
    facts = machine_facts(PACKAGES)
    facts["gpu"] = gpu_fact()
    if args.render_only:
        render(args, exp, work, budget, facts)
        return 0
    plan = jobs.plan_jobs(arms, args.seed_list)
    log.info("%d arm(s) x seeds %s = %d job(s); budget %s", len(arms), args.seed_list, len(plan), budget)
    start, started = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
    ctx = jobs.Context(exp, work, REPO, inputs)
    skipped = sum(1 for j in plan if jobs.result_path(work, j.arm.name, j.seed).is_file())
    entry = {"id": f"{started.isoformat()}-{os.getpid()}", "status": "running", "command": command_text(argv),
             "seeds": args.seed_list, "arms": [a.name for a in arms], "start": started.strftime("%Y-%m-%d %H:%M UTC"),
             "jobs_planned": len(plan), "jobs_skipped": skipped, "machine": facts}
    record_invocation(work, entry)
    try:
        done, failures = jobs.run_jobs(ctx, plan)
    except SpecError as exc:   # an input could not be built: nothing can run
        print(f"bench/transfer: {exc} [{exc.reason}]", file=sys.stderr)
        return 2
    facts["load average at end (1/5/15 min)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    record_invocation(work, {**entry, "status": "finished",
                             "end": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                             "wall": time.perf_counter() - start, "jobs_run": len(done),
                             "inputs_built": inputs.built, "failures": [f"{j.key}: {e[:300]}" for j, e in failures]})
    render(args, exp, work, budget, facts)
    for job, error in failures:
        print(f"bench/transfer: {job.key} failed: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
