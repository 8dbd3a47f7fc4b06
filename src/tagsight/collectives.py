"""Collectives over the process group torchrun set up, for code below the Trainer (objectives, streams).

Each is the identity for a single process (no group initialised), so one code path serves one process and
many. The Trainer's own helpers (``tagsight.train.distributed``) work from its explicit ``DistEnv``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


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
