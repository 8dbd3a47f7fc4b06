"""SwAV's multi-crop augmentation: ``n_global`` large crops and ``n_local`` small ones of the same photo.

Each crop is a RandomResizedCrop (global crops over ``global_scale`` of the area, local crops over
``local_scale``), a horizontal flip (p=0.5) and a colour distortion (SimCLR/SwAV strength 1: with
p=0.8 brightness, contrast and saturation in [0.2, 1.8] and hue shifted by up to 0.2 of a turn,
then grayscale with p=0.2), then the backbone's normalisation. Gaussian blur is left out: at the
64-96 px this tool trains at on a CPU it removes most of what is left of the picture (SwAV itself
drops it for small images); that is a deliberate difference from the 224 px recipe.

Every random choice comes from the ``torch.Generator`` passed with the image (the stream seeds one
per sample from ``(seed, epoch, position)``, as for ``TrainTransform``), so resumed runs see the
same crops. The output is ``{"image": [n_global, 3, G, G], "local": [n_local, 3, L, L]}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from tagsight.data.transforms import CROP_RATIO, check_data_config, crop_box


def _draft(img: Image.Image, min_side: int) -> Image.Image:
    """Ask a not-yet-decoded JPEG to decode at the smallest 1/2^k scale keeping both sides >= ``min_side``."""
    if getattr(img, "format", None) == "JPEG" and min(img.size) > min_side:
        img.draft("RGB", (min_side, min_side))
    return img


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))

_GRAY = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
# RGB <-> YIQ: a hue shift is a rotation of the (I, Q) plane.
_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_FROM_YIQ = torch.linalg.inv(_TO_YIQ)


def _pair(values: Any, name: str) -> tuple[float, float]:
    low, high = (float(v) for v in values)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"data.multicrop.{name} must satisfy 0 < low <= high <= 1, got {tuple(values)}")
    return low, high


@dataclass(frozen=True)
class MultiCropConfig:
    """Crop counts and sizes; ``global_size`` 0 means the model's input size."""

    n_global: int = 2
    global_size: int = 0
    global_scale: tuple[float, float] = (0.14, 1.0)
    n_local: int = 6
    local_size: int = 32
    local_scale: tuple[float, float] = (0.05, 0.14)
    color_strength: float = 1.0       # 0 turns the colour distortion off
    color_p: float = 0.8
    gray_p: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "global_scale", _pair(self.global_scale, "global_scale"))
        object.__setattr__(self, "local_scale", _pair(self.local_scale, "local_scale"))
        if self.n_global < 2:
            raise ValueError(f"data.multicrop.n_global must be >= 2 (SwAV swaps between views), got {self.n_global}")
        if self.n_local < 0 or self.global_size < 0:
            raise ValueError("data.multicrop.n_local and data.multicrop.global_size must be >= 0")
        if self.n_local and self.local_size < 8:
            raise ValueError(f"data.multicrop.local_size must be >= 8 px, got {self.local_size}")
        if self.color_strength < 0 or not (0 <= self.color_p <= 1 and 0 <= self.gray_p <= 1):
            raise ValueError("data.multicrop.color_strength must be >= 0 and color_p, gray_p in [0, 1]")

    def sizes(self, model_size: int) -> list[int]:
        """The side of every crop, globals first."""
        g = self.global_size or int(model_size)
        return [g] * self.n_global + [self.local_size] * self.n_local

    def pixels(self, model_size: int) -> int:
        """Input pixels per sample (all crops): the unit of compute when comparing with single-crop training."""
        return sum(s * s for s in self.sizes(model_size))


def color_distort(x: torch.Tensor, generator: torch.Generator, strength: float, p: float, gray_p: float) -> torch.Tensor:
    """Colour jitter (brightness, contrast, saturation, hue) with prob ``p``, then grayscale with prob ``gray_p``.

    ``x`` is RGB in [0, 1], ``[3, H, W]``; returns a new tensor in [0, 1].
    """
    if strength > 0 and float(torch.rand((), generator=generator)) < p:
        amount = 0.8 * strength
        x = x * _uniform(generator, max(0.0, 1 - amount), 1 + amount)
        gray_mean = (x * _GRAY).sum(0).mean()
        x = (x - gray_mean) * _uniform(generator, max(0.0, 1 - amount), 1 + amount) + gray_mean
        gray = (x * _GRAY).sum(0, keepdim=True)
        x = (x - gray) * _uniform(generator, max(0.0, 1 - amount), 1 + amount) + gray
        x = _hue_shift(x.clamp(0, 1), _uniform(generator, -0.2 * strength, 0.2 * strength))
    if float(torch.rand((), generator=generator)) < gray_p:
        x = (x * _GRAY).sum(0, keepdim=True).expand(3, -1, -1)
    return x.clamp(0, 1).contiguous()


def _hue_shift(x: torch.Tensor, turns: float) -> torch.Tensor:
    angle = 2 * math.pi * turns
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    matrix = _FROM_YIQ @ rot @ _TO_YIQ
    return torch.einsum("ij,jhw->ihw", matrix, x)


class MultiCropTransform:
    """``transform(img, generator) -> {"image": globals, "local": locals}`` (see module docstring)."""

    def __init__(self, data_config: Any, cfg: MultiCropConfig) -> None:
        model_size, self.mean, self.std = check_data_config(data_config)
        self.cfg = cfg
        self.sizes = cfg.sizes(model_size)
        self.scales = [cfg.global_scale] * cfg.n_global + [cfg.local_scale] * cfg.n_local
        self._draft_side = max(math.ceil(s * math.sqrt(CROP_RATIO[1] / sc[0])) for s, sc in zip(self.sizes, self.scales))

    def crop(self, img: Image.Image, size: int, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
        """One augmented, normalised crop ``[3, size, size]`` of an RGB image."""
        box = crop_box(img.width, img.height, scale, generator)
        out = img.resize((size, size), Image.Resampling.BILINEAR, box=box)
        if float(torch.rand((), generator=generator)) < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(out, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        x = color_distort(x, generator, self.cfg.color_strength, self.cfg.color_p, self.cfg.gray_p)
        return (x - self.mean) / self.std

    def __call__(self, img: Image.Image, generator: torch.Generator | int) -> dict[str, torch.Tensor]:
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        img = _draft(img, self._draft_side).convert("RGB")
        crops = [self.crop(img, s, sc, generator) for s, sc in zip(self.sizes, self.scales)]
        g = self.cfg.n_global
        local = torch.stack(crops[g:]) if self.cfg.n_local else torch.zeros(0, 3, self.cfg.local_size,
                                                                             self.cfg.local_size)
        return {"image": torch.stack(crops[:g]), "local": local}


def multicrop_transform(data_config: Any, cfg: MultiCropConfig | None = None) -> MultiCropTransform:
    """The SwAV multi-crop augmentation for ``data_config`` (default ``MultiCropConfig()``)."""
    return MultiCropTransform(data_config, cfg or MultiCropConfig())
