"""torchrun-native distribution: read RANK/LOCAL_RANK/WORLD_SIZE, gloo on CPU, NCCL on GPU, one code path.

No module-level state: ``init_distributed`` returns a ``DistEnv`` that callers pass along.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    group: bool = False    # a process group is joined (always under torchrun, even with one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


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


def all_gather_cat(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Concatenate tensors from every rank along dim 0, in rank order; ranks may hold different lengths."""
    if not env.distributed:
        return value
    size = torch.tensor([value.shape[0]], device=value.device)
    sizes = [torch.zeros_like(size) for _ in range(env.world_size)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *value.shape[1:]), dtype=value.dtype, device=value.device)
    padded[: value.shape[0]] = value
    parts = [torch.empty_like(padded) for _ in range(env.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


class RankFilter(logging.Filter):
    """Let records through on rank 0 only (attach to handlers in entry points, never at import)."""

    def __init__(self, env: DistEnv) -> None:
        super().__init__()
        self.env = env

    def filter(self, record: logging.LogRecord) -> bool:
        return self.env.is_main or record.levelno >= logging.WARNING
