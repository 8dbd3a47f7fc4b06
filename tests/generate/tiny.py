"""Tiny generator settings for the tests (16 px, a 2-level UNet: seconds on the CPU)."""

from __future__ import annotations

from tagsight.train.config import PretrainConfig

TINY_DIFFUSION = {"resolution": 16, "widths": [16, 32], "attention": [False, True], "norm_groups": 8, "head_dim": 16,
                  "token_dim": 16, "max_tokens": 4, "steps": 4, "train_timesteps": 100}


def tiny_config(**sections) -> PretrainConfig:
    """A generator config that trains in seconds on the CPU; ``sections`` update its dict sections."""
    d = {"objective": {"name": "diffusion", "diffusion": dict(TINY_DIFFUSION)},
         "data": {"epoch_length": 64, "batch_size": 8, "workers": 0, "sampling": "none", "holdout_fraction": 0.2},
         "optim": {"name": "adamw", "base_lr": 0.002, "reference_batch": 8, "weight_decay": 0.0, "warmup_fraction": 0.0},
         "loop": {"epochs": 3, "log_every": 1, "checkpoint_every": 4}}
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value} if isinstance(value, dict) else value
    return PretrainConfig.from_dict(d)
