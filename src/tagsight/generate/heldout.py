"""The held-out denoising loss with fixed noise and timesteps, comparable between evaluations and models.

Sample ``i`` of the dataset (its index position) always gets the same ``repeats`` (timestep, noise)
pairs, drawn from a generator seeded by ``(seed, i, repeat)``, its own tokens (no dropout) and the
centre crop, so two evaluations differ only by the weights. Timesteps are stratified over
``[0, train_timesteps)`` (repeat ``r`` of ``R`` lies in the r-th of R equal ranges) to keep the
estimate's variance low with few repeats.

``conditioning_gain`` uses the same fixed draws to ask how much the model uses its prompt: the loss with
each sample's own tokens against the loss with the null token, per timestep band (``tagsight judge
conditioning``).
"""

from __future__ import annotations

from typing import Any

import torch

from tagsight.data.pipeline import augmentation_seed, make_loader
from tagsight.generate.data import TokenStream
from tagsight.generate.objective import DiffusionObjective, null_tokens
from tagsight.train.distributed import DistEnv, all_gather_cat


def fixed_noise(objective: DiffusionObjective, x0: torch.Tensor, indices: torch.Tensor, repeat: int, repeats: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(noise like ``x0``, timesteps ``[B]``) determined by each sample's index, the repeat and ``seed``."""
    total = objective.cfg.train_timesteps
    noises, steps = [], []
    for i in indices.tolist():
        g = torch.Generator().manual_seed(augmentation_seed(seed, int(i), repeat))
        low, high = total * repeat // repeats, max(total * (repeat + 1) // repeats, total * repeat // repeats + 1)
        steps.append(int(torch.randint(low, high, (1,), generator=g)))
        noises.append(torch.randn(x0.shape[1:], generator=g))
    return torch.stack(noises).to(x0.device, x0.dtype), torch.tensor(steps, device=x0.device)


@torch.no_grad()
def heldout_loss(objective: DiffusionObjective, stream: TokenStream, env: DistEnv, workers: int = 0, repeats: int = 4,
                 seed: int = 1234, use_ema: bool = False) -> dict[str, float]:
    """``{"loss", "n_samples"}``: the mean per-sample denoising MSE over every held-out sample (all ranks)."""
    was_training = objective.training
    objective.eval()
    denoiser = objective.sampling_denoiser(use_ema)
    losses = []
    for batch in make_loader(stream, workers):
        images, ids = batch["image"].to(env.device), batch["tokens"].to(env.device)
        x0 = objective.encode(images, torch.Generator(device=images.device).manual_seed(seed))
        per = sum((objective.per_sample_loss(x0, ids, *fixed_noise(objective, x0, batch["index"], r, repeats, seed),
                                             denoiser=denoiser) for r in range(repeats)), torch.zeros(())) / repeats
        losses.append(per)
    objective.train(was_training)
    values = all_gather_cat(torch.cat(losses) if losses else torch.zeros(0, device=env.device), env).cpu()
    return {"loss": round(float(values.mean()), 6) if len(values) else float("nan"), "n_samples": int(len(values))}


def _bands(repeats: int, total: int) -> list[list[int]]:
    return [[total * r // repeats, max(total * (r + 1) // repeats, total * r // repeats + 1)] for r in range(repeats)]


@torch.no_grad()
def conditioning_gain(objective: DiffusionObjective, stream: TokenStream, env: DistEnv, workers: int = 0,
                      repeats: int = 4, seed: int = 1234, max_samples: int | None = None) -> dict[str, Any]:
    """How much the model uses its prompt: the held-out denoising loss of the EMA weights with each sample's own
    tokens and with the null token (the unconditional model), same fixed noise and timesteps, per timestep band.

    ``gain = loss_null - loss_own`` (> 0 when the tokens help predict the noise); ``gain_share = gain / loss_null``.
    Samples without tokens (their row is the null token already) are left out. A model whose gain is near 0
    draws nearly the same picture for every prompt at a given seed, whatever the guidance scale multiplies.
    """
    denoiser = objective.sampling_denoiser(True)
    own: list[list[torch.Tensor]] = [[] for _ in range(repeats)]
    null: list[list[torch.Tensor]] = [[] for _ in range(repeats)]
    seen = 0
    for batch in make_loader(stream, workers):
        ids = batch["tokens"].to(env.device)
        keep = ids[:, 0] != null_tokens(1, 1)[0, 0]
        if max_samples is not None:
            keep &= torch.arange(len(ids)) < max(0, max_samples - seen)
        if not keep.any():
            if max_samples is not None and seen >= max_samples:
                break
            continue
        x0 = objective.encode(batch["image"][keep].to(env.device), torch.Generator().manual_seed(seed))
        ids, indices = ids[keep], batch["index"][keep]
        for r in range(repeats):
            noise, t = fixed_noise(objective, x0, indices, r, repeats, seed)
            own[r].append(objective.per_sample_loss(x0, ids, noise, t, denoiser=denoiser))
            null[r].append(objective.per_sample_loss(x0, null_tokens(*ids.shape), noise, t, denoiser=denoiser))
        seen += int(keep.sum())
    bands: list[dict[str, Any]] = []
    for r, band in enumerate(_bands(repeats, objective.cfg.train_timesteps)):
        o, n = all_gather_cat(torch.cat(own[r]), env).mean(), all_gather_cat(torch.cat(null[r]), env).mean()
        bands.append({"timesteps": band, "loss_own": float(o), "loss_null": float(n), "gain": float(n - o),
                      "gain_share": float((n - o) / n)})
    lo, ln = sum(b["loss_own"] for b in bands) / repeats, sum(b["loss_null"] for b in bands) / repeats
    return {"n_samples": seen, "repeats": repeats, "loss_own": lo, "loss_null": ln, "gain": ln - lo,
            "gain_share": (ln - lo) / ln, "bands": bands}
