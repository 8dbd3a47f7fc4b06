"""The generator's parts: a diffusers ``UNet2DConditionModel``, the token encoder, the optional VAE, a weight EMA."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from tagsight.generate.conditioning import PAD
from tagsight.generate.config import DiffusionConfig

if TYPE_CHECKING:   # diffusers is the generate extra, imported when a generator is built
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

log = logging.getLogger(__name__)


def build_unet(cfg: DiffusionConfig, channels: int, sample_size: int) -> UNet2DConditionModel:
    """The denoiser: ``len(cfg.widths)`` levels, cross-attention where ``cfg.attention`` says and in the middle.

    With ``cfg.prompt_to_time`` the UNet also takes a ``[B, token_dim]`` vector as ``class_labels``
    (diffusers' ``class_embed_type="projection"``: a two-layer MLP added to the timestep embedding).
    """
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention))
    # diffusers' ``attention_head_dim`` of this class is the number of heads per block (a known naming quirk).
    heads = tuple(max(1, w // cfg.head_dim) for w in cfg.widths)
    unet: UNet2DConditionModel = UNet2DConditionModel(   # annotated: register_to_config leaves it untyped
        sample_size=sample_size, in_channels=channels, out_channels=channels, block_out_channels=cfg.widths,
        layers_per_block=cfg.layers_per_block, down_block_types=down, up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=cfg.token_dim, attention_head_dim=heads,
        norm_num_groups=cfg.norm_groups,
        class_embed_type="projection" if cfg.prompt_to_time else None,
        projection_class_embeddings_input_dim=cfg.token_dim if cfg.prompt_to_time else None)
    return unet


class TokenEncoder(nn.Module):
    """Token ids ``[B, T]`` -> (embeddings ``[B, T, D]``, keep-mask ``[B, T]``: 1 for real tokens, 0 for padding).

    Tokens are a set (a post's labels have no order), so there is no position embedding.
    """

    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_tokens, dim, padding_idx=PAD)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.norm(self.embed(ids)), (ids != PAD).to(self.embed.weight.dtype)


def pool_tokens(context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, D]``: the mean of each row's token embeddings over its real tokens (padding left out).

    The null row (the null token, then padding) pools to the null token's embedding itself, so the
    unconditional branch of classifier-free guidance reads the same input whatever the row length.
    """
    weights = mask.unsqueeze(-1)
    return (context * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def load_vae(path: str | None) -> AutoencoderKL:
    """A frozen diffusers ``AutoencoderKL`` from a local folder; a clear error naming the setting otherwise."""
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

    folder = Path(path) if path else None
    if folder is None or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"objective.diffusion.vae_path {path!r} is not a local AutoencoderKL folder "
                                "(config.json + diffusion_pytorch_model.safetensors, e.g. saved with "
                                "AutoencoderKL.save_pretrained); nothing is downloaded")
    vae: AutoencoderKL = AutoencoderKL.from_pretrained(str(folder), local_files_only=True)   # unannotated in diffusers
    vae.requires_grad_(False)
    return vae.eval()


class WeightEMA(nn.Module):
    """An exponential moving average of a module's parameters, held as buffers (saved with the checkpoint).

    ``update(step)`` uses decay ``min(decay, (1 + step) / (10 + step))`` so early averages are not
    dominated by the random initialisation; ``copy_to(module)`` writes the averages into the module.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.names = [name for name, _ in module.named_parameters()]
        for name, p in module.named_parameters():
            self.register_buffer(_key(name), p.detach().clone())

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for name, p in module.named_parameters():
            getattr(self, _key(name)).lerp_(p.detach(), 1.0 - decay)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        for name, p in module.named_parameters():
            p.copy_(getattr(self, _key(name)))

    @torch.no_grad()
    def reset(self, module: nn.Module) -> None:
        for name, p in module.named_parameters():
            getattr(self, _key(name)).copy_(p.detach())


def _key(name: str) -> str:
    return name.replace(".", "__")
