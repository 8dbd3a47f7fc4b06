"""The ``diffusion`` recipe of ``tagsight pretrain``: the generator trained by the shared Trainer.

``tagsight pretrain --objective diffusion DATASET --vocab VOCAB --out RUN --config
configs/pretrain_diffusion_cpu_32.yaml`` builds a ``DiffusionObjective`` (its own model: no timm
backbone; ``cfg.model`` is unused), streams every post of the training split (``data.select``) at
``objective.diffusion.resolution`` with its tokens, and at the end reports the held-out denoising
loss (fixed noise and timesteps, ``generate.heldout``) of the trained weights, their EMA and the
untrained model. The run folder gets ``tokens.json`` (the vocabulary as the token table), so
sampling needs nothing but the run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tagsight.data.pipeline import StreamConfig
from tagsight.generate.conditioning import OFFSET, TokenTable
from tagsight.generate.config import FORGET_KIND
from tagsight.generate.data import TokenStream, image_transform
from tagsight.generate.heldout import heldout_loss
from tagsight.generate.model import load_vae
from tagsight.generate.objective import DiffusionObjective
from tagsight.tags.vocab import Vocabulary
from tagsight.train.pretrain import RECIPES, Recipe, stream_config

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.json"
EVAL_REPEATS = 2       # fixed (timestep, noise) draws per held-out post in eval.json


def build_generator(cfg, vae, num_labels: int, batches_per_epoch: int = 0) -> DiffusionObjective:
    """A fresh generator for a vocabulary of ``num_labels`` labels (``vae``: None in pixel space)."""
    return DiffusionObjective(cfg.objective.diffusion, num_labels + OFFSET, seed=cfg.seed, vae=vae)


def generator_vae(cfg) -> Any:
    d = cfg.objective.diffusion
    return load_vae(d.vae_path) if d.space == "latent" else None


def token_stream(index, vocab: Vocabulary, cfg, data_config, split: str, env,
                 stream_cfg: StreamConfig | None = None) -> TokenStream:
    d = cfg.objective.diffusion
    return TokenStream(index, TokenTable(vocab, d.max_tokens), image_transform(d, data_config, split),
                       stream_cfg or stream_config(cfg, split), select=cfg.data.select, captions=d.captions,
                       rank=env.rank, world_size=env.world_size)


def evaluate_denoising(trained, untrained, heldout, cfg, env, vocab) -> dict:
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


def describe(cfg) -> dict[str, Any]:
    d = cfg.objective.diffusion
    return {"backbone": "diffusers.UNet2DConditionModel", "forget_kind": FORGET_KIND,
            "generator": {"space": d.space, "resolution": d.resolution, "prediction": d.prediction,
                          "vae_path": d.vae_path}}


def run_files(cfg, vocab: Vocabulary) -> dict[str, str]:
    return {TOKENS_FILE: json.dumps(vocab.to_dict(), ensure_ascii=False)}


RECIPES.register("diffusion")(lambda: Recipe(build_generator, token_stream, evaluate_denoising, model=generator_vae,
                                             describe=describe, files=run_files))
