"""``prompt_to_time``: the pooled prompt added to the timestep embedding (every ResNet block conditioned)."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from tagsight.generate.conditioning import NULL, PAD
from tagsight.generate.config import DiffusionConfig
from tagsight.generate.model import pool_tokens
from tagsight.generate.objective import DiffusionObjective, null_tokens
from tagsight.generate.runs import load_generator
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv
from tagsight.train.pretrain import pretrain

from tests.generate.tiny import TINY_DIFFUSION, tiny_config

PROJECTION = "denoiser.unet.class_embedding."


def tiny(prompt_to_time: bool, seed: int = 0) -> DiffusionObjective:
    torch.manual_seed(seed)
    return DiffusionObjective(DiffusionConfig(**{**TINY_DIFFUSION, "prompt_to_time": prompt_to_time}),
                              num_tokens=8).eval()


def predictions(objective: DiffusionObjective, rows: list[list[int]]) -> torch.Tensor:
    """The denoiser's prediction for each token row, all from the same noisy input and timestep."""
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(7)).expand(len(rows), -1, -1, -1)
    with torch.no_grad():
        return objective.denoiser(x, torch.full((len(rows),), 40), torch.tensor(rows))


def with_plain_weights(objective: DiffusionObjective) -> DiffusionObjective:
    """A model without the option holding ``objective``'s weights (all but the projection)."""
    plain = tiny(False)
    state = {k: v for k, v in objective.state_dict().items() if "class_embedding" not in k}
    plain.load_state_dict(state)
    return plain


def test_the_option_is_off_by_default_and_adds_only_the_projection():
    assert DiffusionConfig().prompt_to_time is False
    on, off = tiny(True).state_dict(), tiny(False).state_dict()
    extra = set(on) - set(off)
    assert set(off) <= set(on) and all("class_embedding" in k for k in extra)
    assert sum(1 for k in extra if k.startswith(PROJECTION)) == 4          # linear_1 and linear_2, weight and bias
    assert sum(1 for k in extra if k.startswith("ema.")) == 4              # and their EMA


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_non_boolean_prompt_to_time_is_refused_naming_the_setting(value):
    with pytest.raises(ValueError, match="objective.diffusion.prompt_to_time must be true or false"):
        DiffusionConfig(prompt_to_time=value)


def test_a_config_written_before_the_option_loads_with_it_off():
    cfg = PretrainConfig.from_dict({"objective": {"name": "diffusion", "diffusion": dict(TINY_DIFFUSION)}})
    assert cfg.objective.params.prompt_to_time is False
    on = PretrainConfig.from_dict({"objective": {"name": "diffusion",
                                                 "diffusion": {**TINY_DIFFUSION, "prompt_to_time": True}}})
    assert on.objective.params.prompt_to_time is True


def test_the_pooled_prompt_changes_the_prediction_and_two_prompts_differ_through_it():
    model = tiny(True)
    plain = with_plain_weights(model)
    rows = [[2, 3, PAD, PAD], [4, 5, 6, PAD]]
    on, off = predictions(model, rows), predictions(plain, rows)
    assert not torch.allclose(on, off, atol=1e-4)                    # the projection adds to every block
    assert not torch.allclose(on[0] - on[1], off[0] - off[1], atol=1e-4)   # it separates the prompts further
    with torch.no_grad():
        for p in model.denoiser.unet.class_embedding.linear_2.parameters():
            p.zero_()
    assert torch.allclose(predictions(model, rows), off, atol=1e-5)  # a zero projection is the plain model


def test_pooling_is_the_mean_of_the_real_tokens_and_ignores_padding():
    model = tiny(True)
    context, mask = model.denoiser.tokens(torch.tensor([[2, 3, PAD, PAD], [3, 2, PAD, PAD], [2, 3, 3, PAD]]))
    pooled = pool_tokens(context, mask)
    assert torch.allclose(pooled[0], (context[0, 0] + context[0, 1]) / 2)
    assert torch.allclose(pooled[0], pooled[1])                      # tokens are a set: order does not matter
    assert torch.allclose(pooled[2], (context[2, 0] + 2 * context[2, 1]) / 3)
    assert torch.allclose(predictions(model, [[2, 3, PAD, PAD]]), predictions(model, [[3, 2, PAD, PAD]]), atol=1e-5)


def test_the_null_row_pools_to_the_null_embedding_so_guidance_keeps_its_unconditional_branch():
    model = tiny(True)
    tokens = model.denoiser.tokens
    context, mask = tokens(null_tokens(3, 4))
    null_embedding = tokens.norm(tokens.embed(torch.tensor([NULL])))[0]
    assert torch.allclose(pool_tokens(context, mask), null_embedding.expand(3, -1))
    # the dropped training rows and the sampler's unconditional rows are the same null rows, and the
    # unconditional prediction is that of the null token alone, whatever the row length
    short = predictions(model, null_tokens(1, 4).tolist())
    longer = model.denoiser(
        torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(7)), torch.full((1,), 40),
        null_tokens(1, 8)).detach()
    assert torch.allclose(short, longer, atol=1e-5)
    assert not torch.allclose(short, predictions(model, [[2, PAD, PAD, PAD]]), atol=1e-4)


def test_a_run_saved_without_the_field_loads_unchanged(base_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(base_run, old)
    text = (old / "config.yaml").read_text()
    (old / "config.yaml").write_text("".join(line for line in text.splitlines(keepends=True)
                                             if "prompt_to_time" not in line))
    assert "prompt_to_time" not in (old / "config.yaml").read_text()
    gen = load_generator(old)
    assert gen.cfg.objective.params.prompt_to_time is False and gen.step == 24
    weights = load_file(str(latest_checkpoint(old) / "model.safetensors"))
    assert not any(".class_embedding." in k for k in weights)
    assert all(torch.equal(v, weights[k]) for k, v in gen.objective.state_dict().items() if k in weights)


def test_an_interrupted_run_with_the_option_resumes_to_the_uninterrupted_weights(gen_data, tmp_path):
    dataset, vocab = gen_data
    objective = {"diffusion": {**TINY_DIFFUSION, "prompt_to_time": True}}
    cfg = tiny_config(objective=objective, loop={"epochs": 1, "checkpoint_every": 3})
    pretrain(dataset, vocab, tmp_path / "straight", cfg, DistEnv())
    stopped = tiny_config(objective=objective, loop={"epochs": 1, "checkpoint_every": 3, "max_steps": 3})
    pretrain(dataset, vocab, tmp_path / "resumed", stopped, DistEnv())
    pretrain(dataset, vocab, tmp_path / "resumed", cfg, DistEnv())
    a = load_file(str(latest_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "resumed") / "model.safetensors"))
    assert any(k.startswith(PROJECTION) for k in a) and int(a["updates"]) == 8
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_generator(tmp_path / "resumed").cfg.objective.params.prompt_to_time is True
