"""The ``diffusion`` method of ``tagsight pretrain``: the generator trained by the shared Trainer.

``tagsight pretrain --objective diffusion DATASET --vocab VOCAB --out RUN --config
configs/pretrain_diffusion_cpu_32.yaml`` builds a ``DiffusionObjective`` (its own model: no timm
backbone; ``cfg.model`` is unused), streams every post of the training split (``data.select``) at
``objective.resolution`` with its tokens, and at the end reports the held-out denoising loss (fixed noise
and timesteps, ``generate.heldout``) of the trained weights, their EMA and the untrained model. The run
folder gets ``tokens.json`` (the vocabulary as the token table), so sampling needs nothing but the run.
Its settings are ``DiffusionConfig`` (``generate.config``). This module registers the method in
``tagsight.methods.METHODS`` from above (registration goes up); the CLI imports it (``tagsight.cli.methods``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsight.collectives import DistEnv
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig
from tagsight.generate.conditioning import OFFSET, TokenTable
from tagsight.generate.config import FORGET_KIND, DiffusionConfig
from tagsight.generate.data import TokenStream, image_transform
from tagsight.generate.heldout import heldout_loss
from tagsight.generate.model import load_vae
from tagsight.generate.objective import DiffusionObjective
from tagsight.lineage import read_artifact
from tagsight.methods.base import Method, Objective, RunConfig, register_method, stream_config
from tagsight.models.backbone import DataConfig
from tagsight.storage import is_url
from tagsight.tags.vocab import Vocabulary

if TYPE_CHECKING:   # diffusers is the generate extra
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.json"
EVAL_REPEATS = 2       # fixed (timestep, noise) draws per held-out post in eval.json


def trained_vae_run(vae_path: str | None) -> dict[str, str] | None:
    """The ``vae`` run a ``vae_path`` was exported from (``RUN/vae``), as a lineage parent: its path and version.

    A latent generator decodes through that VAE, so what the VAE learnt from is in every picture it draws:
    forgetting a post of the VAE's dataset must reach the generator too. None for a VAE from elsewhere.
    """
    if not vae_path or is_url(vae_path):
        return None
    run = Path(vae_path).resolve().parent
    if not (run / "run.json").is_file():
        return None
    return {"path": str(run), "version": read_artifact(run).version}


def diffusion_settings(cfg: RunConfig) -> DiffusionConfig:
    """The generator's settings of a run config (``objective.params`` of a ``diffusion`` run)."""
    return DiffusionMethod().params(cfg)


def generator_vae(cfg: RunConfig) -> AutoencoderKL | None:
    """The frozen VAE of a latent generator (a local diffusers folder), None in pixel space."""
    d = diffusion_settings(cfg)
    return load_vae(d.vae_path) if d.space == "latent" else None


def build_generator(cfg: RunConfig, vae: AutoencoderKL | None, num_labels: int,
                    batches_per_epoch: int = 0) -> DiffusionObjective:
    """A fresh generator for a vocabulary of ``num_labels`` labels (``vae``: None in pixel space)."""
    return DiffusionObjective(diffusion_settings(cfg), num_labels + OFFSET, seed=cfg.seed, vae=vae)


def token_stream(index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
                 env: DistEnv, stream_cfg: StreamConfig | None = None) -> TokenStream:
    """Every post of ``split`` (``data.select``) at the generator's resolution, with its tokens."""
    d = diffusion_settings(cfg)
    return TokenStream(index, TokenTable(vocab, d.max_tokens), image_transform(d, data_config, split),
                       stream_cfg or stream_config(cfg, split), select=cfg.data.select, captions=d.captions,
                       rank=env.rank, world_size=env.world_size)


def evaluate_denoising(trained: DiffusionObjective, untrained: DiffusionObjective, heldout: Any, cfg: RunConfig,
                       env: DistEnv) -> dict[str, Any]:
    """Held-out denoising MSE (fixed noise) of the trained weights, their EMA, and the untrained model."""
    w, n = cfg.data.workers, EVAL_REPEATS
    result = {"heldout_denoising": {"trained": heldout_loss(trained, heldout, env, w, n),
                                    "untrained": heldout_loss(untrained, heldout, env, w, n)}}
    if trained.ema is not None:
        result["heldout_denoising"]["trained_ema"] = heldout_loss(trained, heldout, env, w, n, use_ema=True)
    r = result["heldout_denoising"]
    log.info("held-out denoising loss %.4f (EMA %s, untrained %.4f) on %d samples", r["trained"]["loss"],
             r.get("trained_ema", {}).get("loss", "-"), r["untrained"]["loss"], r["trained"]["n_samples"])
    return result


@register_method
class DiffusionMethod(Method[DiffusionConfig]):
    """The hashtag-conditioned image generator (a diffusers UNet), trained on every post's photo and tokens."""

    name = "diffusion"
    config_class = DiffusionConfig

    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> DiffusionObjective:
        return build_generator(cfg, generator_vae(cfg), num_labels, batches_per_epoch)

    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> TokenStream:
        return token_stream(index, vocab, cfg, data_config, split, env)

    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        assert isinstance(trained, DiffusionObjective) and isinstance(untrained, DiffusionObjective)
        return evaluate_denoising(trained, untrained, heldout, cfg, env)

    def describe(self, cfg: RunConfig) -> dict[str, Any]:
        d = diffusion_settings(cfg)
        out = {"backbone": "diffusers.UNet2DConditionModel", "forget_kind": FORGET_KIND,
               "generator": {"space": d.space, "resolution": d.resolution, "prediction": d.prediction,
                             "vae_path": d.vae_path}}
        vae_run = trained_vae_run(d.vae_path)
        return {**out, "vae_run": vae_run} if vae_run else out

    def files(self, cfg: RunConfig, vocab: Vocabulary) -> dict[str, str]:
        return {TOKENS_FILE: json.dumps(vocab.to_dict(), ensure_ascii=False)}
