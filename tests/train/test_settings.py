"""The loop's and optimiser's settings are read and validated without the Trainer or torch's optimisers."""

from __future__ import annotations

import pytest

from tagsight.config import ConfigError, from_mapping
from tagsight.train.settings import LoopConfig, OptimConfig
from tests.serve.lean import loaded_modules

RUNNERS = ("torch.optim", "tagsight.train.loop", "tagsight.train.optim", "tagsight.train.checkpoint")
"""Modules that run training; the settings module must load none of them."""


def runners(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == r or m.startswith(r + ".") for r in RUNNERS)]


def test_reading_and_validating_the_settings_loads_no_loop_and_no_optimiser():
    modules = loaded_modules(
        "from tagsight.config import from_mapping\n"
        "from tagsight.train.settings import LoopConfig, OptimConfig\n"
        "loop = from_mapping(LoopConfig, {'epochs': 3, 'max_steps': 10})\n"
        "optim = from_mapping(OptimConfig, {'name': 'adamw', 'step_milestones': [0.5]})\n"
        "assert (loop.epochs, optim.name, optim.step_milestones) == (3, 'adamw', (0.5,))\n"
        "try:\n    OptimConfig(schedule='linear')\nexcept ValueError:\n    pass\n"
        "else:\n    raise SystemExit('not validated')\n")
    assert "tagsight.train.settings" in modules
    assert runners(modules) == [], f"the settings load {runners(modules)}"
    assert "torch" not in modules


def test_the_check_sees_the_loop_and_the_optimisers():   # the check itself can fail
    found = runners(loaded_modules("import tagsight.train.loop"))
    assert {"torch.optim", "tagsight.train.loop", "tagsight.train.optim"} <= set(found)


def test_the_settings_are_validated_at_construction():
    with pytest.raises(ValueError, match="loop.accumulate"):
        LoopConfig(accumulate=0)
    with pytest.raises(ValueError, match="loop.max_steps"):
        LoopConfig(max_steps=0)
    with pytest.raises(ValueError, match="loop.compile"):
        LoopConfig(compile="turbo")
    with pytest.raises(ValueError, match="optim.name"):
        OptimConfig(name="lamb")
    with pytest.raises(ConfigError, match="did you mean"):
        from_mapping(OptimConfig, {"base_rl": 0.2})


def test_a_known_compile_backend_is_accepted():
    assert LoopConfig(compile="eager").compile == "eager"
