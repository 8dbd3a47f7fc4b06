"""VocabConfig validation and YAML loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsight.tags.config import VocabConfig

REPO = Path(__file__).resolve().parents[2]


def test_default_yaml_equals_the_dataclass_defaults() -> None:
    assert VocabConfig.from_yaml(REPO / "configs" / "vocab_default.yaml") == VocabConfig()


def test_yaml_overrides_only_given_keys(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("top_k: 10\nsampling: inverse\noverrides:\n  horn: french_horn.n.01\n")
    cfg = VocabConfig.from_yaml(path)
    assert (cfg.top_k, cfg.sampling, cfg.min_count) == (10, "inverse", VocabConfig().min_count)
    assert cfg.overrides == {"horn": "french_horn.n.01"}


@pytest.mark.parametrize("kwargs, message", [
    ({"top_k": 0}, "top_k must be an integer >= 1"),
    ({"min_count": 0}, "min_count must be an integer >= 1"),
    ({"min_count": None}, "min_count must be an integer >= 1"),
    ({"rollup_depth": -1}, "rollup_depth must be an integer >= 0"),
    ({"top_k": True}, "top_k must be an integer"),
    ({"sampling": "log"}, "sampling 'log' is not one of"),
    ({"visual_lexnames": ("noun.animal", "noun.animals")}, "noun.animals"),
    ({"stop_list": "love"}, "stop_list must be a list"),
    ({"stop_list": ("❤️",)}, "no letters or digits"),
    ({"overrides": {"dog": "dog"}}, "noun synset name like 'dog.n.01'"),
    ({"overrides": {"love": "love.n.01"}}, "both in stop_list and in overrides"),
    ({"visual_synsets": ("smile",)}, "not noun synset names"),
])
def test_invalid_values_are_rejected_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VocabConfig(**kwargs)


def test_unknown_yaml_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("topk: 10\n")
    with pytest.raises(ValueError, match="did you mean 'top_k'"):
        VocabConfig.from_yaml(path)


def test_to_dict_round_trips() -> None:
    cfg = VocabConfig(top_k=None, rollup_depth=3)
    assert VocabConfig.from_dict(cfg.to_dict()) == cfg
