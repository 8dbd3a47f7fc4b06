"""tagsight.config: one YAML + --set loader for every dataclass config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tagsight.config import ConfigError, YamlConfig, load_config, load_mapping


@dataclass(frozen=True)
class Inner:
    steps: int = 1
    rate: float = 0.5
    name: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@dataclass(frozen=True)
class Custom:
    """A nested config with its own layout: built by its own from_dict."""

    words: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: object) -> Custom:
        if isinstance(d, str):
            return cls(tuple(d.split()))
        raise ValueError(f"custom must be a sentence, got {d!r}")


@dataclass(frozen=True)
class Outer(YamlConfig):
    inner: Inner = field(default_factory=Inner)
    custom: Custom = field(default_factory=Custom)
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] = (0.0, 1.0)
    tags: list[str] = field(default_factory=list)
    flag: bool = False


def test_yaml_and_overrides_build_the_nested_tree(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inner: {steps: 3, rate: 1e-4}\nsizes: [4, 5]\ncustom: a b c\n")
    cfg = Outer.from_yaml(path, ["inner.name=x", "pair=[0.2, 0.9]", "tags=[dog]", "flag=true"])
    assert cfg.inner == Inner(3, 1e-4, "x")          # 1e-4 (a string in YAML 1.1) read as a number
    assert cfg.sizes == (4, 5) and cfg.pair == (0.2, 0.9) and cfg.tags == ["dog"] and cfg.flag is True
    assert cfg.custom == Custom(("a", "b", "c"))     # the nested class's own from_dict was used
    assert Outer.from_yaml(None, ["inner.name=null"]).inner.name is None


def test_round_trip_through_dict_and_yaml() -> None:
    cfg = Outer.from_yaml(None, ["inner.steps=7", "sizes=[9]"])
    assert Outer.from_dict({**cfg.to_dict(), "custom": "w"}).inner == cfg.inner
    import yaml

    data = yaml.safe_load(cfg.to_yaml())
    data["custom"] = ""
    assert Outer.from_dict(data).sizes == (9,)


@pytest.mark.parametrize("overrides, message", [
    (["inner.stepz=2"], r"--set inner.stepz=2: unknown config keys \['inner.stepz'\]; did you mean 'inner.steps'"),
    (["inner.steps=0"], r"--set inner.steps=0: inner: steps must be >= 1"),
    (["inner.steps=two"], r"inner.steps must be an integer, got 'two'"),
    (["inner.steps=true"], r"inner.steps must be an integer, got True"),
    (["sizes=3"], r"sizes must be a list of integers"),
    (["sizes=[1, x]"], r"sizes\[1\] must be an integer"),
    (["pair=[1]"], r"pair must be a list of 2 values"),
    (["custom=[1]"], r"custom: custom must be a sentence"),
    (["flag=maybe"], r"flag must be true or false"),
    (["inner=3"], r"inner must be a mapping"),
    (["novalue"], r"an override is key=value"),
    (["inner.steps=1", "inner.steps.deep=1"], r"inner.steps is a value, not a section"),
])
def test_bad_overrides_name_the_dotted_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(Outer, None, overrides)
    assert info.value.reason == "bad_config"


def test_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("inner:\n  steps: 0\n")
    with pytest.raises(ConfigError, match=rf"{path}: inner: steps must be >= 1"):
        Outer.from_yaml(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_mapping(path)
    path.write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_mapping(path)


def test_every_yaml_config_of_the_product_uses_the_loader(tmp_path: Path) -> None:
    from tagsight.curate.chain import CurateConfig
    from tagsight.eval.finetune import FinetuneConfig
    from tagsight.generate.tune import TuneConfig
    from tagsight.privacy.policy import ConsentPolicy
    from tagsight.tags.config import VocabConfig
    from tagsight.train.config import PretrainConfig

    cases = [(PretrainConfig, "loop.max_stepz=1", "loop.max_steps"), (FinetuneConfig, "optim.base_lrr=1", "optim.base_lr"),
             (TuneConfig, "max_step=1", "max_steps"), (CurateConfig, "keep_topp=1", "keep_top"),
             (ConsentPolicy, "blur_face=true", "blur_faces"), (VocabConfig, "top_kk=3", "top_k")]
    for cls, override, right in cases:
        with pytest.raises(ConfigError, match=f"did you mean '{right}'"):
            cls.from_yaml(None, [override])
    assert CurateConfig.from_yaml(None, ["filters=[blur, {name: exposure}]", "keep_top=4"]).keep_top == 4
    assert ConsentPolicy.from_yaml(None, ["allowed_visibility=[public, unlisted]"]).allowed_visibility == \
        ("public", "unlisted")
    assert VocabConfig.from_yaml(None, ["top_k=null"]).top_k is None
