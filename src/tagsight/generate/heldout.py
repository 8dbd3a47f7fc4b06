"""The held-out denoising loss with fixed noise and timesteps, comparable between evaluations and models.

Sample ``i`` of the dataset (its index position) always gets the same ``repeats`` (timestep, noise)
pairs, drawn from a generator seeded by ``(seed, i, repeat)``, its own tokens (no dropout) and the
centre crop, so two evaluations differ only by the weights. Timesteps are stratified over
``[0, train_timesteps)`` (repeat ``r`` of ``R`` lies in the r-th of R equal ranges) to keep the
estimate's variance low with few repeats.
"""

from __future__ import annotations

import torch

from tagsight.data.pipeline import augmentation_seed, make_loader
from tagsight.generate.objective import DiffusionObjective
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
def heldout_loss(objective: DiffusionObjective, stream, env: DistEnv, workers: int = 0, repeats: int = 4,
                 seed: int = 1234, use_ema: bool = False) -> dict[str, float]:
    """``{"loss", "n_samples"}``: the mean per-sample denoising MSE over every held-out sample (all ranks)."""
    was_training = objective.training
    objective.eval()
    denoiser = objective.sampling_denoiser(use_ema)
    losses = []
    for batch in make_loader(stream, workers):
        images, ids = batch["image"].to(env.device), batch["tokens"].to(env.device)
        x0 = objective.encode(images, torch.Generator(device=images.device).manual_seed(seed))
        per = sum(objective.per_sample_loss(x0, ids, *fixed_noise(objective, x0, batch["index"], r, repeats, seed),
                                            denoiser=denoiser) for r in range(repeats)) / repeats
        losses.append(per)
    objective.train(was_training)
    values = all_gather_cat(torch.cat(losses) if losses else torch.zeros(0, device=env.device), env).cpu()
    return {"loss": round(float(values.mean()), 6) if len(values) else float("nan"), "n_samples": int(len(values))}
