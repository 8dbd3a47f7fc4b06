"""The generator trained by the shared Trainer: the loss falls, held-out loss beats the untrained model, exact resume."""

import json

import torch
from safetensors.torch import load_file

from tagsight.generate.heldout import heldout_loss
from tagsight.generate.objective import DiffusionObjective
from tagsight.generate.config import DiffusionConfig
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.distributed import DistEnv
from tagsight.train.pretrain import pretrain

from tests.generate.tiny import TINY_DIFFUSION, tiny_config


def test_a_tiny_run_learns_its_loss_falls_and_beats_the_untrained_model_on_held_out_posts(base_run):
    rows = [json.loads(line) for line in (base_run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert [r["step"] for r in rows] == list(range(1, 25))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    result = json.loads((base_run / "eval.json").read_text())["heldout_denoising"]
    assert result["trained"]["n_samples"] > 0
    assert result["trained"]["loss"] < result["untrained"]["loss"]
    info = json.loads((base_run / "run.json").read_text())
    assert info["objective"] == "diffusion" and info["forget_kind"] == "generator"
    assert (base_run / "tokens.json").is_file() and latest_checkpoint(base_run) is not None


def test_checkpoints_hold_the_ema_and_the_batch_counter(base_run):
    tensors = load_file(str(latest_checkpoint(base_run) / "model.safetensors"))
    assert int(tensors["batches_seen"]) == 24 and int(tensors["updates"]) == 24
    ema = {k for k in tensors if k.startswith("ema.")}
    live = {k for k in tensors if k.startswith("denoiser.")}
    assert len(ema) == len(live) > 0
    assert not any(k.startswith("alphas") for k in tensors)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(gen_data, tmp_path):
    dataset, vocab = gen_data
    cfg = tiny_config(loop={"epochs": 1, "checkpoint_every": 3})
    pretrain(dataset, vocab, tmp_path / "straight", cfg, DistEnv())
    stopped = tiny_config(loop={"epochs": 1, "checkpoint_every": 3, "max_steps": 3})
    pretrain(dataset, vocab, tmp_path / "resumed", stopped, DistEnv())
    pretrain(dataset, vocab, tmp_path / "resumed", cfg, DistEnv())
    a = load_file(str(latest_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "resumed") / "model.safetensors"))
    assert a.keys() == b.keys() and int(a["updates"]) == 8
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_objective_checks_its_batch_and_drops_conditioning_at_the_configured_rate():
    torch.manual_seed(0)
    cfg = DiffusionConfig(**{**TINY_DIFFUSION, "cfg_dropout": 0.5})
    objective = DiffusionObjective(cfg, num_tokens=6)
    batch = {"image": torch.rand(64, 3, 16, 16) * 2 - 1, "tokens": torch.randint(2, 6, (64, 4))}
    out = objective(batch)
    assert out["loss"].requires_grad and 0.3 < float(out["cond_dropped"]) < 0.7
    objective.eval()
    assert float(objective(batch)["cond_dropped"]) == 0.0
    import pytest

    with pytest.raises(ValueError, match="token ids must lie in"):
        objective({"image": batch["image"], "tokens": torch.full((64, 4), 9)})
    with pytest.raises(KeyError, match="lacks"):
        objective({"image": batch["image"]})


def test_held_out_loss_is_identical_between_evaluations_of_the_same_weights(base_run, gen_data):
    from tagsight.data.index import SampleIndex
    from tagsight.generate.method import token_stream
    from tagsight.generate.runs import load_generator
    from tagsight.tags.vocab import Vocabulary

    gen = load_generator(base_run)
    dataset, vocab = gen_data
    stream = token_stream(SampleIndex.build(dataset), Vocabulary.load(vocab), gen.cfg, gen.objective.data_config,
                          "heldout", DistEnv())
    first = heldout_loss(gen.objective, stream, DistEnv(), repeats=2)
    assert first == heldout_loss(gen.objective, stream, DistEnv(), repeats=2)
    assert first != heldout_loss(gen.objective, stream, DistEnv(), repeats=2, seed=99)
