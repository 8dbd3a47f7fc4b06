"""Running the experiment: build missing inputs, then one job per (arm, seed), each skipped when its result exists.

A job is a few tagsight commands run as subprocesses (``pretrain`` for pretrain arms, then ``eval
linear`` and ``eval knn``); their output goes to ``WORK/logs/ARM-sSEED.log`` and is echoed to the
log with the job's name. A job's result is ``WORK/results/ARM/seedSEED.json``, written last: a job
killed half-way reruns the same commands, and ``tagsight pretrain`` resumes from its checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tagsight.fsio import atomic_write_text

from .spec import (TAGSIGHT, ArmSpec, Experiment, SpecError, arm_overrides, backbone_model, budget, expand,
                   referenced_names, resolve_config, tagsight_command)

log = logging.getLogger("bench.transfer")

# First guesses of a job's seconds on 2 quiet cores, replaced by measured means as jobs finish.
DEFAULT_SECONDS = {"random": 100.0, "reference": 120.0, "pretrain": 330.0}


@dataclass(frozen=True)
class Job:
    arm: ArmSpec
    seed: int

    @property
    def key(self) -> str:
        return f"{self.arm.name}-s{self.seed}"


def plan_jobs(arms: Sequence[ArmSpec], seeds: Sequence[int]) -> list[Job]:
    """Seed by seed, arms in file order: a run cut short leaves complete seeds."""
    jobs, seen = [], set()
    for seed in seeds:
        for arm in arms:
            for s in arm.seeds([seed]) if arm.seeded else [0]:
                if (arm.name, s) not in seen:
                    seen.add((arm.name, s))
                    jobs.append(Job(arm, s))
    return jobs


def result_path(work: Path, arm: str, seed: int) -> Path:
    return work / "results" / arm / f"seed{seed}.json"


def eta_seconds(finished: Sequence[tuple[str, float]], remaining: Sequence[str],
                defaults: Mapping[str, float] = DEFAULT_SECONDS) -> float:
    """Seconds left: each remaining job's kind costs the mean of the finished jobs of that kind (else the default)."""
    means = {}
    for kind in set(remaining):
        times = [s for k, s in finished if k == kind]
        means[kind] = sum(times) / len(times) if times else defaults.get(kind, max(defaults.values()))
    return sum(means[k] for k in remaining)


def fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# ------------------------------------------------------------------ subprocesses


def run_logged(command: Sequence[str], logfile: Path, tag: str, env: Mapping[str, str] | None = None) -> float:
    """Run ``command``, appending its output to ``logfile`` and echoing each line; its wall seconds.

    Raises SpecError (``command_failed``) with the last lines of output when it exits non-zero.
    """
    logfile.parent.mkdir(parents=True, exist_ok=True)
    log.info("[%s] $ %s", tag, " ".join(command))
    start, tail = time.perf_counter(), []
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n")
        proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env={**os.environ, **(env or {})})
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            tail = (tail + [line.rstrip()])[-15:]
            log.info("[%s] %s", tag, line.rstrip())
        rc = proc.wait()
    if rc:
        raise SpecError("command_failed", f"[{tag}] exit {rc}: {' '.join(command)}\n" + "\n".join(tail))
    return time.perf_counter() - start


# ------------------------------------------------------------------ inputs


@dataclass
class Inputs:
    """Paths of the inputs, built on first use (or given on the command line)."""

    exp: Experiment
    values: dict[str, str]                       # builtins and every input's path
    given: set[str] = field(default_factory=set)
    built: dict[str, float] = field(default_factory=dict)   # seconds spent building, this invocation
    runner: Callable[..., float] = run_logged

    @classmethod
    def create(cls, exp: Experiment, builtins: Mapping[str, str], given: Mapping[str, str],
               runner: Callable[..., float] = run_logged) -> "Inputs":
        unknown = sorted(set(given) - set(exp.inputs))
        if unknown:
            raise SpecError("unknown_input", f"--input names {unknown}; the experiment's inputs: {sorted(exp.inputs)}")
        values = dict(builtins)
        for name in exp.inputs:
            values[name] = str(Path(given[name]).resolve()) if name in given else ""
        for name, spec in exp.inputs.items():   # paths may refer to builtins and to other inputs' paths
            if name not in given:
                values[name] = expand(spec.path, values)
        return cls(exp, values, set(given), runner=runner)

    def path(self, name: str) -> Path:
        self.ensure(name)
        return Path(self.values[name])

    def done(self, name: str) -> bool:
        spec = self.exp.inputs[name]
        marker = expand(spec.done, self.values) if spec.done else self.values[name]
        return Path(marker).exists()

    def ensure(self, name: str, stack: tuple[str, ...] = ()) -> None:
        """Build ``name`` (after what it needs) unless it is done or was given on the command line."""
        if name in stack:
            raise SpecError("input_cycle", f"inputs refer to each other in a cycle: {' -> '.join((*stack, name))}")
        spec = self.exp.inputs[name]
        if name in self.given:
            if not self.done(name):
                raise SpecError("input_missing", f"--input {name}={self.values[name]} does not hold "
                                                 f"{spec.done or 'the folder'} ({expand(spec.done or spec.path, self.values)})")
            return
        if self.done(name):
            return
        for need in spec.needs():
            self.ensure(need, (*stack, name))
        if not spec.run:
            raise SpecError("input_missing", f"input {name!r} ({self.values[name]}) is missing and has no 'run' commands")
        start = time.perf_counter()
        for words in spec.run:
            command = tagsight_command([words[0], *(expand(w, self.values) for w in words[1:])]) \
                if words[0] == TAGSIGHT else [expand(w, self.values) for w in words]
            self.runner(command, Path(self.values["work"]) / "logs" / f"input-{name}.log", f"input {name}")
        if not self.done(name):
            raise SpecError("input_missing", f"input {name!r}: its commands ran but {spec.done or spec.path} is still missing")
        self.built[name] = time.perf_counter() - start
        log.info("input %s built in %s: %s", name, fmt_seconds(self.built[name]), self.values[name])


# ------------------------------------------------------------------ one job


@dataclass
class Context:
    exp: Experiment
    work: Path
    repo: Path
    inputs: Inputs
    runner: Callable[..., float] = run_logged


def eval_command(ctx: Context, method: str, backbone: str, job: Job, out: Path) -> list[str]:
    ev = ctx.exp.eval
    return tagsight_command([TAGSIGHT, "-q", "eval", method, backbone,
                             "--train", expand(ev.train, ctx.inputs.values), "--val", expand(ev.val, ctx.inputs.values),
                             "--img-size", str(job.arm.img_size or ev.img_size), "--seed", str(job.seed),
                             "--cache-dir", str(ctx.work / "features"), "--out", str(out), *ev.set])


def pretrain_command(ctx: Context, job: Job, run_dir: Path) -> list[str]:
    arm = job.arm
    sets = [w for item in arm_overrides(ctx.exp, arm, job.seed) for w in ("--set", item)]
    return tagsight_command([TAGSIGHT, "pretrain", "--objective", arm.objective, str(ctx.inputs.path(arm.dataset)),
                             "--vocab", str(ctx.inputs.path(arm.vocab)), "--out", str(run_dir),
                             "--config", str(ctx.repo / ctx.exp.preset), *sets])


def class_synsets(ctx: Context) -> set[str]:
    """The true classes' synset names, from the experiment's ``classes`` noise_model.json (empty without one)."""
    if not ctx.exp.classes:
        return set()
    path = Path(expand(ctx.exp.classes, ctx.inputs.values))
    for name in referenced_names(ctx.exp.classes):
        if name in ctx.exp.inputs:
            ctx.inputs.ensure(name)
    if not path.is_file():
        raise SpecError("classes_missing", f"classes file {path} not found")
    return {c["synset"] for c in json.loads(path.read_text())["classes"]}


def heldout_summary(run_dir: Path, classes: set[str]) -> dict[str, Any]:
    """Held-out hashtag metrics of a run (its eval.json), plus the mean AP over the true classes' labels."""
    path = run_dir / "eval.json"
    if not path.is_file():
        return {}
    trained = json.loads(path.read_text())["trained"]
    out = {k: trained[k] for k in trained if k != "per_label_ap" and isinstance(trained[k], (int, float))}
    ap = trained.get("per_label_ap", {})
    out["labels"] = len(ap)
    hits = [v for k, v in ap.items() if k in classes]
    if hits:
        out["class_mAP"] = sum(hits) / len(hits)
        out["class_labels"] = len(hits)
    return out


def run_job(ctx: Context, job: Job) -> dict[str, Any]:
    """Run one (arm, seed) and write its result JSON; returns it."""
    arm, logfile = job.arm, ctx.work / "logs" / f"{job.key}.log"
    record: dict[str, Any] = {"arm": arm.name, "title": arm.label, "kind": arm.kind, "seed": job.seed,
                              "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                              "commands": [], "wall": {}}
    if arm.kind == "pretrain":
        run_dir = ctx.work / "runs" / arm.name / f"seed{job.seed}"
        record["resumed"] = (run_dir / "checkpoints").is_dir()
        cmd = pretrain_command(ctx, job, run_dir)
        record["wall"]["pretrain"] = ctx.runner(cmd, logfile, job.key)
        record["commands"].append(cmd)
        record["budget"] = budget(resolve_config(ctx.exp, arm, job.seed, ctx.repo))
        record["heldout"] = heldout_summary(run_dir, class_synsets(ctx))
        backbone = str(run_dir)
    elif arm.kind == "random":
        backbone = "timm:" + backbone_model(ctx.exp, ctx.repo)[0]
    else:
        backbone = arm.backbone
    record["backbone"], record["metrics"] = backbone, {}
    for method in ctx.exp.eval.methods:
        out = ctx.work / "results" / arm.name / f"seed{job.seed}.{method}.json"
        cmd = eval_command(ctx, method, backbone, job, out)
        record["commands"].append(cmd)
        if out.is_file():   # scored by an earlier, interrupted invocation
            record["wall"][f"eval_{method}"] = json.loads(out.read_text()).get("seconds", 0.0)
        else:
            record["wall"][f"eval_{method}"] = ctx.runner(cmd, logfile, job.key)
        metrics = json.loads(out.read_text())["metrics"]
        record["metrics"][f"{method}_top1"], record["metrics"][f"{method}_top5"] = metrics["top1"], metrics["top5"]
    record["wall"]["total"] = sum(v for k, v in record["wall"].items() if k != "total")
    record["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(result_path(ctx.work, arm.name, job.seed), json.dumps(record, indent=1) + "\n")
    return record


def run_jobs(ctx: Context, jobs: Sequence[Job]) -> tuple[list[dict], list[tuple[Job, str]]]:
    """Every job not done yet, with a progress line (done/total, elapsed, ETA) after each; (results, failures)."""
    todo = [j for j in jobs if not result_path(ctx.work, j.arm.name, j.seed).is_file()]
    for j in jobs:
        if j not in todo:
            log.info("skip %s: %s exists", j.key, result_path(ctx.work, j.arm.name, j.seed))
    finished: list[tuple[str, float]] = []
    results, failures, start = [], [], time.perf_counter()
    for i, job in enumerate(todo):
        log.info("job %d/%d: %s (%s), ETA for all %s", i + 1, len(todo), job.key, job.arm.kind,
                 fmt_seconds(eta_seconds(finished, [j.arm.kind for j in todo[i:]])))
        t0 = time.perf_counter()
        try:
            results.append(run_job(ctx, job))
        except (SpecError, OSError, KeyError, ValueError) as exc:
            log.error("job %s failed: %s", job.key, exc)
            failures.append((job, str(exc)))
            continue
        finished.append((job.arm.kind, time.perf_counter() - t0))
        m = results[-1]["metrics"]
        log.info("done %s in %s: %s; %d/%d jobs, elapsed %s, ETA %s", job.key, fmt_seconds(finished[-1][1]),
                 ", ".join(f"{k} {100 * v:.1f}%" for k, v in m.items()), i + 1, len(todo),
                 fmt_seconds(time.perf_counter() - start),
                 fmt_seconds(eta_seconds(finished, [j.arm.kind for j in todo[i + 1:]])))
    return results, failures
