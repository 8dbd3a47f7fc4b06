import io
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.data import transforms
from tagsight.data.transforms import (
    EvalTransform,
    box_from_uniforms,
    crop_box,
    eval_transform,
    jpeg_header,
    reduction_for,
    to_normalized_tensor,
    to_uint8_tensor,
    train_transform,
)


@dataclass
class DataConfig:
    input_size: int = 24
    mean: tuple = (0.5, 0.4, 0.3)
    std: tuple = (0.2, 0.25, 0.3)


def test_train_transform_gives_the_configured_size_and_normalised_range(make_picture):
    cfg = DataConfig()
    out = train_transform(cfg)(make_picture(1, (48, 40)), torch.Generator().manual_seed(0))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    mean, std = torch.tensor(cfg.mean).view(3, 1, 1), torch.tensor(cfg.std).view(3, 1, 1)
    pixels = out * std + mean  # undo Normalize: back in [0, 1]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_same_generator_seed_gives_identical_tensors_and_other_seeds_differ(make_picture):
    transform, img = train_transform(DataConfig()), make_picture(2, (48, 40))
    a = transform(img, torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # the global RNG must play no part
    b = transform(img, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert torch.equal(a, transform(img, 7))
    assert not all(torch.equal(a, transform(img, torch.Generator().manual_seed(s))) for s in range(1, 4))


def test_crop_box_stays_inside_the_image_with_scale_and_ratio_bounds():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        left, top, right, bottom = crop_box(60, 40, (0.35, 1.0), g)
        w, h = right - left, bottom - top
        assert 0 <= left < right <= 60 and 0 <= top < bottom <= 40
        assert 0.3 <= w * h / 2400 <= 1.0 and 0.7 <= w / h <= 1.4
    assert crop_box(200, 10, (0.9, 1.0), g) == (93, 0, 106, 10)  # fallback: central crop at ratio 4/3


def test_eval_transform_is_a_deterministic_centre_crop(make_picture):
    img = make_picture(3, (64, 48))
    transform = eval_transform(DataConfig(input_size=16))
    assert isinstance(transform, EvalTransform) and transform.resize_to == 18
    out = transform(img)
    assert out.shape == (3, 16, 16) and torch.equal(out, transform(img, torch.Generator().manual_seed(5)))
    # Equal to resize-short-side-to-18 then centre crop 16, computed the slow way.
    resized = img.resize((24, 18), resample=2)
    expected = to_normalized_tensor(resized.crop((4, 1, 20, 17)), transform.mean, transform.std)
    assert (out - expected).abs().mean() < 0.05


@pytest.mark.parametrize("bad, match", [({"input_size": 0}, "input_size"), ({"std": (1, 0, 1)}, "std"),
                                        ({"mean": (0.5, 0.5)}, "3 values")])
def test_bad_data_config_is_rejected_with_a_message(bad, match):
    with pytest.raises(ValueError, match=match):
        train_transform(DataConfig(**bad))


def test_bad_scale_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        train_transform(DataConfig(), scale=(0.0, 1.0))


# --------------------------------------------------------------------------------------- encoded input, reduced decoding


def jpeg_bytes(img, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


@pytest.mark.parametrize("mode, save", [("RGB", {}), ("L", {}), ("RGB", {"progressive": True}),
                                        ("CMYK", {}), ("RGB", {"subsampling": 0})])
def test_jpeg_header_matches_pillow(make_picture, mode, save):
    data = jpeg_bytes(make_picture(4, (157, 131)).convert(mode), **save)
    img = Image.open(io.BytesIO(data))
    assert jpeg_header(data) == (*img.size, len(img.getbands()))
    assert jpeg_header(b"\x89PNG\r\n") is None and jpeg_header(data[:40]) is None


@pytest.mark.parametrize("size", [16, 100])  # reduced decoding (1/4, 1/8) and full-scale decoding
@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"subsampling": 0}])
def test_every_decoder_gives_identical_augmentations(make_picture, monkeypatch, save, size):
    """simplejpeg and OpenCV are optional: with either, or neither (Pillow), exactly the same pixels, also reduced."""
    pytest.importorskip("cv2")
    pytest.importorskip("simplejpeg")
    train, evaluate = train_transform(DataConfig(input_size=size)), eval_transform(DataConfig(input_size=size))
    datas = [jpeg_bytes(make_picture(s, (157, 131)), **save) for s in range(6)]
    real = {"_simplejpeg": transforms._simplejpeg, "_cv2": transforms._cv2}

    def outputs(*enabled: str) -> list[torch.Tensor]:
        for name, loader in real.items():
            monkeypatch.setattr(transforms, name, loader if name in enabled else (lambda: None))
        return ([train.pixels(d, np.random.default_rng(i)) for i, d in enumerate(datas)]
                + [evaluate.pixels(d) for d in datas])

    runs = [outputs("_simplejpeg", "_cv2"), outputs("_cv2"), outputs()]
    from_pil = [train.pixels(Image.open(io.BytesIO(d)), np.random.default_rng(i)) for i, d in enumerate(datas)]
    assert all(torch.equal(a, b) for other in runs[1:] for a, b in zip(runs[0], other))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], from_pil))


def test_reduced_decoding_keeps_the_crop_at_least_the_output_size(make_picture, monkeypatch):
    data, calls = jpeg_bytes(make_picture(5, (160, 160))), []
    real = transforms._Encoded.decode

    def spy(self, reduce):
        img, applied = real(self, reduce)
        calls.append((reduce, applied, img.size))
        return img, applied

    monkeypatch.setattr(transforms._Encoded, "decode", spy)
    transform = train_transform(DataConfig(input_size=16), scale=(0.35, 1.0))
    for seed in range(40):
        u = np.random.default_rng(seed).random(41)
        left, top, right, bottom = box_from_uniforms(160, 160, (0.35, 1.0), u)
        out = transform.pixels(data, np.random.default_rng(seed))
        reduce, applied, size = calls[-1]
        assert reduce == applied == reduction_for(right - left, bottom - top, 16)
        assert (right - left) / applied >= 16 and (bottom - top) / applied >= 16 and size == (160 // applied,) * 2
        assert out.shape == (3, 16, 16) and out.dtype == torch.uint8
    assert {c[0] for c in calls} == {4, 8}  # 16 px from 160: crops of 80..160 px decode at 1/4 or 1/8
    # Close to decoding the full image and cropping it (what torchvision's RandomResizedCrop does).
    full = Image.open(io.BytesIO(data)).convert("RGB")
    u = np.random.default_rng(0).random(41)
    box = box_from_uniforms(160, 160, (0.35, 1.0), u)
    expected = to_uint8_tensor(full.resize((16, 16), Image.Resampling.BILINEAR, box=box))
    if u[-1] < 0.5:
        expected = expected.flip(-1)
    got = transform.pixels(data, np.random.default_rng(0)).int()
    assert (got - expected.int()).abs().float().mean() < 3


def test_pixels_then_batch_normalisation_equals_the_one_image_call(make_picture):
    transform = train_transform(DataConfig())
    data = jpeg_bytes(make_picture(6, (48, 40)))
    batch = torch.stack([transform.pixels(data, np.random.default_rng(s)) for s in range(3)])
    normalised = transform.normalize_batch(batch)
    assert normalised.dtype == torch.float32
    for s in range(3):
        assert torch.equal(normalised[s], transform(data, np.random.default_rng(s)))
    png = io.BytesIO()
    make_picture(6, (48, 40)).save(png, "PNG")  # not a JPEG: decoded by Pillow at full size
    assert transform.pixels(png.getvalue(), np.random.default_rng(0)).shape == (3, 24, 24)
    with pytest.raises(ValueError, match="generator"):
        transform.pixels(data)
