"""The latent generator's autoencoder: a diffusers ``AutoencoderKL`` trained on a dataset's photos (the ``vae`` method).

``VAEConfig`` holds its settings (validated at construction). ``VAEObjective`` is what the shared
Trainer trains: the photo (pixels in [-1, 1]) is encoded to a diagonal Gaussian, a latent ``z`` is
sampled from it, decoded, and the loss is

    loss = reconstruction(decoded, photo) + kl_weight * KL(q(z | photo) || N(0, I))

with the reconstruction the mean absolute (``l1``) or squared (``mse``) error per pixel and channel and
the KL divergence averaged per latent element (so ``kl_weight`` does not depend on the image size).
The latent's noise comes from a generator seeded by ``(seed, batches seen, rank)`` with the batch counter
a buffer saved in the checkpoint, so a resumed run draws exactly the noise of an uninterrupted one.
``PhotoStream`` is the input: every post's photo of a split at ``resolution`` (no hashtags needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from tagsight.collectives import rank_world
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig, augmentation_seed
from tagsight.data.transforms import EncodedTransform, EvalTransform, TrainTransform
from tagsight.data.views import UniformStream
from tagsight.methods.base import Objective
from tagsight.models.backbone import DataConfig
from tagsight.tags.vocab import Vocabulary

if TYPE_CHECKING:   # diffusers is the generate extra, imported when a VAE is built
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

RECONSTRUCTIONS = ("l1", "mse")


@dataclass(frozen=True)
class VAEConfig:
    """A diffusers ``AutoencoderKL``: ``len(widths)`` levels, so the latent side is ``resolution / 2**(levels-1)``.

    The GPU preset (``configs/pretrain_vae_gpu.yaml``) is Stable Diffusion's shape: widths 128/256/512/512
    (8x downsampling), 4 latent channels, 2 ResNet layers per block: 32x32x4 latents of 256 px photos.
    """

    resolution: int = 64                       # photo side in pixels (trained and evaluated)
    widths: tuple[int, ...] = (32, 64, 64)     # channels per level (block_out_channels)
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_groups: int = 16
    mid_attention: bool = True                 # self-attention in the middle block (as Stable Diffusion's VAE)
    reconstruction: str = "l1"                 # l1 | mse
    kl_weight: float = 1e-5                    # beta, on the KL averaged per latent element
    crop_scale: tuple[float, float] = (0.7, 1.0)   # random-resized-crop area range (then a horizontal flip)
    scale_photos: int = 256                    # training photos whose latents set the scaling factor at the end

    def __post_init__(self) -> None:
        for name in ("widths", "crop_scale"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_architecture()
        self._check_training()

    @property
    def downsampling(self) -> int:
        """Photo side / latent side."""
        return int(2 ** (len(self.widths) - 1))

    def _check_architecture(self) -> None:
        if not self.widths or any(int(w) != w or w < 1 for w in self.widths):
            raise ValueError(f"objective.vae.widths must be positive integers, got {list(self.widths)}")
        if self.norm_groups < 1 or any(w % self.norm_groups for w in self.widths):
            raise ValueError(f"objective.vae.widths {list(self.widths)} must all be divisible by "
                             f"norm_groups {self.norm_groups}")
        if self.resolution < 8 or self.resolution % self.downsampling:
            raise ValueError(f"objective.vae.resolution must be >= 8 and divisible by {self.downsampling} "
                             f"({len(self.widths)} levels), got {self.resolution}")
        if self.layers_per_block < 1 or self.latent_channels < 1:
            raise ValueError("objective.vae.layers_per_block and latent_channels must be >= 1")

    def _check_training(self) -> None:
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"objective.vae.reconstruction must be one of {RECONSTRUCTIONS}, "
                             f"got {self.reconstruction!r}")
        if not self.kl_weight >= 0.0:
            raise ValueError(f"objective.vae.kl_weight must be >= 0, got {self.kl_weight}")
        low, high = self.crop_scale if len(self.crop_scale) == 2 else (0, -1)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"objective.vae.crop_scale must be [low, high] with 0 < low <= high <= 1, "
                             f"got {list(self.crop_scale)}")
        if self.scale_photos < 1:
            raise ValueError(f"objective.vae.scale_photos must be >= 1, got {self.scale_photos}")


def build_autoencoder(cfg: VAEConfig) -> AutoencoderKL:
    """A freshly initialised ``AutoencoderKL`` of ``cfg``'s shape (scaling factor 1 until measured)."""
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

    levels = len(cfg.widths)
    vae: AutoencoderKL = AutoencoderKL(   # annotated: register_to_config leaves the constructor untyped
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=cfg.widths,
        layers_per_block=cfg.layers_per_block, latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_groups,
        sample_size=cfg.resolution, scaling_factor=1.0, mid_block_add_attention=cfg.mid_attention)
    return vae


class VAEObjective(Objective):
    """Train an ``AutoencoderKL`` (``self.vae``); ``data_config``: the resolution with pixels mapped to [-1, 1].

    The autoencoder runs in channels-last memory format (oneDNN's faster convolution layout on the CPU, as the
    generator's UNet; on GPUs too); ``contiguous_vae()`` is a copy in the default layout, for export.
    """

    batches_seen: torch.Tensor     # a buffer (registered in __init__)

    def __init__(self, cfg: VAEConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, int(seed)
        self.vae = build_autoencoder(cfg)
        nn.Module.to(self.vae, memory_format=torch.channels_last)   # in place (diffusers' own ``to`` is untyped)
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))

    @property
    def data_config(self) -> DataConfig:
        return DataConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=self.cfg.resolution)

    def _generator(self, device: torch.device) -> torch.Generator:
        rank, _ = rank_world()
        return torch.Generator(device=device).manual_seed(augmentation_seed(self.seed, int(self.batches_seen), rank))

    def losses(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample ``{"rec", "kl", "loss"}`` ``[B]`` (float32); the latent is the posterior's mean without
        ``generator``, a sample drawn with it otherwise."""
        images = images.contiguous(memory_format=torch.channels_last)
        posterior = self.vae.encode(images).latent_dist
        z = posterior.mode() if generator is None else posterior.sample(generator)
        decoded = self.vae.decode(z).sample.float()
        error = (decoded - images.float()).abs() if self.cfg.reconstruction == "l1" else (decoded - images.float()) ** 2
        rec = error.flatten(1).mean(dim=1)
        kl = posterior.kl().float() / float(z[0].numel())     # diffusers sums over the latent's elements
        return {"rec": rec, "kl": kl, "loss": rec + self.cfg.kl_weight * kl}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss", "loss_rec", "loss_kl"}`` for one batch (see the module docstring)."""
        images = self._check(batch)
        out = self.losses(images, self._generator(images.device))
        if self.training:
            self.batches_seen += 1
        return {"loss": out["loss"].mean(), "loss_rec": out["rec"].mean().detach(),
                "loss_kl": out["kl"].mean().detach()}

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Photos in [-1, 1] -> their reconstructions through the posterior's mean, clamped to [-1, 1]."""
        images = images.contiguous(memory_format=torch.channels_last)
        decoded: torch.Tensor = self.vae.decode(self.vae.encode(images).latent_dist.mode()).sample
        return decoded.float().clamp(-1, 1)

    @torch.no_grad()
    def latents(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents sampled as the latent generator samples them (``AutoencoderKL.encode(...).latent_dist.sample``)."""
        images = images.contiguous(memory_format=torch.channels_last)
        latent: torch.Tensor = self.vae.encode(images).latent_dist.sample(generator)
        return latent.float()

    def contiguous_vae(self) -> AutoencoderKL:
        """A copy of the autoencoder with its weights in the default memory layout (what ``save_pretrained`` writes)."""
        import copy

        clone = copy.deepcopy(self.vae)
        nn.Module.to(clone, memory_format=torch.contiguous_format)
        return clone

    def _check(self, batch: dict[str, Any]) -> torch.Tensor:
        if "image" not in batch:
            raise KeyError(f"vae batch lacks 'image' (has {sorted(batch)})")
        images: torch.Tensor = batch["image"]
        s = self.cfg.resolution
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"expected image [B,3,{s},{s}], got {tuple(images.shape)}")
        return images


def psnr(reconstructed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio ``[B]`` in dB of images in [-1, 1] (peak: the [0, 1] range), capped at 100 dB."""
    mse = (((reconstructed.float() - images.float()) / 2) ** 2).flatten(1).mean(dim=1)
    return (-10.0 * torch.log10(mse.clamp_min(1e-10))).clamp_max(100.0)


class PhotoStream(UniformStream[EncodedTransform]):
    """Every post's photo of a split (``data.select``), uint8 ``[3, S, S]``; no hashtags are read.

    Items are ``{"image", "index"}``; ``collate`` maps the images to [-1, 1]. Training photos are
    random-resized crops (area ``crop_scale``) flipped half the time; held-out photos are centre crops.
    """

    def item(self, index: int, position: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.cfg.seed, self.epoch, position])
        return {"image": self.transform.pixels(self.index.read_jpeg(index), rng), "index": index}


def photo_stream(index: SampleIndex, vocab: Vocabulary, cfg: VAEConfig, data_config: DataConfig,
                 stream_cfg: StreamConfig, select: str = "all", rank: int | None = None,
                 world_size: int | None = None, augment: bool | None = None) -> PhotoStream:
    """The photos of ``stream_cfg.split`` at ``cfg.resolution``: random-resized crops and flips when ``augment``
    (by default for the training split), centre crops otherwise."""
    augment = stream_cfg.split == "train" if augment is None else augment
    transform: EncodedTransform = TrainTransform(data_config, cfg.crop_scale) if augment else EvalTransform(data_config)
    return PhotoStream(index, vocab, transform, stream_cfg, select=select, rank=rank, world_size=world_size)
