"""Collectives over the process group torchrun set up, for code below the Trainer (objectives, streams).

Each is the identity for a single process (no group initialised), so one code path serves one process and
many. ``DistEnv`` (rank, world size, device) is the explicit environment that ``tagsight.train.distributed.init_distributed``
returns and callers pass along; ``all_gather_cat`` gathers rows of unequal length with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """Where this process runs: its rank among ``world_size`` processes and its torch device."""

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


def group_ready() -> bool:
    """Whether a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank_world() -> tuple[int, int]:
    """(rank, world size) of the process group, else (0, 1)."""
    return (dist.get_rank(), dist.get_world_size()) if group_ready() else (0, 1)


def all_reduce(value: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or max) over ranks when a group is initialised; the value itself otherwise."""
    if not group_ready():
        return value
    out = value.detach().clone().contiguous()
    dist.all_reduce(out, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return out


def all_gather(value: torch.Tensor) -> torch.Tensor:
    """Concatenation over ranks in rank order (equal shapes); the value itself for one process."""
    if not group_ready():
        return value
    parts = [torch.empty_like(value) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, value.contiguous())
    return torch.cat(parts)


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
