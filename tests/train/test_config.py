from pathlib import Path

import pytest

import tagsight.cli.methods  # noqa: F401  (every method registered, as the CLI does)
from tagsight.train.config import PretrainConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset", sorted((REPO / "configs").glob("pretrain_*.yaml")))
def test_presets_load_and_validate(preset):
    cfg = PretrainConfig.from_yaml(preset)
    expected = next((name for name in ("swav", "dino", "diffusion", "vae") if preset.name.startswith(f"pretrain_{name}")), "hashtag")
    assert cfg.objective.name == expected
    # The generator's recipe builds its own model at objective.diffusion.resolution (tests/generate/test_config.py).
    assert cfg.model.img_size >= 64 or expected == "diffusion"


def test_overrides_and_round_trip():
    cfg = PretrainConfig.from_yaml(None, ["model.name=resnet10t", "loop.max_steps=7", "data.sampling=none"])
    assert (cfg.model.name, cfg.loop.max_steps, cfg.data.sampling) == ("resnet10t", 7, "none")
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg
    assert PretrainConfig.from_dict(__import__("yaml").safe_load(cfg.to_yaml())) == cfg


@pytest.mark.parametrize("override, message", [("modle.name=x", "unknown config keys"),
                                               ("data.sampling=cubic", "data.sampling"),
                                               ("loop.epochs=0", "loop.epochs"), ("novalue", "key=value")])
def test_bad_configs_say_what_is_wrong(override, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig.from_yaml(None, [override])
