"""``tagsight generate``: the DIR format the measurement reads, determinism per seed, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.cli import main
from tagsight.generate.config import DiffusionConfig
from tagsight.generate.objective import DiffusionObjective
from tagsight.generate.sample import SampleSettings, sample

from tests.generate.tiny import TINY_DIFFUSION

KEYS = {"file", "prompt", "tokens_used", "tokens_unknown", "seed", "steps", "guidance", "model", "size"}


def known_hashtag(run: Path) -> str:
    vocab = json.loads((run / "tokens.json").read_text())
    return "#" + sorted(vocab["lookup"])[0]


def generate(run, out, *extra) -> int:
    return main(["-q", "generate", "--model", str(run), "--out", str(out), "--steps", "3", *extra])


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_generate_writes_images_grid_and_one_row_per_image(base_run, tmp_path):
    tag = known_hashtag(base_run)
    assert generate(base_run, tmp_path / "a", "--prompt", f"{tag} #notaword", "--n", "3", "--seed", "5") == 0
    out = rows(tmp_path / "a")
    assert [r["file"] for r in out] == ["0000.png", "0001.png", "0002.png"]
    assert all(set(r) == KEYS for r in out)
    assert [r["seed"] for r in out] == [5, 6, 7]
    r = out[0]
    assert r["tokens_used"] == [tag] and r["tokens_unknown"] == ["#notaword"] and r["size"] == 16
    assert r["steps"] == 3 and r["guidance"] == 3.0 and isinstance(r["guidance"], float)
    assert r["model"] == {"run": str(base_run), "step": 24, "kind": "pretrain"}
    for row in out:
        with Image.open(tmp_path / "a" / row["file"]) as img:
            assert img.size == (16, 16) and img.mode == "RGB"
    with Image.open(tmp_path / "a" / "grid.png") as grid:
        assert grid.size[0] > 3 * 16
    lineage = json.loads((tmp_path / "a" / "lineage.json").read_text())
    assert lineage["kind"] == "generated" and lineage["parents"][0]["path"] == str(base_run)


def test_the_same_seed_gives_the_same_image_and_images_pair_by_seed(base_run, tmp_path):
    tag = known_hashtag(base_run)
    generate(base_run, tmp_path / "a", "--prompt", tag, "--n", "3")
    generate(base_run, tmp_path / "b", "--prompt", tag, "--n", "3")
    generate(base_run, tmp_path / "c", "--prompt", tag, "--n", "1", "--seed", "2")
    for name in ("0000.png", "0001.png", "0002.png", "grid.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    first = np.asarray(Image.open(tmp_path / "a" / "0000.png"), dtype=int)
    third = np.asarray(Image.open(tmp_path / "a" / "0002.png"), dtype=int)
    alone = np.asarray(Image.open(tmp_path / "c" / "0000.png"), dtype=int)
    assert np.abs(first - third).max() > 10          # another seed, another image
    assert np.abs(third - alone).max() <= 1          # seed 2 alone = seed 2 in a batch (up to float rounding)


def test_a_prompt_file_samples_every_prompt_and_rows_carry_their_prompt(base_run, tmp_path):
    tag = known_hashtag(base_run)
    vocab = json.loads((base_run / "tokens.json").read_text())
    other = "#" + sorted(vocab["lookup"])[-1]
    (tmp_path / "prompts.txt").write_text(f"{tag}\n\n// a comment\n{other} extra\n")
    assert generate(base_run, tmp_path / "p", "--prompts", str(tmp_path / "prompts.txt"), "--n", "2",
                    "--guidance", "1") == 0
    out = rows(tmp_path / "p")
    assert [(r["file"], r["prompt"], r["seed"]) for r in out] == [
        ("0000.png", tag, 0), ("0001.png", tag, 1), ("0002.png", f"{other} extra", 0), ("0003.png", f"{other} extra", 1)]
    assert out[2]["tokens_unknown"] == ["extra"] and out[0]["guidance"] == 1.0


def test_a_prompt_without_known_tokens_and_a_bad_checkpoint_fail_clearly(base_run, tmp_path, capsys):
    assert generate(base_run, tmp_path / "x", "--prompt", "#zzqq #xxyy") == 2
    assert "no item of the prompt '#zzqq #xxyy'" in capsys.readouterr().err
    assert not (tmp_path / "x" / "samples.jsonl").exists()
    assert generate(base_run, tmp_path / "x", "--prompt", known_hashtag(base_run), "--checkpoint", "step-9") == 2
    err = capsys.readouterr().err
    assert "no checkpoint 'step-9'" in err and "step-00000024" in err
    assert generate(tmp_path, tmp_path / "x", "--prompt", "#x") == 2
    assert "not a tagsight run folder" in capsys.readouterr().err


def test_fewer_images_into_an_old_folder_leave_no_stale_image(base_run, tmp_path):
    tag = known_hashtag(base_run)
    generate(base_run, tmp_path / "d", "--prompt", tag, "--n", "3")
    generate(base_run, tmp_path / "d", "--prompt", tag, "--n", "1")
    assert sorted(p.name for p in (tmp_path / "d").glob("*.png")) == ["0000.png", "grid.png"]
    assert len(rows(tmp_path / "d")) == 1


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_samplers_with_an_exact_denoiser_return_the_one_training_image(prediction, sampler):
    """With a single training image x*, the ideal prediction is known in closed form: sampling must give x*."""
    cfg = DiffusionConfig(**{**TINY_DIFFUSION, "prediction": prediction, "train_timesteps": 1000})
    objective = DiffusionObjective(cfg, num_tokens=5)
    target = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    alphas = objective.alphas_cumprod

    class Exact(torch.nn.Module):
        def forward(self, x, t, ids):
            a = alphas[t].view(-1, 1, 1, 1)
            eps = (x - a.sqrt() * target) / (1 - a).sqrt()
            return eps if prediction == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * target

    images = sample(objective, torch.tensor([[2, 0, 0, 0]] * 2), [0, 1], SampleSettings(20, 3.0, sampler),
                    denoiser=Exact())
    assert (images.float() - ((target + 1) * 127.5).round()).abs().max() <= 1
