"""Sampling: DDIM or DPM-Solver++ from diffusers, classifier-free guidance, deterministic per seed.

Image ``j`` of a prompt starts from the Gaussian noise of ``torch.Generator().manual_seed(seed + j)``
and the samplers add no noise of their own (DDIM with eta = 0, DPM-Solver++ multistep), so the same
model, prompt, seed, steps and guidance give the same image, and two models given the same prompt
and seed start from the same noise: their images are paired one by one. With guidance ``w`` the
prediction is ``uncond + w (cond - uncond)``, the unconditional branch reading only the null token
(``w = 1``: the conditional prediction alone, one forward pass per step).

``write_samples`` writes ``DIR/0000.png ...`` (prompt ``p``'s image ``j`` is file ``p * n + j``),
``DIR/grid.png`` (one row per prompt; a single prompt wraps at 8 columns) and ``DIR/samples.jsonl``,
one row per image::

    {"file": "0000.png", "prompt": str, "tokens_used": [...], "tokens_unknown": [...], "seed": int,
     "steps": int, "guidance": float, "model": {"run": str, "step": int, "kind": "pretrain"|"tune"},
     "size": int}

plus ``DIR/lineage.json`` naming the run, so ``tagsight forget`` flags the images of a model trained on
forgotten posts.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text
from tagsight.generate.conditioning import Encoded
from tagsight.generate.objective import DiffusionObjective, noise_scheduler, null_tokens
from tagsight.generate.runs import GeneratorRun
from tagsight.lineage import Ref, read_artifact, write_lineage
from tagsight.progress import Progress
from tagsight.registry import Registry
from tagsight.storage import dataset_path, location, read_bytes
from tagsight.storage import exists as storage_exists

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
GRID_FILE = "grid.png"
_NUMBERED = re.compile(r"^\d{4,}\.png$")


class StepOutput(Protocol):
    """A scheduler step's result: the sample at the previous (less noisy) timestep."""

    prev_sample: torch.Tensor


class Sampler(Protocol):
    """What ``sample`` uses of a diffusers scheduler (DDIM, DPM-Solver++): timesteps, input scaling, one step."""

    init_noise_sigma: float
    timesteps: torch.Tensor

    def set_timesteps(self, num_inference_steps: int) -> None: ...

    def scale_model_input(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor: ...

    def step(self, model_output: torch.Tensor, timestep: torch.Tensor, sample: torch.Tensor) -> StepOutput: ...


SAMPLERS: Registry[Sampler] = Registry("sampler")


@SAMPLERS.register("ddim")
def _ddim(objective: DiffusionObjective) -> Sampler:
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler

    scheduler: Sampler = DDIMScheduler.from_config(noise_scheduler(objective.cfg).config)   # from_config is unannotated
    return scheduler


@SAMPLERS.register("dpm")
def _dpm(objective: DiffusionObjective) -> Sampler:
    from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

    scheduler: Sampler = DPMSolverMultistepScheduler.from_config(noise_scheduler(objective.cfg).config,
                                                                 algorithm_type="dpmsolver++")
    return scheduler


@dataclass(frozen=True)
class SampleSettings:
    steps: int = 50
    guidance: float = 3.0
    sampler: str = "ddim"
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance < 1.0:
            raise ValueError(f"guidance must be >= 1 (1: no guidance), got {self.guidance}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        SAMPLERS.get(self.sampler)


def initial_noise(objective: DiffusionObjective, seeds: list[int]) -> torch.Tensor:
    """``[B, C, s, s]``: image ``i`` from ``torch.Generator().manual_seed(seeds[i])`` (on the CPU, any device)."""
    shape = (objective.channels, objective.sample_size, objective.sample_size)
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@torch.no_grad()
def sample(objective: DiffusionObjective, ids: torch.Tensor, seeds: list[int], settings: SampleSettings,
           denoiser: torch.nn.Module | None = None, progress: Progress | None = None) -> torch.Tensor:
    """uint8 images ``[B, 3, S, S]`` for token rows ``ids [B, T]`` and one seed per image."""
    if len(seeds) != ids.shape[0]:
        raise ValueError(f"one seed per token row: {len(seeds)} seeds for {ids.shape[0]} rows")
    device = next(objective.parameters()).device
    denoiser = denoiser or objective.sampling_denoiser()
    scheduler = SAMPLERS.create(settings.sampler, objective)
    scheduler.set_timesteps(settings.steps)
    x = initial_noise(objective, seeds).to(device) * scheduler.init_noise_sigma
    ids = ids.to(device)
    both = torch.cat([null_tokens(ids.shape[0], ids.shape[1], device=device), ids])
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        if settings.guidance == 1.0:
            pred = denoiser(x_in, t.expand(len(x)).to(device), ids)
        else:
            uncond, cond = denoiser(torch.cat([x_in, x_in]), t.expand(2 * len(x)).to(device), both).chunk(2)
            pred = uncond + settings.guidance * (cond - uncond)
        x = scheduler.step(pred, t, x).prev_sample
        if progress is not None:
            progress.update(1)
    images = objective.decode(x)
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def grid_image(images: list[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Images ``[S, S, 3]`` tiled row by row (``columns`` wide), upscaled (nearest) to >= 128 px cells."""
    size = images[0].shape[0]
    scale = max(1, 128 // size)
    cell = size * scale
    rows = math.ceil(len(images) / columns)
    out = np.full((rows * (cell + gap) - gap, columns * (cell + gap) - gap, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (cell + gap):r * (cell + gap) + cell, c * (cell + gap):c * (cell + gap) + cell] = \
            img.repeat(scale, 0).repeat(scale, 1)
    return out


def write_samples(run: GeneratorRun, prompts: list[str], n: int, out_dir: str | Path, seed: int = 0,
                  settings: SampleSettings | None = None) -> list[dict[str, Any]]:
    """Sample ``n`` images per prompt into ``out_dir`` (format in the module docstring); returns the rows."""
    settings = settings or SampleSettings(run.cfg.objective.diffusion.steps, run.cfg.objective.diffusion.guidance,
                                          run.cfg.objective.diffusion.sampler)
    if n < 1 or not prompts:
        raise ReasonError("nothing_to_sample", f"need at least one prompt and n >= 1, got {len(prompts)} prompt(s), n={n}")
    encoded = [run.table.encode_prompt(p) for p in prompts]          # every prompt checked before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    denoiser = run.objective.sampling_denoiser()
    rows, arrays = [], []
    batches = [(p, j0) for p in range(len(prompts)) for j0 in range(0, n, settings.batch_size)]
    with Progress(len(batches) * settings.steps, "generate", "step") as progress:
        for p, j0 in batches:
            seeds = [seed + j for j in range(j0, min(n, j0 + settings.batch_size))]
            ids = torch.stack([run.table.row(encoded[p].ids)] * len(seeds))
            for j, img in zip(range(j0, j0 + len(seeds)), sample(run.objective, ids, seeds, settings, denoiser, progress)):
                arrays.append(img.permute(1, 2, 0).numpy())
                rows.append(_row(run, prompts[p], encoded[p], p * n + j, seed + j, settings))
                atomic_write_bytes(out_dir / rows[-1]["file"], _png(arrays[-1]))
    _finish(run, out_dir, rows, arrays, n if len(prompts) > 1 else min(n, 8))
    return rows


def _row(run: GeneratorRun, prompt: str, encoded: Encoded, number: int, seed: int,
         settings: SampleSettings) -> dict[str, Any]:
    return {"file": f"{number:04d}.png", "prompt": prompt, "tokens_used": list(encoded.used),
            "tokens_unknown": list(encoded.unknown), "seed": seed, "steps": settings.steps,
            "guidance": float(settings.guidance),
            "model": {"run": location(run.path), "step": run.step, "kind": run.kind},
            "size": run.cfg.objective.diffusion.resolution}


def _finish(run: GeneratorRun, out_dir: Path, rows: list[dict[str, Any]], arrays: list[np.ndarray],
            columns: int) -> None:
    written = {r["file"] for r in rows}
    for stale in out_dir.iterdir():
        if _NUMBERED.match(stale.name) and stale.name not in written:
            stale.unlink()
    atomic_write_bytes(out_dir / GRID_FILE, _png(grid_image(arrays, columns)))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    atomic_write_text(out_dir / SAMPLES_FILE, text)
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    write_lineage(out_dir, "generated", version, [Ref("run", location(run.path), read_artifact(run.path).version)],
                  checkpoint=run.checkpoint.name)
    log.info("wrote %d images, %s and %s to %s", len(rows), GRID_FILE, SAMPLES_FILE, out_dir)


def read_prompts(path: str | Path) -> list[str]:
    """One prompt per line (blank lines and ``//`` comment lines skipped); ``path`` may be an fsspec URL."""
    path = dataset_path(path)
    if not storage_exists(path):
        raise ReasonError("prompts_file_missing", f"prompts file {path} does not exist")
    prompts = [line.strip() for line in read_bytes(path).decode("utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("//")]
    if not prompts:
        raise ReasonError("no_prompt", f"prompts file {path} holds no prompt")
    return prompts
