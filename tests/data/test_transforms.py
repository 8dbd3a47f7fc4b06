from dataclasses import dataclass

import pytest
import torch

from tagsight.data.transforms import (
    EvalTransform,
    crop_box,
    eval_transform,
    to_normalized_tensor,
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
