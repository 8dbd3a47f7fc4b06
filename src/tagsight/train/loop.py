"""The training loop: any Objective, any stream, one process or many under torchrun, exact resume.

The loop knows an objective only as a module whose forward returns ``{"loss": ..., **logs}``,
and a stream only through ``set_position(epoch, batches_done)`` and its batches; an ``Objective``
(``tagsight.methods.base``) declares ``before_step()``, called just before every optimiser step (DINO drops
its frozen last layer's gradient there), and ``after_step()``, called after it (DINO moves its teacher, the
generator updates its EMA there); a plain module has no such hooks. Every
``checkpoint_every`` optimiser steps it saves model, optimiser, RNG and data position; started
again with the same run folder it continues from the latest checkpoint as if never stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from tagsight.fsio import ReasonError
from tagsight.methods.base import Objective
from tagsight.progress import Progress
from tagsight.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tagsight.train.distributed import DistEnv, all_reduce_mean
from tagsight.train.optim import Schedule, build_optimizer
from tagsight.train.settings import LoopConfig
from tagsight.train.settings import OptimConfig

log = logging.getLogger(__name__)


@dataclass
class _Plan:
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    global_batch: int


def plan(epoch_length: int, batch_size: int, env: DistEnv, cfg: LoopConfig) -> _Plan:
    """Batches and optimiser steps per epoch for this world size."""
    batches = (epoch_length // env.world_size) // batch_size
    steps = batches // cfg.accumulate
    if steps < 1:
        raise ValueError(f"epoch_length {epoch_length} gives no full optimiser step with {env.world_size} rank(s), "
                         f"batch {batch_size} and accumulate {cfg.accumulate}")
    return _Plan(steps * cfg.accumulate, steps, steps * cfg.epochs, batch_size * cfg.accumulate * env.world_size)


class MetricsWriter:
    """metrics.jsonl (and TensorBoard when installed) on rank 0."""

    def __init__(self, run_dir: Path, env: DistEnv) -> None:
        self.enabled = env.is_main
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if self.enabled:
            with contextlib.suppress(ImportError):
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.tb.add_scalar(key, value, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _autocast(env: DistEnv, cfg: LoopConfig) -> AbstractContextManager[Any]:
    if env.device.startswith("cuda") and cfg.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


Finish = Callable[[torch.Tensor], torch.Tensor]


def _to_device(batch: dict[str, Any], device: str, channels_last: bool = False,
               finish: Finish | None = None) -> dict[str, Any]:
    """The batch on ``device``; uint8 images turned into inputs there by ``finish``; 4-D images NHWC if asked."""
    out = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
    if finish is not None:
        out = {k: finish(v) if torch.is_tensor(v) and v.dtype == torch.uint8 else v for k, v in out.items()}
    if channels_last:
        out = {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.ndim == 4 else v
               for k, v in out.items()}
    return out


def _channels_last(env: DistEnv, cfg: LoopConfig) -> bool:
    return env.device.startswith("cuda") and cfg.channels_last


class Trainer:
    """Holds the state of one run; ``fit()`` trains to the end (or ``max_steps``), resuming if it can."""

    def __init__(self, objective: torch.nn.Module, stream: Any, make_loader: Callable[[Any], Iterable[dict[str, Any]]],
                 optim_cfg: OptimConfig, cfg: LoopConfig, env: DistEnv, run_dir: str | Path,
                 epoch_length: int, batch_size: int, run_state: dict[str, Any] | None = None,
                 progress_desc: str = "pretrain", finish: Finish | None = None) -> None:
        self.env, self.cfg, self.run_dir = env, cfg, Path(run_dir)
        self.finish = finish   # applied on the device to uint8 image batches (the loader then ships uint8)
        self.progress_desc = progress_desc
        self.stream, self.make_loader = stream, make_loader
        self.plan = plan(epoch_length, batch_size, env, cfg)
        self.model = objective.to(env.device)
        self.channels_last = _channels_last(env, cfg)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = DistributedDataParallel(self.model) if env.group else self.model
        self.train_forward = torch.compile(self.ddp, backend=cfg.compile) if cfg.compile else self.ddp
        self.optimizer = build_optimizer(self.model.parameters(), optim_cfg, self.plan.global_batch)
        self.schedule = Schedule(self.optimizer, optim_cfg, self.plan.total_steps,
                                 optim_cfg.scaled_lr(self.plan.global_batch))
        self.run_state = run_state or {}
        self.step, self.epoch, self.batches_done = 0, 0, 0
        self._step_logs: dict[str, torch.Tensor] | None = None   # the last optimiser step's logs (its loss)

    def resume(self) -> bool:
        found = latest_checkpoint(self.run_dir)
        if found is None:
            return False
        state = load_checkpoint(found, self.model, self.optimizer)
        self.step, self.epoch, self.batches_done = state["step"], state["epoch"], state["batches_done"]
        log.info("resumed from %s: step %d, epoch %d, batch %d", found.name, self.step, self.epoch, self.batches_done)
        return True

    def save(self) -> None:
        if self.env.is_main:
            save_checkpoint(self.run_dir, self.step, self.model, self.optimizer,
                            {"epoch": self.epoch, "batches_done": self.batches_done, **self.run_state},
                            keep_last=self.cfg.keep_last)

    def _done(self) -> bool:
        return self.step >= self._last_step()

    def _last_step(self) -> int:
        """The step the run stops at: the schedule's end, or ``max_steps`` when that comes first."""
        return self.plan.total_steps if self.cfg.max_steps is None else min(self.cfg.max_steps, self.plan.total_steps)

    def fit(self) -> dict[str, Any]:
        """Train until the end of the schedule or ``max_steps``; returns the last logged row."""
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        writer = MetricsWriter(self.run_dir, self.env)
        last: dict[str, Any] = {}
        with Progress(self._last_step(), self.progress_desc, "step", initial=self.step) as progress:
            while not self._done() and self.epoch < self.cfg.epochs:
                last = self._epoch(writer, progress) or last
        if self.step % self.cfg.checkpoint_every:
            self._check_step_loss()
            self.save()
        writer.close()
        return last

    def _epoch(self, writer: MetricsWriter, progress: Progress) -> dict[str, Any]:
        self.stream.set_position(self.epoch, self.batches_done)
        self.ddp.train()
        last: dict[str, Any] = {}
        meter = _Meter()
        batches = iter(self.make_loader(self.stream))
        while self.batches_done < self.plan.batches_per_epoch and not self._done():
            logs = self._step_logs = self._optimizer_step(batches, meter)
            progress.update(1)
            if self.step % self.cfg.log_every == 0:
                last = self._log(logs, meter, writer)
            if self.step % self.cfg.checkpoint_every == 0:
                self._check_step_loss()
                self.save()
        if self.batches_done >= self.plan.batches_per_epoch:
            self.epoch, self.batches_done = self.epoch + 1, 0
        return last

    def _optimizer_step(self, batches: Iterator[dict[str, Any]], meter: "_Meter") -> dict[str, torch.Tensor]:
        lr = self.schedule.apply(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for micro in range(self.cfg.accumulate):
            t0 = time.perf_counter()
            batch = _to_device(next(batches), self.env.device, self.channels_last, self.finish)
            t1 = time.perf_counter()
            sync = micro == self.cfg.accumulate - 1 or not self.env.group
            with self._no_sync(sync), _autocast(self.env, self.cfg):
                out = self.train_forward(batch)
            (out["loss"] / self.cfg.accumulate).backward()
            for key, value in out.items():
                totals[key] = totals.get(key, 0) + value.detach().float() / self.cfg.accumulate
            meter.add(len(batch["image"]), t1 - t0)
            self.batches_done += 1
        if isinstance(self.model, Objective):   # its last word on the gradients (DINO's frozen last layer)
            self.model.before_step()
        self.optimizer.step()
        self.step += 1
        if isinstance(self.model, Objective):   # its per-step bookkeeping (DINO's teacher, the generator's EMA)
            self.model.after_step()
        return {**totals, "lr": torch.tensor(lr)}

    def _no_sync(self, sync: bool) -> AbstractContextManager[Any]:
        """DDP's ``no_sync`` on micro-batches that do not end a step (gradients reduced once per step)."""
        if sync or not isinstance(self.ddp, DistributedDataParallel):
            return contextlib.nullcontext()
        return self.ddp.no_sync()

    def _log(self, logs: dict[str, torch.Tensor], meter: "_Meter", writer: MetricsWriter) -> dict[str, Any]:
        row = {"step": self.step, "epoch": self.epoch,
               **{k: float(all_reduce_mean(v.to(self.env.device), self.env)) for k, v in logs.items()},
               **meter.read(self.env)}   # on the device: NCCL reduces CUDA tensors only (lr and some logs are on the CPU)
        log.info("step %d/%d loss %.4f lr %.4g | %.1f samples/s | data %.0f ms, compute %.0f ms per batch",
                 self.step, self.plan.total_steps, row["loss"], row["lr"], row["samples_per_s"],
                 1000 * row["data_s"], 1000 * row["compute_s"])
        writer.write(row)
        self._check_finite(row["loss"])
        return row

    def _check_step_loss(self) -> None:
        """The last step's loss (all ranks) must be finite before its weights are saved."""
        if self._step_logs is not None:
            self._check_finite(float(all_reduce_mean(self._step_logs["loss"].to(self.env.device), self.env)))

    def _check_finite(self, loss: float) -> None:
        """Stop a diverged run before it logs on or saves a checkpoint of NaN weights."""
        if not math.isfinite(loss):
            raise ReasonError("loss_not_finite", f"the loss is {loss} at step {self.step}: training diverged and "
                              f"stops (metrics.jsonl has its last logged row). Checkpoints saved before it are kept "
                              f"and the run resumes from the latest; a lower optim.base_lr is the usual remedy")


class _Meter:
    """Samples/s and, per batch, the time spent waiting for data against the rest, since the last read.

    ``data_s`` is the wall time spent getting the next batch from the loader and onto the device;
    ``compute_s`` is all other wall time per batch (forward, backward, optimiser, logging). On CUDA the
    kernels run asynchronously, so only this split of elapsed wall time is true: a per-call timer
    would measure kernel launches, not the GPU's work.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.samples, self.data, self.batches, self.start = 0, 0.0, 0, time.perf_counter()

    def add(self, n: int, data_s: float) -> None:
        self.samples, self.data, self.batches = self.samples + n, self.data + data_s, self.batches + 1

    def read(self, env: DistEnv) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        batches = max(self.batches, 1)
        row = {"samples_per_s": self.samples * env.world_size / elapsed, "data_s": self.data / batches,
               "compute_s": max(elapsed / batches - self.data / batches, 0.0)}
        self.reset()
        return row
