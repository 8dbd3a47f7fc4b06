"""torchrun-native distribution: read RANK/LOCAL_RANK/WORLD_SIZE, gloo on CPU, NCCL on GPU, one code path.

No module-level state: ``init_distributed`` returns a ``DistEnv`` that callers pass along. ``DistEnv`` and
``all_gather_cat`` live in the core module ``tagsight.collectives`` (methods below the Trainer use them) and
are re-exported here for the Trainer's callers.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

from tagsight.collectives import DistEnv, all_gather_cat

log = logging.getLogger(__name__)

__all__ = ["DistEnv", "RankFilter", "all_gather_cat", "all_reduce_mean", "barrier", "init_distributed", "shutdown"]


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes in the environment (a no-op for a plain single process).

    Under torchrun the group is joined even with one process (``--nproc_per_node 1``), so that the
    training step runs through DDP and NCCL exactly as it does on several GPUs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = f"cuda:{local}" if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
    launched = world > 1 or "TORCHELASTIC_RUN_ID" in os.environ
    if launched and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        log.info("rank %d/%d joined the process group (%s)", rank, world, dist.get_backend())
    return DistEnv(rank, local, world, dev, group=dist.is_initialized())


def shutdown(env: DistEnv) -> None:
    if env.group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean of ``value`` over ranks (returns a new tensor; unchanged for one process)."""
    if not env.distributed:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / env.world_size


class RankFilter(logging.Filter):
    """Let records through on rank 0 only (attach to handlers in entry points, never at import)."""

    def __init__(self, env: DistEnv) -> None:
        super().__init__()
        self.env = env

    def filter(self, record: logging.LogRecord) -> bool:
        return self.env.is_main or record.levelno >= logging.WARNING
