"""Train and eval image transforms with explicit randomness, derived from a model's data config.

``data_config`` is any object with ``input_size`` (int), ``mean`` and ``std`` (3 floats each),
such as ``tagsight.models.backbone.DataConfig``. Every random choice of ``TrainTransform`` comes
from the ``torch.Generator`` passed with the image, never from global RNG state, so a resumed run
that seeds the generator per sample reproduces the same augmentations exactly.

JPEGs not yet decoded are decoded at reduced resolution (Pillow's ``draft``) when the output
cannot need the full size; that is the main cost saving of the input pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

_RATIO = (3.0 / 4.0, 4.0 / 3.0)
EVAL_CROP_FRACTION = 0.875


def _check_config(data_config: Any) -> tuple[int, torch.Tensor, torch.Tensor]:
    size = int(data_config.input_size)
    if size < 1:
        raise ValueError(f"input_size must be >= 1, got {data_config.input_size}")
    mean, std = (torch.tensor([float(v) for v in values]).view(-1, 1, 1) for values in (data_config.mean, data_config.std))
    if mean.numel() != 3 or std.numel() != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {list(data_config.mean)} and {list(data_config.std)}")
    if (std <= 0).any():
        raise ValueError(f"std values must be > 0, got {list(data_config.std)}")
    return size, mean, std


def to_normalized_tensor(img: Image.Image, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RGB PIL image -> float tensor [3, H, W], scaled to [0, 1] then normalised by mean and std."""
    array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float()
    # (x / 255 - mean) / std as one multiply-add: x * (1 / (255 std)) - mean / std
    return tensor.mul_(1.0 / (255.0 * std)).sub_(mean / std)


def _draft(img: Image.Image, min_side: int) -> Image.Image:
    """Ask a not-yet-decoded JPEG to decode at the smallest 1/2^k scale keeping both sides >= ``min_side``."""
    if getattr(img, "format", None) == "JPEG" and min(img.size) > min_side:
        img.draft("RGB", (min_side, min_side))
    return img


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: torch.Generator, high: int) -> int:
    """An integer in [0, high]."""
    return int(torch.randint(0, high + 1, (), generator=generator))


def crop_box(width: int, height: int, scale: tuple[float, float], generator: torch.Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (left, top, right, bottom): area fraction in ``scale``, aspect in [3/4, 4/3].

    Ten attempts as in torchvision, then the central crop clamped to the ratio range.
    """
    area = width * height
    log_ratio = (math.log(_RATIO[0]), math.log(_RATIO[1]))
    for _ in range(10):
        target = area * _uniform(generator, *scale)
        ratio = math.exp(_uniform(generator, *log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = _randint(generator, width - w), _randint(generator, height - h)
            return left, top, left + w, top + h
    ratio = width / height
    w, h = (width, round(width / _RATIO[0])) if ratio < _RATIO[0] else (
        (round(height * _RATIO[1]), height) if ratio > _RATIO[1] else (width, height))
    w, h = min(w, width), min(h, height)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


class TrainTransform:
    """RandomResizedCrop(size, scale) + horizontal flip (p=0.5) + ToTensor + Normalize, randomness from a generator."""

    def __init__(self, data_config: Any, scale: Sequence[float] = (0.35, 1.0), flip: bool = True) -> None:
        self.size, self.mean, self.std = _check_config(data_config)
        low, high = (float(v) for v in scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        self.scale, self.flip = (low, high), flip
        # Smallest decoded side that still gives the smallest crop at least `size` pixels across.
        self._draft_side = math.ceil(self.size * math.sqrt(_RATIO[1] / low))

    def __call__(self, img: Image.Image, generator: torch.Generator | int) -> torch.Tensor:
        """The augmented, normalised tensor [3, size, size]; ``generator`` (or an int seed) drives every choice."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        img = _draft(img, self._draft_side).convert("RGB")
        box = crop_box(img.width, img.height, self.scale, generator)
        out = img.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
        if self.flip and float(torch.rand((), generator=generator)) < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_normalized_tensor(out, self.mean, self.std)


class EvalTransform:
    """Resize the short side to size / 0.875, CenterCrop(size), ToTensor, Normalize; deterministic."""

    def __init__(self, data_config: Any, crop_fraction: float = EVAL_CROP_FRACTION) -> None:
        self.size, self.mean, self.std = _check_config(data_config)
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.resize_to = math.floor(self.size / crop_fraction)

    def __call__(self, img: Image.Image, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """The normalised centre crop [3, size, size]; ``generator`` is accepted and ignored."""
        img = _draft(img, self.resize_to).convert("RGB")
        factor = self.resize_to / min(img.width, img.height)
        width, height = max(self.size, round(img.width * factor)), max(self.size, round(img.height * factor))
        left, top = (width - self.size) // 2, (height - self.size) // 2
        # Crop in the source image's coordinates and resize once: the same pixels as resize-then-crop.
        box = (left / factor, top / factor, (left + self.size) / factor, (top + self.size) / factor)
        out = img.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
        return to_normalized_tensor(out, self.mean, self.std)


def train_transform(data_config: Any, scale: Sequence[float] = (0.35, 1.0)) -> TrainTransform:
    """The training augmentation for ``data_config`` (call it as ``transform(img, generator)``)."""
    return TrainTransform(data_config, scale)


def eval_transform(data_config: Any) -> EvalTransform:
    """The evaluation transform for ``data_config`` (call it as ``transform(img)``)."""
    return EvalTransform(data_config)
