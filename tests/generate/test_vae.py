"""The ``vae`` method: the Trainer trains an AutoencoderKL, resumes exactly, evaluates PSNR and exports a diffusers
folder that a latent generator reads as ``objective.vae_path`` (VAE run -> diffusion run -> generate)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tagsight.generate.vae import VAEConfig, VAEObjective, psnr
from tagsight.generate.vae_method import export_vae
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv
from tagsight.train.pretrain import pretrain

TINY_VAE = {"resolution": 16, "widths": [8, 16], "norm_groups": 8, "latent_channels": 4, "scale_photos": 24}


def vae_config(**sections) -> PretrainConfig:
    """A VAE config that trains in seconds on the CPU; ``sections`` update its dict sections."""
    d = {"objective": {"name": "vae", **TINY_VAE},
         "data": {"epoch_length": 64, "batch_size": 8, "workers": 0, "sampling": "none", "holdout_fraction": 0.2},
         "optim": {"name": "adamw", "base_lr": 0.003, "reference_batch": 8, "weight_decay": 0.0,
                   "warmup_fraction": 0.0},
         "loop": {"epochs": 3, "log_every": 1, "checkpoint_every": 8}}
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return PretrainConfig.from_dict(d)


@pytest.fixture(scope="module")
def vae_run(gen_data, tmp_path_factory):
    """A VAE trained 24 steps on the generate tests' dataset, without a vocabulary."""
    dataset, _ = gen_data
    run = tmp_path_factory.mktemp("vae") / "run"
    pretrain(dataset, None, run, vae_config(), DistEnv())
    return run


def test_a_tiny_vae_run_learns_and_beats_the_untrained_one_in_held_out_psnr(vae_run):
    rows = [json.loads(line) for line in (vae_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 25))
    losses = [r["loss"] for r in rows]
    assert sum(losses[-4:]) / 4 < 0.85 * sum(losses[:4]) / 4, losses
    assert {"loss_rec", "loss_kl"} <= set(rows[0])
    result = json.loads((vae_run / "eval.json").read_text())
    held = result["heldout_reconstruction"]
    assert held["trained"]["n_photos"] == held["untrained"]["n_photos"] > 0
    assert held["trained"]["psnr"] > held["untrained"]["psnr"] + 1.5, held
    latents = result["latents"]
    assert latents["photos"] == 24 and latents["scaling_factor"] == pytest.approx(1 / latents["std"], rel=1e-3)
    info = json.loads((vae_run / "run.json").read_text())
    assert info["objective"] == "vae" and info["vocab"] is None
    assert info["vae"]["latent_shape"] == [4, 8, 8]


def test_the_exported_folder_loads_with_from_pretrained_and_matches_the_checkpoint(vae_run):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(vae_run / "vae"), local_files_only=True)
    scaling = json.loads((vae_run / "eval.json").read_text())["latents"]["scaling_factor"]
    assert vae.config.scaling_factor == pytest.approx(scaling) and vae.config.latent_channels == 4
    weights = load_file(str(latest_checkpoint(vae_run) / "model.safetensors"))
    for name, tensor in vae.state_dict().items():
        assert torch.equal(tensor, weights[f"vae.{name}"]), name
    # the scaled latents of photos are about unit variance: what the latent generator was built for
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = vae.encode(images).latent_dist.sample(torch.Generator().manual_seed(0)) * vae.config.scaling_factor
    assert 0.2 < float(z.std()) < 5.0


def test_export_vae_rewrites_the_folder_from_the_latest_checkpoint(vae_run, tmp_path):
    folder = export_vae(vae_run, tmp_path / "again")
    assert (folder / "config.json").is_file() and (folder / "diffusion_pytorch_model.safetensors").is_file()
    a = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(vae_run / "vae" / "diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(ValueError, match="not a 'vae' run"):
        (tmp_path / "unfinished" / "config.yaml").write_text(vae_config().to_yaml())
        export_vae(tmp_path / "unfinished")


def test_an_interrupted_vae_run_resumes_to_the_weights_of_an_uninterrupted_one(gen_data, tmp_path):
    dataset, _ = gen_data
    cfg = vae_config(loop={"epochs": 1, "checkpoint_every": 3})
    pretrain(dataset, None, tmp_path / "straight", cfg, DistEnv())
    pretrain(dataset, None, tmp_path / "resumed", vae_config(loop={"epochs": 1, "checkpoint_every": 3, "max_steps": 3}),
             DistEnv())
    pretrain(dataset, None, tmp_path / "resumed", cfg, DistEnv())
    a = load_file(str(latest_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "resumed") / "model.safetensors"))
    assert a.keys() == b.keys() and int(a["batches_seen"]) == 8
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_forgetting_an_author_flags_the_vae_run_for_retraining(gen_data, tmp_path):
    import shutil

    import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
    from tagsight.data.index import SampleIndex
    from tagsight.privacy.forget import forget, requests_from

    root = tmp_path / "root"
    shutil.copytree(gen_data[0], root / "ds")
    author = sorted(a for a in SampleIndex.build(root / "ds").author_ids if a)[0]
    pretrain(root / "ds", None, root / "runs" / "vae", vae_config(loop={"epochs": 1, "max_steps": 2}), DistEnv())
    report = forget(requests_from(authors=[author]), root)
    runs = {r.path: r for r in report.results if r.kind == "run"}
    assert runs[str(root / "runs" / "vae")].affected > 0
    assert runs[str(root / "runs" / "vae")].action.startswith("retrain needed")
    assert str(root / "runs" / "vae") in report.retrain


def test_a_latent_generator_is_made_from_the_posts_its_trained_vae_learnt_from(gen_data, tmp_path):
    import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
    from tagsight.data.index import SampleIndex
    from tagsight.generate.method import trained_vae_run
    from tagsight.lineage import iter_artifacts, read_artifact
    from tagsight.privacy.trace import made_from

    vae_run = tmp_path / "runs" / "vae"
    pretrain(gen_data[0], None, vae_run, vae_config(loop={"epochs": 1, "max_steps": 2}), DistEnv())
    assert trained_vae_run(str(tmp_path / "elsewhere" / "vae")) is None      # a VAE not trained here: no parent
    generator = tmp_path / "runs" / "generator"                                # trained on other photos (none here)
    generator.mkdir()
    (generator / "run.json").write_text(json.dumps({
        "dataset": {"path": str(tmp_path / "other-photos"), "manifest_version": "v0"}, "vocab": None,
        "objective": "diffusion", "vae_run": trained_vae_run(str(vae_run / "vae"))}))
    index = SampleIndex.build(gen_data[0])
    keys = set(index.post_keys)
    known = list(iter_artifacts(tmp_path / "runs")) + [read_artifact(gen_data[0])]
    assert made_from(read_artifact(generator), keys, known) == made_from(read_artifact(vae_run), keys, known) != set()


def test_methods_that_read_hashtags_still_need_a_vocabulary(gen_data, tmp_path):
    import tagsight.generate.method  # noqa: F401  (registers "diffusion")
    from tests.generate.tiny import tiny_config

    with pytest.raises(ValueError, match="'diffusion' method needs a vocabulary"):
        pretrain(gen_data[0], None, tmp_path / "run", tiny_config(), DistEnv())


def test_the_objective_checks_its_batch_and_its_psnr_is_the_textbook_one():
    torch.manual_seed(0)
    objective = VAEObjective(VAEConfig(**{**TINY_VAE, "reconstruction": "mse", "kl_weight": 0.5}))
    with pytest.raises(KeyError, match="lacks 'image'"):
        objective({"tokens": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match=r"expected image \[B,3,16,16\]"):
        objective({"image": torch.zeros(2, 3, 8, 8)})
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    out = objective.losses(images)
    assert torch.allclose(out["loss"], out["rec"] + 0.5 * out["kl"])
    objective.train()
    objective({"image": images})
    assert int(objective.batches_seen) == 1
    clean = torch.zeros(1, 3, 4, 4)
    assert float(psnr(clean + 0.2, clean)) == pytest.approx(10 * torch.log10(torch.tensor(1 / 0.01)).item(), rel=1e-5)


@pytest.mark.parametrize("settings, message", [
    ({"widths": []}, "widths must be positive"),
    ({"widths": [8, 12]}, "divisible by norm_groups"),
    ({"resolution": 18, "widths": [8, 8, 8]}, "divisible by 4"),
    ({"latent_channels": 0}, "latent_channels must be >= 1"),
    ({"reconstruction": "ssim"}, "reconstruction must be one of"),
    ({"kl_weight": -1.0}, "kl_weight must be >= 0"),
    ({"kl_weight": float("nan")}, "kl_weight must be >= 0"),
    ({"crop_scale": [0.9, 0.5]}, "crop_scale must be"),
    ({"scale_photos": 0}, "scale_photos must be >= 1"),
])
def test_bad_settings_are_refused_naming_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**{**TINY_VAE, **settings})
    assert VAEConfig(resolution=256, widths=(128, 256, 512, 512), norm_groups=32).downsampling == 8
