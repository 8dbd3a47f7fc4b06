"""The latent (GPU preset) path with a randomly initialised tiny AutoencoderKL: build, train a step, sample, errors."""

import pytest
import torch

from tagsight.generate.config import DiffusionConfig
from tagsight.generate.model import load_vae
from tagsight.generate.objective import DiffusionObjective
from tagsight.generate.sample import SampleSettings, sample
from tagsight.generate.method import build_generator, generator_vae
from tagsight.train.config import PretrainConfig


@pytest.fixture
def vae_dir(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=4, norm_num_groups=8, sample_size=32)
    vae.save_pretrained(tmp_path / "vae")
    return tmp_path / "vae"


def latent_cfg(vae_path) -> PretrainConfig:
    return PretrainConfig.from_dict({"objective": {"name": "diffusion", "diffusion": {
        "resolution": 32, "space": "latent", "vae_path": str(vae_path), "widths": [16, 32], "attention": [False, True],
        "norm_groups": 8, "head_dim": 16, "token_dim": 16, "max_tokens": 4, "prediction": "v_prediction",
        "train_timesteps": 100, "steps": 3, "sampler": "dpm"}}})


def test_latent_generator_trains_on_vae_latents_and_samples_full_size_images(vae_dir):
    cfg = latent_cfg(vae_dir)
    objective = build_generator(cfg, generator_vae(cfg), num_labels=5)
    assert (objective.channels, objective.sample_size) == (4, 16)          # the tiny VAE halves the side
    assert not any(k.startswith("_vae") or "encoder" in k.split(".")[0] for k in objective.state_dict())
    batch = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "tokens": torch.tensor([[2, 3, 0, 0], [1, 0, 0, 0]])}
    out = objective(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and objective.denoiser.unet.conv_in.weight.grad is not None
    assert all(p.grad is None for p in objective.vae.parameters())
    images = sample(objective, batch["tokens"], [0, 1], SampleSettings(steps=3, sampler="dpm", guidance=2.0))
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8


def test_a_missing_vae_is_an_error_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match="objective.diffusion.vae_path is required"):
        DiffusionConfig(space="latent")
    with pytest.raises(FileNotFoundError, match="objective.diffusion.vae_path .*nothing is downloaded"):
        load_vae(str(tmp_path / "no-vae"))
    with pytest.raises(ValueError, match="takes no VAE"):
        DiffusionObjective(DiffusionConfig(), 5, vae=torch.nn.Identity())
