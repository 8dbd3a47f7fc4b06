"""One registry of methods; ``objective`` in a config is a method's name plus its own settings."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

import tagsight.cli.methods  # noqa: F401  (every method registered, as the CLI does)
from tagsight.generate.config import DiffusionConfig
from tagsight.methods import METHODS, Method, Objective
from tagsight.methods.dino import DinoConfig
from tagsight.methods.hashtag import HashtagConfig
from tagsight.methods.swav import SwavConfig
from tagsight.models.backbone import create_backbone
from tagsight.train.config import ObjectiveConfig, PretrainConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "tagsight"
CONFIGS = {"hashtag": HashtagConfig, "swav": SwavConfig, "dino": DinoConfig, "diffusion": DiffusionConfig}


def test_every_method_is_registered_with_a_frozen_validated_config_class():
    assert set(METHODS.names()) >= set(CONFIGS)
    for name, config_class in CONFIGS.items():
        method = METHODS.create(name)
        assert isinstance(method, Method) and method.name == name and method.config_class is config_class
        assert dataclasses.is_dataclass(config_class) and config_class.__dataclass_params__.frozen
    with pytest.raises(ValueError):
        SwavConfig(epsilon=0)


def test_the_new_form_is_a_name_and_that_methods_settings():
    cfg = PretrainConfig.from_dict({"objective": {"name": "swav", "epsilon": 0.07, "prototypes": 50}})
    assert cfg.objective.params == SwavConfig(epsilon=0.07, prototypes=50)
    written = yaml.safe_load(cfg.to_yaml())["objective"]
    assert written == {"name": "swav", **dataclasses.asdict(SwavConfig(epsilon=0.07, prototypes=50))}
    assert PretrainConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert PretrainConfig().objective.params == HashtagConfig()      # no name: the default method, its defaults


def test_unknown_settings_are_refused_naming_the_methods_own():
    with pytest.raises(ValueError, match=r"objective.epsilom.*'swav'.*'epsilon'"):
        PretrainConfig.from_yaml(None, ["objective.name=swav", "objective.epsilom=0.1"])
    with pytest.raises(ValueError, match="did you mean 'swav'"):
        PretrainConfig.from_yaml(None, ["objective.name=swva"])
    with pytest.raises(ValueError, match="objective.loss must be one of"):
        PretrainConfig.from_yaml(None, ["objective.loss=hinge"])


def test_the_nested_form_of_earlier_versions_is_an_alias():
    nested = PretrainConfig.from_yaml(None, ["objective.name=swav", "objective.swav.epsilon=0.03"])
    flat = PretrainConfig.from_yaml(None, ["objective.name=swav", "objective.epsilon=0.03"])
    assert nested == flat and nested.objective.params.epsilon == 0.03
    assert nested.objective.swav.epsilon == 0.03                   # attribute alias of the settings
    assert PretrainConfig().objective.loss == "softmax"
    with pytest.raises(AttributeError, match="no setting 'dino'"):
        _ = nested.objective.dino


@pytest.mark.parametrize("form", ["objective.swav.epsilon", "objective.epsilon"])
def test_an_override_in_either_form_beats_the_file_in_either_form(tmp_path, form):
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    new.write_text("objective: {name: swav, epsilon: 0.02, prototypes: 100}\n")
    old.write_text("objective: {name: swav, swav: {epsilon: 0.02, prototypes: 100}}\n")
    for path in (new, old):
        cfg = PretrainConfig.from_yaml(path, [f"{form}=0.07"])
        assert cfg.objective.params == SwavConfig(epsilon=0.07, prototypes=100)


def _saved_by_an_earlier_version(name: str, **own: dict) -> dict:
    """The objective section every earlier config.yaml held: name, hashtag's loss, every method's section."""
    sections = {"swav": SwavConfig(), "dino": DinoConfig(), "diffusion": DiffusionConfig()}
    old = {"name": name, "loss": "softmax", **{k: dataclasses.asdict(v) for k, v in sections.items()}}
    for key, value in own.items():
        old[key] = {**old[key], **value} if isinstance(value, dict) else value
    return yaml.safe_load(yaml.safe_dump({"objective": old}))["objective"]      # as read back from the file


@pytest.mark.parametrize("name, own, expected", [
    ("hashtag", {"loss": "bce"}, HashtagConfig(loss="bce")),
    ("swav", {"swav": {"epsilon": 0.02, "prototypes": 100}}, SwavConfig(epsilon=0.02, prototypes=100)),
    ("dino", {"dino": {"out_dim": 64}}, DinoConfig(out_dim=64)),
    ("diffusion", {"diffusion": {"resolution": 16, "widths": [32, 64]}},
     DiffusionConfig(resolution=16, widths=(32, 64), attention=(False, True))),
])
def test_saved_configs_of_earlier_versions_still_load(name, own, expected):
    if name == "diffusion":
        own["diffusion"]["attention"] = [False, True]
    cfg = ObjectiveConfig.from_dict(_saved_by_an_earlier_version(name, **own))
    assert (cfg.name, cfg.params) == (name, expected)


@pytest.mark.parametrize("old, message", [
    (_saved_by_an_earlier_version("hashtag", swav={"epsilon": 0.3}), r"objective.swav sets 'swav' settings but the objective is 'hashtag'"),
    (_saved_by_an_earlier_version("swav", loss="bce"), r"objective.loss is a setting of the 'hashtag' method"),
    ({"name": "hashtag", "loss": "softmax", "swav": "x"}, r"unknown config keys \['objective.swav'\]"),
])
def test_other_methods_settings_are_refused_unless_at_their_defaults(old, message):
    with pytest.raises(ValueError, match=message):
        ObjectiveConfig.from_dict(old)


def test_settings_of_another_methods_class_are_refused():
    with pytest.raises(TypeError, match="takes SwavConfig"):
        ObjectiveConfig("swav", DinoConfig())


class _Counter(Objective):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = create_backbone("test_vit", img_size=32)
        self.steps = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.backbone(batch["image"]).sum()}

    def after_step(self) -> None:
        self.steps += 1


def test_an_objective_declares_its_hooks():
    obj = _Counter()
    assert obj.data_config == obj.backbone.data_config      # by default its backbone's input
    obj.after_step()
    assert obj.steps == 1


def _imports_and_strings(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return modules, strings


@pytest.mark.parametrize("path", sorted((SRC / "train").glob("*.py")), ids=lambda p: p.name)
def test_train_names_no_method(path):
    modules, strings = _imports_and_strings(path)
    assert not {m for m in modules if m.startswith("tagsight.methods.") and m != "tagsight.methods.base"}
    assert not {m for m in modules if m.startswith(("tagsight.generate", "tagsight.eval"))}
    assert not strings & set(CONFIGS)
