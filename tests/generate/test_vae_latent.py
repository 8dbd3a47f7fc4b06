"""The latent path end to end with nothing downloaded: ``pretrain --objective vae`` (the CPU preset, shrunk), then the
GPU latent preset (shrunk) reading ``VAE_RUN/vae`` as ``objective.vae_path``, then ``tagsight generate``."""

import json
from pathlib import Path

import pytest

from tagsight.cli import main

REPO = Path(__file__).resolve().parents[2]
SHRINK_VAE = ["objective.resolution=16", "objective.widths=[8,16]", "objective.norm_groups=8",
              "objective.scale_photos=16", "data.epoch_length=32", "data.batch_size=8", "data.workers=0",
              "data.holdout_fraction=0.2", "loop.epochs=1", "loop.log_every=1", "loop.checkpoint_every=2"]
SHRINK_LATENT = ["objective.resolution=16", "objective.widths=[16,32]", "objective.attention=[false,true]",
                 "objective.layers_per_block=1", "objective.norm_groups=8", "objective.head_dim=16",
                 "objective.token_dim=16", "objective.max_tokens=4", "objective.train_timesteps=100",
                 "objective.steps=3", "data.epoch_length=16", "data.batch_size=8", "data.workers=0",
                 "data.holdout_fraction=0.2", "loop.epochs=1", "loop.log_every=1", "loop.checkpoint_every=2",
                 "loop.bf16=false"]


def overrides(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


@pytest.fixture(scope="module")
def vae_cli_run(gen_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("latent") / "vae-run"
    code = main(["-q", "pretrain", "--objective", "vae", str(gen_data[0]), "--out", str(run),
                 "--config", str(REPO / "configs/pretrain_vae_cpu.yaml"), *overrides(SHRINK_VAE)])
    assert code == 0
    return run


def test_the_cpu_preset_trains_without_a_vocabulary_and_exports_its_folder(vae_cli_run):
    assert (vae_cli_run / "vae" / "config.json").is_file()
    assert (vae_cli_run / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    config = json.loads((vae_cli_run / "vae" / "config.json").read_text())
    measured = json.loads((vae_cli_run / "eval.json").read_text())["latents"]["scaling_factor"]
    assert config["scaling_factor"] == pytest.approx(measured) and config["scaling_factor"] != 1.0
    assert json.loads((vae_cli_run / "run.json").read_text())["objective"] == "vae"


def test_the_gpu_latent_preset_trains_on_the_vae_run_and_generates(gen_data, vae_cli_run, tmp_path):
    dataset, vocab = gen_data
    run = tmp_path / "latent-run"
    code = main(["-q", "pretrain", "--objective", "diffusion", str(dataset), "--vocab", str(vocab), "--out", str(run),
                 "--config", str(REPO / "configs/pretrain_diffusion_gpu_latent.yaml"),
                 "--set", f"objective.vae_path={vae_cli_run / 'vae'}", *overrides(SHRINK_LATENT)])
    assert code == 0
    info = json.loads((run / "run.json").read_text())
    assert info["generator"]["space"] == "latent" and info["generator"]["vae_path"] == str(vae_cli_run / "vae")
    assert info["vae_run"]["path"] == str(vae_cli_run.resolve())          # a lineage parent, as forget needs
    assert json.loads((run / "eval.json").read_text())["heldout_denoising"]["trained"]["n_samples"] > 0
    tag = "#" + sorted(json.loads((run / "tokens.json").read_text())["lookup"])[0]
    assert main(["-q", "generate", str(run), "--prompt", tag, "--n", "2", "--out", str(tmp_path / "out"),
                 "--steps", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["size"] for r in rows] == [16, 16] and (tmp_path / "out" / "0001.png").is_file()


def test_the_latent_generator_uses_the_measured_scaling_factor(vae_cli_run):
    import torch

    from tagsight.generate.config import DiffusionConfig
    from tagsight.generate.model import load_vae
    from tagsight.generate.objective import DiffusionObjective

    vae = load_vae(str(vae_cli_run / "vae"))
    cfg = DiffusionConfig(resolution=16, space="latent", vae_path=str(vae_cli_run / "vae"), widths=(16, 32),
                          attention=(False, True), head_dim=16, token_dim=16, max_tokens=4, train_timesteps=100)
    objective = DiffusionObjective(cfg, 5, vae=vae)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    raw = vae.encode(images).latent_dist.sample(torch.Generator().manual_seed(1))
    scaled = objective.encode(images, torch.Generator().manual_seed(1))
    assert torch.allclose(scaled, raw * vae.config.scaling_factor)


def test_pretrain_without_a_vocabulary_is_refused_for_methods_that_need_one(gen_data, tmp_path, capsys):
    code = main(["-q", "pretrain", "--objective", "diffusion", str(gen_data[0]), "--out", str(tmp_path / "r"),
                 "--config", str(REPO / "configs/pretrain_diffusion_cpu_32.yaml")])
    assert code == 2 and "'diffusion' method needs a vocabulary (--vocab)" in capsys.readouterr().err
