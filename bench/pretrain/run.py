"""Pretraining throughput: the input pipeline against torchvision, the training loop against a bare loop.

Setup (not timed): ``tagsight datasets social-imagenette`` (``--limit`` photos of imagenette-160's
training split as simulated posts, each tagged with its class), ``tagsight ingest`` of those posts
(longest side ``--max-side``) and ``tagsight vocab build``, all as subprocesses in a scratch folder.

1. Input pipeline, no model: images/s of ``make_loader(HashtagStream(..., train_transform))``
   against torchvision ``ImageFolder`` + ``DataLoader`` over the same photos (the hard-linked
   originals under ``si/train/media``), same resolution, same augmentations (RandomResizedCrop
   scale (0.35, 1), horizontal flip, ToTensor, Normalize), same batch size and worker count, the
   same number of samples, warm page cache; runs interleaved ``--repeat`` times, median kept. Then
   our stream runs in-process with ``workers=0`` under cProfile, and the top functions are listed.
2. Training loop: ``Trainer.fit()`` (``--model`` at ``--size`` px, hashtag objective, SGD with
   Nesterov momentum, ``--workers`` loader workers, ``--steps`` steps, a metrics row every step so
   the first ``--warmup`` steps can be left out) against a bare loop (forward, backward, step) of
   the same model, loss, optimiser and batch size over pre-decoded, pre-augmented batches held in
   memory.

    python bench/pretrain/run.py --data ../shared/data [--size 64] [--workers 2] [--batch 64] [--steps 30]

Writes the ``## pretrain: input pipeline and training loop`` section of docs/benchmarks.md
(``--no-doc`` to only print it).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ itself, for `common`

from common import (REPO, command_line, facts_markdown, fmt, load_average, machine_facts,  # noqa: E402
                    markdown_table, publish, run_in_scratch, setup_logging, warm_page_cache)

log = logging.getLogger("bench.pretrain")

TITLE = "pretrain: input pipeline and training loop"
PACKAGES = ("tagsight", "torch", "torchvision", "timm", "pillow", "numpy")


# --------------------------------------------------------------------------------------- setup


@dataclass
class Inputs:
    """Paths made by the setup commands."""

    media: Path
    dataset: Path
    vocab: Path
    commands: list[list[str]]


def _tagsight(*args: str) -> list[str]:
    exe = shutil.which("tagsight")
    return [exe, *args] if exe else [sys.executable, "-m", "tagsight", *args]


def prepare(args: argparse.Namespace, work: Path) -> Inputs:
    """Build the simulated posts, ingest them and build the vocabulary (subprocesses, not timed)."""
    si, ds, vocab = work / "si", work / "ds", work / "vocab"
    commands = [
        _tagsight("datasets", "social-imagenette", "--data", str(args.data), "--out", str(si),
                  "--limit", str(args.limit), "--splits", "train"),
        _tagsight("ingest", str(si / "train" / "posts.jsonl"), "--out", str(ds), "--max-side", str(args.max_side)),
        _tagsight("vocab", "build", str(ds), "--out", str(vocab)),
    ]
    if args.reuse is not None:  # the outputs of these same commands, kept from an earlier run (--keep)
        si, ds, vocab = args.reuse / "si", args.reuse / "ds", args.reuse / "vocab"
        if not (ds / "manifest.json").is_file() or not (vocab / "vocab.json").is_file():
            raise SystemExit(f"--reuse {args.reuse}: expected si/, ds/ and vocab/ from an earlier --keep run")
        log.info("setup reused from %s", args.reuse)
        return Inputs(si / "train" / "media", ds, vocab / "vocab.json", commands)
    for cmd in commands:
        log.info("setup: %s", command_line(cmd))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"setup command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}")
    return Inputs(si / "train" / "media", ds, vocab / "vocab.json", commands)


# --------------------------------------------------------------------------------------- input pipeline


@dataclass(frozen=True)
class Run:
    """One timed pass: images, wall seconds, CPU seconds of this process and its reaped workers."""

    label: str
    images: int
    wall: float
    cpu: float
    load: float = float("nan")

    @property
    def per_s(self) -> float:
        return self.images / self.wall

    @property
    def per_cpu(self) -> float:
        return self.images / self.cpu if self.cpu > 0 else float("nan")


def _cpu_all() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def drain(label: str, make: Callable[[], Any], batches: int) -> Run:
    """Time building a loader and pulling ``batches`` batches from it (worker start-up included)."""
    load, cpu0, t0 = os.getloadavg()[0], _cpu_all(), time.perf_counter()
    loader, images = make(), 0
    it = iter(loader)
    for _ in range(batches):
        batch = next(it)
        images += len(batch["image"] if isinstance(batch, dict) else batch[0])
    del it, loader  # joins the workers so their CPU time is reaped
    run = Run(label, images, time.perf_counter() - t0, _cpu_all() - cpu0, load)
    log.info("%s: %d images in %.2fs (%.0f/s, %.0f per CPU-s)", label, images, run.wall, run.per_s, run.per_cpu)
    return run


@dataclass
class Pipelines:
    """Factories for both loaders over ``samples`` samples."""

    ours: Callable[[int], Any]
    torchvision: Callable[[int], Any]
    stream: Any
    batches: int


def build_pipelines(inputs: Inputs, args: argparse.Namespace) -> Pipelines:
    import torch
    from torchvision import datasets, transforms

    from tagsight.data.index import SampleIndex
    from tagsight.data.pipeline import HashtagStream, StreamConfig, make_loader
    from tagsight.data.transforms import train_transform
    from tagsight.models.backbone import DataConfig
    from tagsight.tags.vocab import Vocabulary

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # resnet18's (timm) data config
    data_config = DataConfig(mean=mean, std=std, input_size=args.size)
    index, vocab = SampleIndex.build(inputs.dataset), Vocabulary.load(inputs.vocab)
    cfg = StreamConfig(epoch_length=args.samples, batch_size=args.batch, seed=0)
    stream = HashtagStream(index, vocab, train_transform(data_config, (0.35, 1.0)), cfg, rank=0, world_size=1)
    tv = transforms.Compose([transforms.RandomResizedCrop(args.size, scale=(0.35, 1.0)),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize(mean, std)])
    folder = datasets.ImageFolder(str(inputs.media), transform=tv)
    gen = torch.Generator().manual_seed(0)
    return Pipelines(
        ours=lambda workers: make_loader(stream, workers),
        torchvision=lambda workers: torch.utils.data.DataLoader(folder, batch_size=args.batch, shuffle=True,
                                                                generator=gen, num_workers=workers, drop_last=True),
        stream=stream, batches=args.samples // args.batch)


def bench_pipelines(p: Pipelines, repeat: int, workers: int) -> dict[tuple[str, int], list[Run]]:
    """Every (pipeline, worker count) ``repeat`` times, interleaved so that load changes hit all of them."""
    runs: dict[tuple[str, int], list[Run]] = {}
    for _ in range(repeat):
        for count in dict.fromkeys([workers, 0]):
            for name, make in (("tagsight", p.ours), ("torchvision", p.torchvision)):
                label = f"{name}, {count} worker(s)"
                runs.setdefault((name, count), []).append(drain(label, lambda make=make, count=count: make(count), p.batches))
    return runs


def median_run(runs: Sequence[Run]) -> Run:
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


def profile_stream(stream: Any, samples: int, top: int) -> tuple[Run, list[list[str]]]:
    """Our stream in-process (``workers=0``) under cProfile; the top functions by own time."""
    from tagsight.data.pipeline import make_loader

    profiler = cProfile.Profile()
    batches = max(1, samples // stream.cfg.batch_size)
    profiler.enable()
    run = drain("tagsight make_loader, workers=0, cProfile", lambda: make_loader(stream, 0), batches)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    table = [[f"`{_func_name(k)}`", f"{v[1]:,}", fmt(1000 * v[2] / run.images, 3), f"{100 * v[2] / total:.1f}%",
              fmt(1000 * v[3] / run.images, 3)] for k, v in rows]
    return run, table


def _func_name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    parts = Path(filename).parts
    short = "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else "/".join(parts[-3:])
    return f"{short}:{line}({name})"


# --------------------------------------------------------------------------------------- training loop


@dataclass
class LoopResult:
    steps_timed: int
    images: int
    seconds: float
    fit_wall: float
    data_ms: float
    compute_ms: float

    @property
    def per_s(self) -> float:
        return self.images / self.seconds


def build_objective(args: argparse.Namespace, num_labels: int) -> Any:
    import torch

    from tagsight.models.backbone import create_backbone
    from tagsight.methods.hashtag import HashtagObjective

    torch.manual_seed(0)
    return HashtagObjective(create_backbone(args.model, img_size=args.size), num_labels)


def bench_trainer(inputs: Inputs, args: argparse.Namespace, run_dir: Path) -> LoopResult:
    """``Trainer.fit()`` for ``--steps`` steps; throughput from metrics.jsonl rows after ``--warmup``."""
    from tagsight.data.index import SampleIndex
    from tagsight.data.pipeline import HashtagStream, StreamConfig, make_loader
    from tagsight.data.transforms import train_transform
    from tagsight.tags.vocab import Vocabulary
    from tagsight.train.distributed import DistEnv
    from tagsight.train.loop import Trainer
    from tagsight.train.settings import LoopConfig, OptimConfig

    vocab = Vocabulary.load(inputs.vocab)
    objective = build_objective(args, len(vocab))
    cfg = StreamConfig(epoch_length=args.steps * args.batch, batch_size=args.batch, seed=0)
    stream = HashtagStream(SampleIndex.build(inputs.dataset), vocab,
                           train_transform(objective.backbone.data_config), cfg, rank=0, world_size=1)
    loop = LoopConfig(epochs=1, log_every=1, checkpoint_every=10 ** 6, max_steps=args.steps)
    trainer = Trainer(objective, stream, lambda s: make_loader(s, args.workers), OptimConfig(), loop, DistEnv(),
                      run_dir, cfg.epoch_length, args.batch)
    t0 = time.perf_counter()
    trainer.fit()
    fit_wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][args.warmup:]
    images = args.batch * len(rows)
    seconds = sum(args.batch / r["samples_per_s"] for r in rows)
    result = LoopResult(len(rows), images, seconds, fit_wall, 1000 * statistics.mean(r["data_s"] for r in rows),
                        1000 * statistics.mean(r["compute_s"] for r in rows))
    log.info("Trainer.fit: %d steps timed, %.0f images/s (fit() %.1fs wall in all)", len(rows), result.per_s, fit_wall)
    return result


def bench_loops(p: Pipelines, inputs: Inputs, args: argparse.Namespace, work: Path
                ) -> tuple[list[LoopResult], list[LoopResult]]:
    """``Trainer.fit()`` and the bare loop, ``--loop-repeat`` times each, interleaved."""
    from tagsight.data.pipeline import make_loader

    held = [b for _, b in zip(range(min(args.steps, p.batches)), make_loader(p.stream, args.workers))]
    trainer, bare = [], []
    for i in range(args.loop_repeat):
        trainer.append(bench_trainer(inputs, args, work / f"run{i}"))
        bare.append(bench_bare(held, inputs, args))
    return trainer, bare


def bench_bare(held: list[dict[str, Any]], inputs: Inputs, args: argparse.Namespace) -> LoopResult:
    """Forward, backward, step over batches decoded and augmented beforehand (held in a list)."""
    from tagsight.tags.vocab import Vocabulary
    from tagsight.train.optim import build_optimizer
    from tagsight.train.settings import OptimConfig

    model = build_objective(args, len(Vocabulary.load(inputs.vocab)))
    model.train()
    optimizer = build_optimizer(model.parameters(), OptimConfig(), args.batch)
    times = []
    for step in range(args.steps):
        batch = held[step % len(held)]
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(batch)["loss"].backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    timed = times[args.warmup:]
    result = LoopResult(len(timed), args.batch * len(timed), sum(timed), sum(times), 0.0, 1000 * statistics.mean(timed))
    log.info("bare loop: %d steps timed, %.0f images/s", len(timed), result.per_s)
    return result


# --------------------------------------------------------------------------------------- report


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def pipeline_table(pipes: dict[tuple[str, int], list[Run]]) -> str:
    rows = []
    for (name, workers), runs in pipes.items():
        r = median_run(runs)
        rows.append([name, workers, r.images, fmt(r.wall, 2), fmt(r.cpu, 2), fmt(r.per_s), fmt(r.per_cpu),
                     " / ".join(fmt(x.per_s) for x in runs)])
    return markdown_table(["pipeline", "workers", "images", "wall s", "CPU s", "images/s", "images per CPU-s",
                           "images/s, every pass"], rows)


def paired(ours: Sequence[float], base: Sequence[float]) -> list[float]:
    """Ratios of the runs made in the same interleaved round (ours[i] / base[i])."""
    return [a / b for a, b in zip(ours, base) if b]


def spread(ratios: Sequence[float]) -> str:
    """``median (min-max over n)`` of paired ratios."""
    return (f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x over {len(ratios)} "
            f"interleaved rounds)") if ratios else "n/a"


def pipeline_ratios(pipes: dict[tuple[str, int], list[Run]]) -> tuple[str, dict[int, float]]:
    """Per worker count: the median of the per-round ratios (each round ran both pipelines back to back)."""
    lines, ratios = [], {}
    for workers in dict.fromkeys(w for _, w in pipes):
        ours, tv = pipes[("tagsight", workers)], pipes[("torchvision", workers)]
        wall = paired([r.per_s for r in ours], [r.per_s for r in tv])
        cpu = paired([r.per_cpu for r in ours], [r.per_cpu for r in tv])
        ratios[workers] = statistics.median(wall)
        lines.append(f"- {workers} worker(s): **{spread(wall)}** images/s; {spread(cpu)} images per CPU-second")
    loads = [r.load for runs in pipes.values() for r in runs]
    return ("tagsight / torchvision, median of the per-round ratios:\n\n" + "\n".join(lines)
            + f"\n\n1-minute load average at the start of the passes: {min(loads):.1f} to {max(loads):.1f} "
            f"(2 cores; the rounds are interleaved so that other jobs slow both pipelines alike)."), ratios


def loop_table(trainer: list[LoopResult], bare: list[LoopResult]) -> str:
    rows = []
    for label, runs in (("`Trainer.fit()` (loader workers, metrics, progress)", trainer),
                        ("bare loop over in-memory batches", bare)):
        r = best_loop(runs)
        rows.append([label, r.steps_timed, r.images, fmt(r.seconds, 2), fmt(r.per_s), fmt(r.data_ms),
                     fmt(r.compute_ms), " / ".join(fmt(x.per_s) for x in runs)])
    return markdown_table(["loop", "steps timed", "images", "seconds", "images/s", "data ms per batch",
                           "compute ms per batch", "images/s, every run"], rows)


def best_loop(runs: Sequence[LoopResult]) -> LoopResult:
    """The run with the median throughput (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r.per_s)[(len(runs) - 1) // 2]


def render(args: argparse.Namespace, facts: dict[str, str], inputs: Inputs, work: Path, res: dict[str, Any]) -> str:
    setup = "\n".join(command_line(c).replace(str(work), "$TMP").replace(str(Path(c[0])), "tagsight", 1)
                      for c in inputs.commands)
    bench_cmd = command_line([Path(sys.executable).name, *sys.argv])
    head = _head(args, facts, res, setup, bench_cmd)
    parts = [head] + (_pipeline_part(args, res) if "pipes" in res else []) + (_loop_part(args, res) if "trainer" in res else [])
    if "pipes" in res and "trainer" in res:
        _, ratios = pipeline_ratios(res["pipes"])
        tr, bare = best_loop(res["trainer"]), best_loop(res["bare"])
        loop_ratio = statistics.median(paired([r.per_s for r in res["trainer"]], [r.per_s for r in res["bare"]]))
        parts.append(verdict(ratios[args.workers], loop_ratio, tr, bare, args,
                             1000 * args.batch / median_run(res["pipes"][("tagsight", 0)]).per_s))
    return "\n\n".join(parts)


def _head(args: argparse.Namespace, facts: dict[str, str], res: dict[str, Any], setup: str, bench_cmd: str) -> str:
    return "\n\n".join([
        f"`{args.model}` at {args.size} px, batch {args.batch}, {args.workers} loader worker(s), "
        f"`torch.get_num_threads()` = {res['threads']} in the main process for every measurement (DataLoader "
        f"workers run with 1 thread each, PyTorch's default). Produced by:\n\n```\n{bench_cmd}\n```",
        "Machine:\n\n" + facts_markdown(facts),
        "Setup, not timed (`$TMP` is a scratch folder"
        + (", here the outputs of these commands kept from an earlier run and reused with `--reuse`" if args.reuse else "")
        + f"):\n\n```\n{setup}\n```\n\n"
        f"{res['kept']:,} of the {args.limit:,} posts pass the consent policy and are ingested "
        f"({res['train']:,} labelled training samples after the 10% held-out split, {res['labels']} labels); "
        f"the photos are {res['photo_size']} JPEGs, and ingest with `--max-side {args.max_side}` stores them "
        f"re-encoded at quality 90 ({res['stored_size']}). `ImageFolder` reads all {args.limit:,} hard-linked "
        f"originals.",
    ])


def _pipeline_part(args: argparse.Namespace, res: dict[str, Any]) -> list[str]:
    ratio_text, _ = pipeline_ratios(res["pipes"])
    images = next(iter(res["pipes"].values()))[0].images
    prof_run, prof_table = res["profile"]
    return [
        f"### Input pipeline (no model)\n\n{images:,} images per pass, page cache warm, each loader built "
        f"afresh per pass (worker start-up included), {args.repeat} interleaved passes of every configuration, "
        f"the median by wall time kept. CPU time includes the workers'. Ours: `make_loader(HashtagStream("
        f"SampleIndex, Vocabulary, train_transform, StreamConfig(sampling='sqrt')))`, i.e. positional reads from "
        f"the tar shards, one numpy generator per sample seeded by (seed, epoch, position), the crop box drawn "
        f"before decoding, the JPEG decoded by `simplejpeg` (libjpeg-turbo, accurate integer IDCT: the same "
        f"pixels as Pillow) straight into a numpy RGBX array, at the largest DCT reduction (1/2, 1/4, 1/8) "
        f"that keeps the crop >= {args.size} px across, Pillow's antialiased bilinear resize of the box read from "
        f"that array without a copy, the flip, uint8 "
        f"pixels normalised once per batch in the worker, and the 1/k target; torchvision: "
        f"`ImageFolder` + `DataLoader(shuffle=True, drop_last=True)` with `RandomResizedCrop({args.size}, "
        f"scale=(0.35, 1))`, `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(mean, std)`. The `0 worker(s)` "
        f"rows load in the main process: the cost per image on one core.\n\n"
        + pipeline_table(res["pipes"]) + "\n\n" + ratio_text,
        f"Where our pipeline's time goes: the same stream in-process with `workers=0` under cProfile, "
        f"{prof_run.images:,} images ({fmt(prof_run.per_s)} images/s with profiling overhead); top functions "
        f"by own time:\n\n" + markdown_table(["function", "calls", "own ms per image", "share of own time",
                                              "cumulative ms per image"], prof_table),
    ]


def _loop_part(args: argparse.Namespace, res: dict[str, Any]) -> list[str]:
    tr = best_loop(res["trainer"])
    loop_ratios = paired([r.per_s for r in res["trainer"]], [r.per_s for r in res["bare"]])
    return [
        f"### Training loop\n\n{args.steps} optimiser steps per run, the first {args.warmup} left out (model and "
        f"allocator warm-up, loader worker start-up); {args.loop_repeat} runs of each, interleaved (Trainer, bare, Trainer, "
        f"bare, ...); the table shows the median run of each and every run, the ratio is the median of the "
        f"per-round ratios (other jobs on this shared machine slow single runs a lot). `Trainer.fit()` runs with `LoopConfig(log_every=1)` so that every step has a `metrics.jsonl` row; "
        f"its seconds are the sum of the rows' `batch / samples_per_s` (the whole `fit()` took "
        f"{fmt(tr.fit_wall, 1)} s wall, setup and final checkpoint included). The bare loop is `zero_grad(); "
        f"objective(batch)['loss'].backward(); optimizer.step()` with the same `HashtagObjective` (softmax loss), "
        f"the same SGD (Nesterov momentum, weight decay, linearly scaled LR), over {min(args.steps, res['batches'])} "
        f"batches produced by our loader beforehand and held in memory.\n\n"
        + loop_table(res["trainer"], res["bare"]) + f"\n\nTrainer / bare loop: **{spread(loop_ratios)}** images/s.",
        loop_verdict(statistics.median(loop_ratios), tr, res["bare"], args),
    ]


def loop_verdict(loop_ratio: float, tr: LoopResult, bare_runs: Sequence[LoopResult], args: argparse.Namespace) -> str:
    bare = best_loop(bare_runs)
    return (f"**Training loop, target >= 0.9x a bare loop: {'Met' if loop_ratio >= 0.9 else 'Not met'}** "
            f"({loop_ratio:.2f}x, median of the interleaved rounds). The Trainer waits {fmt(tr.data_ms)} ms per batch "
            f"for data against {fmt(tr.compute_ms)} ms of compute ({fmt(bare.compute_ms)} ms in the bare loop): its "
            f"{args.workers} loader worker(s) share the machine's cores with the forward and backward pass.")


def verdict(pipe_ratio: float, loop_ratio: float, tr: LoopResult, bare: LoopResult, args: argparse.Namespace,
            load_ms: float) -> str:
    pipe = "Met" if pipe_ratio >= 1.5 else "Not met"
    loop = "Met" if loop_ratio >= 0.9 else "Not met"
    return (f"**Verdict.** Input pipeline, target >= 1.5x torchvision with {args.workers} worker(s): **{pipe}** "
            f"({pipe_ratio:.2f}x, median of the interleaved rounds). Training loop, target >= 0.9x a bare loop: "
            f"**{loop}** ({loop_ratio:.2f}x). The Trainer's loader workers share this machine's 2 cores with the "
            f"model's forward and backward (its measured wait for data is {fmt(tr.data_ms)} ms per batch against "
            f"{fmt(tr.compute_ms)} ms of compute, against {fmt(bare.compute_ms)} ms in the bare loop), a cost the "
            f"bare loop paid beforehand: loading one batch takes {fmt(load_ms)} ms of CPU (the `0 worker(s)` "
            f"rate above). What changed and what did not help is in `bench/pretrain/README.md`.")


# --------------------------------------------------------------------------------------- main


def default_data_dir() -> Path:
    env = os.environ.get("TAGSIGHT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder (holds imagenette-160)")
    p.add_argument("--limit", type=int, default=3000, help="photos in the simulated feed (default 3000)")
    p.add_argument("--samples", type=int, default=3000, help="images per input-pipeline pass (default 3000)")
    p.add_argument("--size", type=int, default=64, help="training resolution in pixels (default 64)")
    p.add_argument("--max-side", type=int, default=160, help="ingest --max-side (default 160)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for both pipelines (default 2)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--steps", type=int, default=30, help="optimiser steps per training-loop run (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the loop timings (default 3)")
    p.add_argument("--repeat", type=int, default=5, help="input-pipeline passes per loader (default 5)")
    p.add_argument("--loop-repeat", type=int, default=3, help="training-loop runs of each kind (default 3)")
    p.add_argument("--profile-samples", type=int, default=1024, help="images in the cProfile pass (default 1024)")
    p.add_argument("--model", default="resnet18", help="timm backbone (default resnet18)")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown file to update")
    p.add_argument("--no-doc", action="store_true", help="print the section instead of writing it")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--parts", choices=("all", "pipeline", "loop"), default="all",
                   help="measure only the input pipelines or only the training loops (default: all)")
    p.add_argument("--reuse", type=Path, default=None, help="skip the setup: use si/, ds/, vocab/ kept (--keep) "
                   "from an earlier run with the same --limit and --max-side")
    args = p.parse_args(argv)
    for name in ("limit", "samples", "size", "max_side", "batch", "steps", "repeat", "loop_repeat", "profile_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.workers < 0 or not 0 <= args.warmup < args.steps:
        p.error("--workers must be >= 0 and --warmup in [0, --steps)")
    if args.samples < args.batch:
        p.error("--samples must be >= --batch")
    return args


def _sizes(inputs: Inputs, index: Any) -> tuple[str, str]:
    """Pixel sizes (most common) and mean bytes of the originals and of the stored JPEGs."""
    import collections
    import io

    from PIL import Image

    files = sorted(inputs.media.rglob("*.JPEG"))
    orig = collections.Counter(Image.open(f).size for f in files).most_common(1)[0]
    stored = collections.Counter(Image.open(io.BytesIO(index.read_jpeg(i))).size for i in range(len(index)))
    top = stored.most_common(1)[0]
    return (f"{orig[0][0]}x{orig[0][1]} ({orig[1]:,} of {len(files):,}), "
            f"{sum(f.stat().st_size for f in files) / len(files) / 1024:.1f} KiB on average",
            f"{top[0][0]}x{top[0][1]} for {top[1]:,} of {len(index):,}, "
            f"{float(index.jpg_size.mean()) / 1024:.1f} KiB on average")


def run_all(args: argparse.Namespace, work: Path) -> str:
    import torch

    facts = machine_facts(PACKAGES)
    inputs = prepare(args, work)
    warm_page_cache(sorted(inputs.media.rglob("*.JPEG")) + sorted((inputs.dataset / "shards").glob("*.tar")))
    p = build_pipelines(inputs, args)
    res: dict[str, Any] = {"threads": torch.get_num_threads(), "kept": len(p.stream.index),
                           "train": len(p.stream.candidates), "labels": len(p.stream.vocab), "batches": p.batches}
    res["photo_size"], res["stored_size"] = _sizes(inputs, p.stream.index)
    if args.parts in ("all", "pipeline"):
        res["pipes"] = bench_pipelines(p, args.repeat, args.workers)
        res["profile"] = profile_stream(p.stream, args.profile_samples, 15)
    if args.parts in ("all", "loop"):
        res["trainer"], res["bare"] = bench_loops(p, inputs, args, work)
    facts["load average at end (1/5/15 min)"] = load_average()
    return render(args, facts, inputs, work, res)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if not (args.data / "imagenette-160" / "train").is_dir():
        print(f"bench/pretrain: {args.data}/imagenette-160/train not found (pass --data or set TAGSIGHT_DATA)",
              file=sys.stderr)
        return 2
    section = run_in_scratch("tagsight-bench-pretrain-", args.keep, lambda work: run_all(args, work))
    publish(TITLE, section, args.no_doc, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
