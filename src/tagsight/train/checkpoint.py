"""Checkpoints as safetensors plus JSON (no pickle), written atomically, with a ``latest`` pointer.

A checkpoint folder ``RUN/checkpoints/step-00000100/`` holds ``model.safetensors`` (the
objective's state: backbone and head), ``optim.safetensors`` (the optimiser's tensors),
``rng.safetensors`` (torch RNG states) and ``state.json`` (step, data position, the optimiser's
non-tensor state, anything the loop adds). ``RUN/checkpoints/latest`` names the newest complete one.
``after_checkpoint(hook)`` calls ``hook(run folder, checkpoint folder)`` after each save, while its block runs
(the CLI publishes a run on object storage this way; the loop knows nothing of it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tagsight.fsio import atomic_write_text
from tagsight.models.runs import LATEST, checkpoint_weights, latest_checkpoint

__all__ = ["LATEST", "CheckpointHook", "after_checkpoint", "latest_checkpoint", "load_checkpoint",
           "load_model_weights", "save_checkpoint"]

CheckpointHook = Callable[[Path, Path], None]   # (run folder, the checkpoint folder just saved)
_HOOKS: list[CheckpointHook] = []


@contextlib.contextmanager
def after_checkpoint(hook: CheckpointHook) -> Iterator[None]:
    """While the block runs, call ``hook(run folder, checkpoint folder)`` after every ``save_checkpoint``: the
    checkpoint is complete, ``latest`` names it and older ones beyond ``keep_last`` are gone."""
    _HOOKS.append(hook)
    try:
        yield
    finally:
        _HOOKS.remove(hook)


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}  # JSON turned the ``betas`` tuple into a list


def _rng_state() -> dict[str, torch.Tensor]:
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return rng


def save_checkpoint(run_dir: str | Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], keep_last: int = 2) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest`` at it and keep the ``keep_last`` newest."""
    root = Path(run_dir) / "checkpoints"
    final, tmp = root / f"step-{step:08d}", root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    save_file(tensors, str(tmp / "optim.safetensors"))
    save_file(_rng_state(), str(tmp / "rng.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, **state, "optimizer": optim_meta}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(root / LATEST, final.name + "\n")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    for hook in list(_HOOKS):
        hook(Path(run_dir), final)
    return final


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore model (and optimiser, RNG) from a checkpoint folder; returns its ``state.json``."""
    path = Path(path)
    state: dict[str, Any] = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    if optimizer is not None:
        optimizer.load_state_dict(_join_optimizer(load_file(str(path / "optim.safetensors")), state["optimizer"]))
    if restore_rng:
        rng = load_file(str(path / "rng.safetensors"))
        torch.set_rng_state(rng["cpu"])
        if torch.cuda.is_available():
            torch.cuda.set_rng_state_all([rng[k] for k in sorted(rng) if k.startswith("cuda")])
    return state


def load_model_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint folder (or a run folder: its latest checkpoint)."""
    return checkpoint_weights(path)
