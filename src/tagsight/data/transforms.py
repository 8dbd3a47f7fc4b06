"""Train and eval image transforms with explicit randomness, derived from a model's data config.

``data_config`` is any object with ``input_size`` (int), ``mean`` and ``std`` (3 floats each),
such as ``tagsight.models.backbone.DataConfig``. Every random choice of ``TrainTransform`` comes
from the generator passed with the image (a ``numpy.random.Generator``, a ``torch.Generator`` or
an int seed), never from global RNG state, so a resumed run that seeds the generator per sample
reproduces the same augmentations exactly.

Speed (``docs/benchmarks.md``, ``bench/pretrain``): a transform takes the encoded bytes as well as
a PIL image, draws all its random numbers in one call, samples the crop box *before* decoding,
and decodes a JPEG at the smallest DCT scale (1/2, 1/4, 1/8; libjpeg-turbo's scaled IDCT) that
still leaves the crop at least ``input_size`` pixels in both directions, so no resolution is lost
against a full decode. Decoders, first installed wins: ``simplejpeg`` (libjpeg-turbo straight into
a numpy RGBX array that Pillow's resize reads without a copy), OpenCV's ``imdecode`` (reduced scales
only), Pillow (``draft`` for reduced scales). All are libjpeg-turbo with the accurate integer IDCT
and give identical pixels (``tests/data/test_transforms.py``); the first two skip Pillow's
``Image.open`` parsing, which on 160 px photos costs as much as the decode itself
(``docs/benchmarks.md``). ``pixels()`` returns the uint8 image and
``normalize_batch()`` normalises a whole stacked batch in one multiply-subtract; ``__call__`` does
both for one image.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from typing import Any, Protocol, Union, runtime_checkable

import numpy as np
import torch
from PIL import Image

CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)   # the aspect-ratio range of random-resized crops (multi-crop shares it)
_ATTEMPTS = 10
_REDUCTIONS = (8, 4, 2, 1)
_CV2_REDUCE_FLAG = {1: 0, 2: 16, 4: 32, 8: 64}  # cv2.IMREAD_REDUCED_*: the scale bits of imdecode's flags
EVAL_CROP_FRACTION = 0.875

Generator = Union[np.random.Generator, torch.Generator, int]
Source = Union[bytes, Image.Image]

def check_data_config(data_config: Any) -> tuple[int, torch.Tensor, torch.Tensor]:
    """A model's data config checked: (input size, mean [3, 1, 1], std [3, 1, 1]); ``ValueError`` names what is wrong."""
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
    return normalize(to_uint8_tensor(img)[None], mean, std)[0]


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """RGB (or RGBX) PIL image -> uint8 tensor [3, H, W] (a copy: writable, independent of the image)."""
    if img.mode == "RGBX":
        return torch.from_numpy(np.array(img, dtype=np.uint8)[..., :3]).permute(2, 0, 1)
    return torch.from_numpy(np.array(img.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 images [B, 3, H, W] -> float32 ``(x / 255 - mean) / std``, as one multiply and one subtract."""
    return images.float().mul_(1.0 / (255.0 * std)).sub_(mean / std)


# --------------------------------------------------------------------------------------- decoding


@functools.lru_cache(maxsize=1)
def _cv2() -> Any:
    """OpenCV when installed (``opencv-python-headless``), else None; imported once per process."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2 if hasattr(cv2, "IMREAD_COLOR_RGB") else None


@functools.lru_cache(maxsize=1)
def _simplejpeg() -> Any:
    """``simplejpeg`` when installed, else None; imported once per process."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def import_decoders() -> None:
    """Import the optional decoders now (before DataLoader workers fork), not once in each worker."""
    _cv2()
    _simplejpeg()


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG's frame header without decoding; None if not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i, end = 2, len(data) - 9
    while i < end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn (not DHT, JPG, DAC)
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big"), data[i + 9]
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


class _Encoded:
    """An image to decode: its size and whether JPEG DCT scaling applies, read from the header only."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.jpeg: bytes | None = None   # the encoded bytes of an RGB JPEG (the fast decoders read them)
        data = source if isinstance(source, (bytes, bytearray, memoryview)) else None
        header = jpeg_header(data) if data is not None else None
        if header is not None:
            self.width, self.height, components = header
            self.scalable = True
            self.jpeg = data if components == 3 else None
        else:
            img = source if isinstance(source, Image.Image) else Image.open(io.BytesIO(source))
            self.source, self.width, self.height = img, img.width, img.height
            self.scalable = getattr(img, "format", None) == "JPEG" and _undecoded(img)

    def decode(self, reduce: int) -> tuple[Image.Image, int]:
        """(RGB or RGBX image, reduction applied): a JPEG at 1/``reduce`` scale (sides ceil(side / reduce)), else full."""
        reduce = reduce if self.scalable else 1
        fast = self._decode_fast(self.jpeg, reduce) if self.jpeg is not None else None
        if fast is not None:  # else Pillow decodes it and raises its own, clearer error
            return fast, reduce
        img = self.source if isinstance(self.source, Image.Image) else Image.open(io.BytesIO(self.source))
        if reduce > 1:  # Pillow picks scale min(W // w, H // h), capped at 8
            img.draft("RGB", (max(1, self.width // reduce), max(1, self.height // reduce)))
        applied = reduce if img.size == (-(-self.width // reduce), -(-self.height // reduce)) else 1
        return img.convert("RGB"), applied

    def _decode_fast(self, jpeg: bytes, reduce: int) -> Image.Image | None:
        """An RGB JPEG at 1/``reduce`` by simplejpeg, else by OpenCV (reduced scales only); None if neither does."""
        fast = _simplejpeg()
        if fast is not None:
            img = _simplejpeg_decode(fast, jpeg, self.width, self.height, reduce)
            if img is not None:  # else a slower decoder tries
                return img
        cv2 = _cv2() if reduce > 1 else None
        if cv2 is not None:
            flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION | _CV2_REDUCE_FLAG[reduce]
            array = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flags)
            if array is not None:
                return Image.fromarray(array)
        return None


def _simplejpeg_decode(simplejpeg: Any, data: bytes, width: int, height: int, reduce: int) -> Image.Image | None:
    """The JPEG at exactly 1/``reduce`` scale as an RGBX image sharing simplejpeg's array; None if it fails."""
    w, h = -(-width // reduce), -(-height // reduce)
    try:  # min_factor and the minimum sides together leave only the scale 1/reduce
        array = simplejpeg.decode_jpeg(data, "RGBX", min_factor=reduce, min_width=w, min_height=h)
    except ValueError:
        return None
    if array.shape[:2] != (h, w):
        return None
    return Image.frombuffer("RGBX", (w, h), array, "raw", "RGBX", 0, 1)


def _undecoded(img: Image.Image) -> bool:
    """A lazily opened JPEG whose pixels are not loaded yet (so ``draft`` still applies)."""
    return len(getattr(img, "tile", ()) or ()) == 1


def reduction_for(width: float, height: float, min_side: int) -> int:
    """The largest JPEG DCT reduction (8, 4, 2 or 1) keeping ``width`` and ``height`` >= ``min_side``."""
    return next(k for k in _REDUCTIONS if k == 1 or (width / k >= min_side and height / k >= min_side))


def _decode_box(src: _Encoded, box: tuple[int, int, int, int], min_side: int
                ) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Decode at the largest reduction that keeps ``box`` >= ``min_side`` across; the box mapped into it."""
    left, top, right, bottom = box
    img, k = src.decode(reduction_for(right - left, bottom - top, min_side))
    return img, (left / k, top / k, min(right / k, img.width), min(bottom / k, img.height))


# --------------------------------------------------------------------------------------- randomness


def uniforms(generator: Generator, n: int) -> np.ndarray:
    """``n`` floats in [0, 1) from ``generator`` (numpy or torch; an int is a torch seed), in one call."""
    if isinstance(generator, np.random.Generator):
        return generator.random(n)
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    return torch.rand(n, generator=generator, dtype=torch.float64).numpy()


def crop_box(width: int, height: int, scale: tuple[float, float], generator: Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (left, top, right, bottom): area fraction in ``scale``, aspect in [3/4, 4/3].

    Ten attempts as in torchvision, then the central crop clamped to the ratio range.
    """
    return box_from_uniforms(width, height, scale, uniforms(generator, 4 * _ATTEMPTS))


def box_from_uniforms(width: int, height: int, scale: tuple[float, float], u: np.ndarray) -> tuple[int, int, int, int]:
    """``crop_box`` with its random numbers given: attempt ``i`` uses ``u[4i:4i+4]`` (area, ratio, left, top)."""
    area = width * height
    log_low, log_high = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    for i in range(_ATTEMPTS):
        a, r, x, y = u[4 * i:4 * i + 4]
        target = area * (scale[0] + (scale[1] - scale[0]) * float(a))
        ratio = math.exp(log_low + (log_high - log_low) * float(r))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(float(x) * (width - w + 1)), int(float(y) * (height - h + 1))
            return left, top, left + w, top + h
    ratio = width / height
    w, h = (width, round(width / CROP_RATIO[0])) if ratio < CROP_RATIO[0] else (
        (round(height * CROP_RATIO[1]), height) if ratio > CROP_RATIO[1] else (width, height))
    w, h = min(w, width), min(h, height)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


# --------------------------------------------------------------------------------------- transforms


@runtime_checkable
class EncodedTransform(Protocol):
    """A transform that decodes the encoded bytes itself and leaves normalisation to the whole batch.

    ``HashtagStream`` gives it a sample's encoded bytes and a numpy generator (``pixels`` -> uint8
    [3, S, S]); ``make_loader`` / ``batch_normalizer`` turn each stacked uint8 batch into model inputs
    with ``normalize_batch``. Called as ``transform(source, generator)`` it does both for one image, so it
    is also a ``(PIL image, torch.Generator) -> tensor`` transform; any other such callable is given a
    decoded image instead.
    """

    accepts_encoded: bool

    def pixels(self, source: Source, generator: Generator | None = None) -> torch.Tensor: ...

    def normalize_batch(self, images: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, source: Source, generator: Generator | None = None) -> torch.Tensor: ...


class _Normalizing(EncodedTransform):
    """``pixels(source, generator)`` -> uint8 [3, S, S]; ``normalize_batch`` and ``__call__`` add Normalize."""

    accepts_encoded = True  # HashtagStream passes the encoded bytes and a numpy generator to pixels()
    size: int
    mean: torch.Tensor
    std: torch.Tensor

    def pixels(self, source: Source, generator: Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def normalize_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, S, S] from ``pixels`` -> the normalised float batch, on the images' device."""
        return normalize(images, self.mean.to(images.device), self.std.to(images.device))

    def __call__(self, source: Source, generator: Generator | None = None) -> torch.Tensor:
        """The normalised float tensor [3, size, size] of one image."""
        return self.normalize_batch(self.pixels(source, generator)[None])[0]


class TrainTransform(_Normalizing):
    """RandomResizedCrop(size, scale) + horizontal flip (p=0.5) + ToTensor + Normalize, randomness from a generator."""

    def __init__(self, data_config: Any, scale: Sequence[float] = (0.35, 1.0), flip: bool = True) -> None:
        self.size, self.mean, self.std = check_data_config(data_config)
        low, high = (float(v) for v in scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        self.scale, self.flip = (low, high), flip
        import_decoders()

    def pixels(self, source: Source, generator: Generator | None = None) -> torch.Tensor:
        """The augmented uint8 tensor [3, size, size]; ``generator`` drives every choice (41 uniforms).

        The crop box is drawn on the full-size image, then the JPEG is decoded at the largest DCT
        reduction that keeps the box at least ``size`` pixels wide and high, and the box is mapped
        into the reduced image.
        """
        if generator is None:
            raise ValueError("TrainTransform needs a generator (numpy, torch or an int seed)")
        u = uniforms(generator, 4 * _ATTEMPTS + 1)
        src = _Encoded(source)
        box = box_from_uniforms(src.width, src.height, self.scale, u)
        img, fbox = _decode_box(src, box, self.size)
        out = img.resize((self.size, self.size), Image.Resampling.BILINEAR, box=fbox)
        if self.flip and u[-1] < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_uint8_tensor(out)


class EvalTransform(_Normalizing):
    """Resize the short side to size / 0.875, CenterCrop(size), ToTensor, Normalize; deterministic."""

    def __init__(self, data_config: Any, crop_fraction: float = EVAL_CROP_FRACTION) -> None:
        self.size, self.mean, self.std = check_data_config(data_config)
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.resize_to = math.floor(self.size / crop_fraction)
        import_decoders()

    def pixels(self, source: Source, generator: Generator | None = None) -> torch.Tensor:
        """The uint8 centre crop [3, size, size]; ``generator`` is accepted and ignored."""
        src = _Encoded(source)
        img, _ = src.decode(reduction_for(src.width, src.height, self.resize_to))
        factor = self.resize_to / min(img.width, img.height)
        width, height = max(self.size, round(img.width * factor)), max(self.size, round(img.height * factor))
        left, top = (width - self.size) // 2, (height - self.size) // 2
        # Crop in the source image's coordinates and resize once: the same pixels as resize-then-crop.
        box = (left / factor, top / factor, (left + self.size) / factor, (top + self.size) / factor)
        return to_uint8_tensor(img.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box))


def train_transform(data_config: Any, scale: Sequence[float] = (0.35, 1.0)) -> TrainTransform:
    """The training augmentation for ``data_config`` (call it as ``transform(img, generator)``)."""
    return TrainTransform(data_config, scale)


def eval_transform(data_config: Any) -> EvalTransform:
    """The evaluation transform for ``data_config`` (call it as ``transform(img)``)."""
    return EvalTransform(data_config)
