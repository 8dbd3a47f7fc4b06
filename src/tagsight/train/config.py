"""The pretraining config: one dataclass tree, the single source of defaults, YAML presets, dotted overrides
(loaded by tagsight.config)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tagsight.config import YamlConfig, build
from tagsight.data.multicrop import MultiCropConfig
from tagsight.data.views import SELECTIONS
from tagsight.methods.base import DEFAULT_METHOD, METHODS, method_of
from tagsight.models.pretrained import check_init
from tagsight.train.settings import LoopConfig, OptimConfig

SAMPLINGS = ("sqrt", "inverse", "none")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet18"
    img_size: int = 64
    init: str = "random"        # or "efficientnet-lite0": start from the packaged ImageNet weights (tagsight.models.pretrained)

    def __post_init__(self) -> None:
        if self.img_size < 16:
            raise ValueError(f"model.img_size must be >= 16, got {self.img_size}")
        check_init(self.name, self.init)


@dataclass(frozen=True)
class ObjectiveConfig:
    """The training method (``name``, registered in ``tagsight.methods.METHODS``) and its settings.

    ``params`` is an instance of the method's own config class (its defaults when not given). In YAML the
    settings sit next to the name: ``objective: {name: swav, epsilon: 0.05}``. The nested form of earlier
    versions (``objective: {name: swav, swav: {epsilon: 0.05}}``, ``objective.loss`` for hashtag) is read as
    an alias: see ``from_dict``. ``objective.<method name>`` and ``objective.<setting>`` read the settings too.
    """

    name: str = DEFAULT_METHOD
    params: Any = None

    def __post_init__(self) -> None:
        config_class = method_of(self.name).config_class
        if self.params is None:
            object.__setattr__(self, "params", config_class())
        elif not isinstance(self.params, config_class):
            raise TypeError(f"objective {self.name!r} takes {config_class.__name__} settings, "
                            f"got {type(self.params).__name__}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], prefix: str = "objective.") -> ObjectiveConfig:
        """``{name, <settings>...}``, also in the nested form of earlier versions (see ``objective_settings``)."""
        if not isinstance(d, dict):
            raise ValueError(f"{prefix.rstrip('.')} must be a mapping, got {d!r}")
        name = d.get("name", DEFAULT_METHOD)
        config_class = method_of(name).config_class
        settings = objective_settings(name, {k: v for k, v in d.items() if k != "name"}, prefix)
        return cls(name, build(config_class, settings, prefix))

    def to_dict(self) -> dict[str, Any]:
        """The new form: ``{"name": ..., <every setting of the method>}``."""
        return {"name": self.name, **dataclasses.asdict(self.params)}

    def __getattr__(self, key: str) -> Any:
        """``objective.<method name>`` is the settings, ``objective.<setting>`` one setting (the nested form)."""
        fields = self.__dict__
        if key.startswith("__") or "params" not in fields:
            raise AttributeError(key)
        if key == fields["name"]:
            return fields["params"]
        if key in _field_names(type(fields["params"])):
            return getattr(fields["params"], key)
        raise AttributeError(f"objective {fields['name']!r} has no setting {key!r} "
                             f"(its settings: {sorted(_field_names(type(fields['params'])))})")


def _field_names(config_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def objective_settings(name: str, given: dict[str, Any], prefix: str = "objective.") -> dict[str, Any]:
    """Method ``name``'s settings from an objective mapping in the new or the earlier nested form.

    Keys that are settings of ``name`` are taken as they are; a section named after the method
    (``swav: {...}`` for swav) is merged in; when both give a setting, the later key wins (``--set`` adds
    its key after the file's, so an override in either form beats the file in either form). Sections and
    settings of *other* registered methods (every saved config.yaml of earlier versions holds all of them)
    are accepted only when they equal that method's defaults: anything else would be silently unused, so
    it is refused. Other keys are refused naming the method's settings.
    """
    own = _field_names(method_of(name).config_class)
    settings: dict[str, Any] = {}
    for key, value in given.items():
        if key == name and isinstance(value, dict):
            found = value
        elif key in own:
            found = {key: value}
        else:
            _check_foreign(name, key, value, own, prefix)
            continue
        settings.update(found)      # the later wins: a --set in either form overrides the file's value
    return settings


def _check_foreign(name: str, key: str, value: Any, own: set[str], prefix: str) -> None:
    """Accept ``key`` (not a setting of ``name``) only as another method's section or setting at its default."""
    for other, factory in METHODS.items():
        if other == name:
            continue
        config_class = factory().config_class
        if key == other and isinstance(value, dict):
            if build(config_class, value, f"{prefix}{key}.") == config_class():
                return
            raise ValueError(f"{prefix}{key} sets {other!r} settings but the objective is {name!r}; set "
                             f"objective.name: {other}, or remove the section")
        if key in _field_names(config_class):
            if getattr(config_class(), key) == value:
                return
            raise ValueError(f"{prefix}{key} is a setting of the {other!r} method but the objective is {name!r} "
                             f"(its settings: {sorted(own)})")
    raise ValueError(f"unknown config keys ['{prefix}{key}'] for objective {name!r}; known: {['name', *sorted(own)]}")


@dataclass(frozen=True)
class DataSettings:
    epoch_length: int = 2048        # samples drawn per epoch, over all ranks
    batch_size: int = 64            # per rank, per micro-batch
    sampling: str = "sqrt"
    holdout_fraction: float = 0.1
    workers: int = 2
    select: str = "all"             # label-free objectives: "all" posts of the split, or "labelled" ones only
    multicrop: MultiCropConfig = field(default_factory=MultiCropConfig)   # swav and dino only

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise ValueError(f"data.select must be one of {SELECTIONS}, got {self.select!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"data.sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"data.holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.epoch_length < 1 or self.batch_size < 1 or self.workers < 0:
            raise ValueError("data.epoch_length and data.batch_size must be >= 1, data.workers >= 0")


@dataclass(frozen=True)
class PretrainConfig(YamlConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As the dataclasses, with ``objective`` in its new form (the method's name and settings side by side)."""
        return {**super().to_dict(), "objective": self.objective.to_dict()}
