"""DiffusionConfig and TuneConfig validation, and the presets."""

from pathlib import Path

import pytest

from tagsight.generate.config import DiffusionConfig
from tagsight.generate.tune import TuneConfig
from tagsight.train.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_valid_and_lists_become_tuples():
    cfg = DiffusionConfig(widths=[32, 64], attention=[False, True], resolution=16)
    assert cfg.widths == (32, 64) and cfg.attention == (False, True)


@pytest.mark.parametrize("kwargs, message", [
    ({"widths": (32, 64), "attention": (True,)}, "one flag per width"),
    ({"widths": (30, 64), "attention": (False, True)}, "divisible by norm_groups"),
    ({"resolution": 30}, "divisible by 4"),
    ({"prediction": "x0"}, "prediction must be one of"),
    ({"sampler": "euler"}, "sampler must be one of"),
    ({"space": "latent"}, "objective.diffusion.vae_path is required"),
    ({"cfg_dropout": 1.0}, "cfg_dropout"),
    ({"crop_scale": (0.9, 0.5)}, "crop_scale"),
    ({"guidance": 0.5}, "guidance must be >= 1"),
    ({"steps": 2000}, "steps must be in"),
    ({"head_dim": 48}, "head_dim 48 must divide"),
])
def test_bad_settings_are_refused_with_the_setting_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiffusionConfig(**kwargs)


def test_unknown_keys_in_yaml_are_refused():
    with pytest.raises(ValueError, match="unknown config keys"):
        PretrainConfig.from_dict({"objective": {"diffusion": {"widht": [32]}}})


def test_cpu_preset_loads_and_gpu_preset_names_its_vae_setting():
    cpu = PretrainConfig.from_yaml(CONFIGS / "pretrain_diffusion_cpu_32.yaml")
    assert cpu.objective.name == "diffusion" and cpu.objective.diffusion.resolution == 32
    assert cpu.objective.diffusion.prediction == "v_prediction" and cpu.objective.diffusion.guidance == 5.0  # measured
    gpu = PretrainConfig.from_yaml(CONFIGS / "pretrain_diffusion_gpu_latent.yaml")
    assert gpu.objective.diffusion.space == "latent" and gpu.objective.diffusion.resolution == 256
    with pytest.raises(ValueError, match="objective.diffusion.vae_path"):
        PretrainConfig.from_yaml(CONFIGS / "pretrain_diffusion_gpu_latent.yaml",
                                 ["objective.diffusion.vae_path=null"])


def test_tune_config_validation_and_preset():
    assert TuneConfig.from_yaml(CONFIGS / "tune_diffusion_cpu_32.yaml").max_steps == 300
    with pytest.raises(ValueError, match="eval_every must be >= 1"):
        TuneConfig(eval_every=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TuneConfig(lr=0)
    with pytest.raises(ValueError, match="holdout_fraction"):
        TuneConfig.from_dict({"data": {"holdout_fraction": 1.5}})
