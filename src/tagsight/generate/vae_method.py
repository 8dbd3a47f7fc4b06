"""The ``vae`` method of ``tagsight pretrain``: the latent generator's autoencoder, trained by the shared Trainer.

``tagsight pretrain --objective vae DATASET --out VAE_RUN --config configs/pretrain_vae_cpu.yaml`` (no
vocabulary needed) trains a ``VAEObjective`` (``generate.vae``) on every post's photo of the training
split. At the end it

* evaluates the trained and the untrained autoencoder on the held-out photos (centre crops, latents at
  the posterior's mean): reconstruction PSNR (dB, pixels in [0, 1]), reconstruction loss and KL, in
  ``eval.json`` under ``heldout_reconstruction``;
* measures the latents of ``scale_photos`` training photos (sampled as the latent generator samples
  them) and sets the scaling factor to ``1 / their standard deviation``, so scaled latents have unit
  variance (``eval.json``'s ``latents``);
* writes ``VAE_RUN/vae/`` with ``AutoencoderKL.save_pretrained`` (``config.json`` holding that
  ``scaling_factor`` + ``diffusion_pytorch_model.safetensors``): the folder
  ``objective.vae_path`` of a latent generator names (``generate.model.load_vae``).

``export_vae(VAE_RUN)`` writes the same folder from a run's latest checkpoint (an interrupted run), with the
scaling factor of its ``eval.json`` when there is one. This module registers the method in
``tagsight.methods.METHODS``; the CLI imports it (``tagsight.cli.methods``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from tagsight.collectives import DistEnv, all_gather_cat
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig, make_loader
from tagsight.generate.vae import PhotoStream, VAEConfig, VAEObjective, photo_stream, psnr
from tagsight.methods.base import Method, Objective, RunConfig, register_method, stream_config
from tagsight.models.backbone import DataConfig
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

VAE_FOLDER = "vae"          # RUN/vae: the exported diffusers folder
LATENT_SEED = 4321          # the generator of the latents that set the scaling factor


@torch.no_grad()
def heldout_reconstruction(objective: VAEObjective, stream: PhotoStream, env: DistEnv,
                           workers: int = 0) -> dict[str, float]:
    """``{"psnr", "rec", "kl", "loss", "n_photos"}``: means over every held-out photo (all ranks), latents at
    the posterior's mean (deterministic: two evaluations differ only by the weights)."""
    was_training = objective.training
    objective.eval()
    rows = []
    for batch in make_loader(stream, workers):
        images = batch["image"].to(env.device)
        out = objective.losses(images)
        rows.append(torch.stack([psnr(objective.reconstruct(images), images), out["rec"], out["kl"], out["loss"]], 1))
    objective.train(was_training)
    values = all_gather_cat(torch.cat(rows) if rows else torch.zeros(0, 4, device=env.device), env).cpu()
    if not len(values):
        return {"psnr": math.nan, "rec": math.nan, "kl": math.nan, "loss": math.nan, "n_photos": 0}
    means = values.double().mean(dim=0).tolist()
    return {**{k: round(v, 6) for k, v in zip(("psnr", "rec", "kl", "loss"), means)}, "n_photos": len(values)}


@torch.no_grad()
def latent_statistics(objective: VAEObjective, stream: PhotoStream, env: DistEnv, workers: int = 0) -> dict[str, Any]:
    """Mean and standard deviation of the latents of ``stream``'s photos (every element, all ranks), and the
    scaling factor ``1 / std`` that gives the latent generator unit-variance latents."""
    was_training = objective.training
    objective.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=env.device)    # n, sum, sum of squares
    photos = 0
    generator = torch.Generator(device=env.device).manual_seed(LATENT_SEED + env.rank)
    for batch in make_loader(stream, workers):
        z = objective.latents(batch["image"].to(env.device), generator).double()
        sums += torch.stack([torch.tensor(z.numel(), dtype=torch.float64, device=z.device), z.sum(), (z * z).sum()])
        photos += len(z)
    objective.train(was_training)
    total = all_gather_cat(sums[None], env).sum(dim=0)
    counted = int(all_gather_cat(torch.tensor([photos], device=env.device), env).sum())
    n, mean = float(total[0]), float(total[1] / total[0])
    std = math.sqrt(max(float(total[2] / total[0]) - mean * mean, 0.0) * n / max(n - 1, 1))
    if not std > 0:
        raise ValueError(f"the latents of {counted} training photos have no spread: no scaling factor")
    return {"photos": counted, "mean": round(mean, 6), "std": round(std, 6), "scaling_factor": round(1.0 / std, 6)}


def scale_stream(index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig,
                 env: DistEnv) -> PhotoStream:
    """``scale_photos`` training photos (centre crops, drawn as the first epoch draws) for the latent statistics."""
    v: VAEConfig = VAEMethod().params(cfg)
    batch = max(1, min(cfg.data.batch_size, v.scale_photos // env.world_size))
    stream_cfg = StreamConfig(epoch_length=max(v.scale_photos, env.world_size), batch_size=batch, seed=cfg.seed,
                              sampling="none", holdout_fraction=cfg.data.holdout_fraction, split="train")
    return photo_stream(index, vocab, v, data_config, stream_cfg, select=cfg.data.select, rank=env.rank,
                        world_size=env.world_size, augment=False)


def save_vae(objective: VAEObjective, folder: Path, scaling_factor: float) -> Path:
    """``folder`` as ``AutoencoderKL.save_pretrained`` writes it, ``scaling_factor`` in its config.json."""
    objective.vae.register_to_config(scaling_factor=float(scaling_factor))
    objective.contiguous_vae().save_pretrained(str(folder), safe_serialization=True)
    log.info("wrote the autoencoder to %s (scaling factor %.5f): objective.vae_path of a latent generator",
             folder, scaling_factor)
    return folder


def export_vae(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN/vae`` (or ``out``) from a ``vae`` run's latest checkpoint, with the scaling factor its eval.json
    measured (an interrupted run has none yet: ``ValueError``)."""
    from tagsight.train.checkpoint import latest_checkpoint, load_model_weights
    from tagsight.train.config import PretrainConfig

    run_dir = Path(run_dir)
    cfg = PretrainConfig.from_yaml(run_dir / "config.yaml")
    if cfg.objective.name != VAEMethod.name or latest_checkpoint(run_dir) is None:
        raise ValueError(f"{run_dir} is not a '{VAEMethod.name}' run with a checkpoint")
    evaluation = run_dir / "eval.json"
    latents = json.loads(evaluation.read_text()).get("latents") if evaluation.is_file() else None
    if not latents:
        raise ValueError(f"{run_dir} has no measured scaling factor (eval.json's latents): let the run finish")
    objective = VAEObjective(VAEMethod().params(cfg), seed=cfg.seed)
    objective.load_state_dict(load_model_weights(run_dir))
    return save_vae(objective, Path(out) if out is not None else run_dir / VAE_FOLDER, latents["scaling_factor"])


@register_method
class VAEMethod(Method[VAEConfig]):
    """The latent generator's autoencoder (a diffusers ``AutoencoderKL``), trained on every post's photo."""

    name = "vae"
    config_class = VAEConfig
    needs_vocab = False

    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> VAEObjective:
        return VAEObjective(self.params(cfg), seed=cfg.seed)

    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> PhotoStream:
        return photo_stream(index, vocab, self.params(cfg), data_config, stream_config(cfg, split),
                            select=cfg.data.select, rank=env.rank, world_size=env.world_size)

    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        assert isinstance(trained, VAEObjective) and isinstance(untrained, VAEObjective)
        w = cfg.data.workers
        result = {"heldout_reconstruction": {"trained": heldout_reconstruction(trained, heldout, env, w),
                                             "untrained": heldout_reconstruction(untrained, heldout, env, w)}}
        r = result["heldout_reconstruction"]
        log.info("held-out reconstruction PSNR %.2f dB (untrained %.2f dB) on %d photos", r["trained"]["psnr"],
                 r["untrained"]["psnr"], r["trained"]["n_photos"])
        stats = latent_statistics(trained, scale_stream(heldout.index, vocab, cfg, trained.data_config, env), env, w)
        log.info("latents of %d training photos: mean %.4f, std %.4f: scaling factor %.5f", stats["photos"],
                 stats["mean"], stats["std"], stats["scaling_factor"])
        trained.vae.register_to_config(scaling_factor=stats["scaling_factor"])
        return {**result, "latents": stats}

    def finish(self, trained: Objective, run_dir: Path, cfg: RunConfig, env: DistEnv) -> None:
        assert isinstance(trained, VAEObjective)
        save_vae(trained, run_dir / VAE_FOLDER, float(trained.vae.config["scaling_factor"]))

    def describe(self, cfg: RunConfig) -> dict[str, Any]:
        v = self.params(cfg)
        side = v.resolution // v.downsampling
        return {"backbone": "diffusers.AutoencoderKL",
                "vae": {"resolution": v.resolution, "downsampling": v.downsampling,
                        "latent_shape": [v.latent_channels, side, side], "folder": VAE_FOLDER}}
