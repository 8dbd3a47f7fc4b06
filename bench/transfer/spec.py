"""The experiment file: inputs (built by commands when missing), a shared budget, the evaluation, and arms.

An arm is data: ``name``, ``title``, ``kind`` (``random`` | ``pretrain`` | ``reference``) and, for
``pretrain`` arms, the ``dataset`` and ``vocab`` (names of inputs), the ``objective`` and extra
``set`` overrides; ``planned: true`` lists the arm in the table without running it by default.
Templates (input paths, commands) use ``{work}``, ``{data}``, ``{repo}``, ``{python}`` and the
names of other inputs; a command whose first word is ``{tagsight}`` runs ``python -m tagsight.cli``.
"""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from tagsight.fsio import ReasonError
from tagsight.train.config import PretrainConfig

KINDS = ("random", "pretrain", "reference")
METHODS = ("linear", "knn")
BUILTINS = ("work", "data", "repo", "python")
TAGSIGHT = "{tagsight}"
# What "the same compute budget" means: every pretrain arm must resolve to the same values of these.
BUDGET_KEYS = ("model.name", "model.img_size", "samples_seen", "data.batch_size", "loop.accumulate",
               "loop.epochs", "data.epoch_length", "optim.schedule", "optim.warmup_fraction")


class SpecError(ReasonError):
    """A bad experiment file or command line, with a reason code."""


def referenced_names(template: str) -> list[str]:
    """Placeholder names used in a ``str.format`` template (``"{work}/x/{si}"`` -> ``["work", "si"]``)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as exc:
        raise SpecError("bad_template", f"bad template {template!r}: {exc}") from None


def expand(template: str, values: Mapping[str, str]) -> str:
    """Fill a template; SpecError naming the unknown placeholder."""
    missing = [n for n in referenced_names(template) if n not in values]
    if missing:
        raise SpecError("unknown_placeholder", f"{template!r} uses {missing}; known: {sorted(values)}")
    return template.format_map(dict(values))


@dataclass(frozen=True)
class InputSpec:
    """A folder an arm trains on: given on the command line, or built by ``run`` until ``done`` exists."""

    name: str
    path: str
    done: str = ""
    run: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name in BUILTINS:
            raise SpecError("bad_input", f"input name {self.name!r} must be an identifier other than {BUILTINS}")
        if not self.path:
            raise SpecError("bad_input", f"input {self.name!r} needs a path")

    def needs(self) -> list[str]:
        """Other inputs this one's templates refer to (built first)."""
        texts = [self.path, self.done, *(w for cmd in self.run for w in cmd)]
        return sorted({n for t in texts for n in referenced_names(t)} - set(BUILTINS) - {"tagsight", self.name})


@dataclass(frozen=True)
class EvalSpec:
    """Where and how every arm's frozen features are scored."""

    train: str
    val: str
    img_size: int = 64
    methods: tuple[str, ...] = METHODS
    set: tuple[str, ...] = ()    # extra CLI arguments for every `tagsight eval` call

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise SpecError("bad_eval", f"eval.methods must be a non-empty subset of {METHODS}, got {list(self.methods)}")
        if self.img_size < 16:
            raise SpecError("bad_eval", f"eval.img_size must be >= 16, got {self.img_size}")


@dataclass(frozen=True)
class ArmSpec:
    """One arm of the experiment (see the module docstring)."""

    name: str
    kind: str
    title: str = ""
    dataset: str = ""
    vocab: str = ""
    objective: str = "hashtag"
    set: tuple[str, ...] = ()
    backbone: str = ""           # reference arms: a `tagsight eval` backbone spec
    seeded: bool = True          # False: one run whatever --seeds says (seed 0)
    planned: bool = False        # listed in the table, run only when named in --arms
    img_size: int | None = None  # evaluation size, default eval.img_size
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise SpecError("bad_arm", f"arm name {self.name!r} must be non-empty letters, digits, '-' or '_'")
        if self.kind not in KINDS:
            raise SpecError("bad_arm", f"arm {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "pretrain" and not self.planned and not (self.dataset and self.vocab):
            raise SpecError("bad_arm", f"pretrain arm {self.name!r} needs 'dataset' and 'vocab' (input names)")
        if self.kind == "reference" and not self.backbone:
            raise SpecError("bad_arm", f"reference arm {self.name!r} needs 'backbone' (e.g. efficientnet-lite0)")
        if self.kind != "pretrain" and (self.dataset or self.vocab or self.set):
            raise SpecError("bad_arm", f"{self.kind} arm {self.name!r} takes no dataset, vocab or set")
        for item in self.set:
            if "=" not in item:
                raise SpecError("bad_arm", f"arm {self.name!r}: override {item!r} is not key=value")

    def seeds(self, seeds: Sequence[int]) -> list[int]:
        return list(seeds) if self.seeded else [0]

    @property
    def label(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class Experiment:
    """The whole experiment file."""

    name: str
    preset: str                  # the pretraining preset every pretrain arm starts from (repo-relative)
    eval: EvalSpec
    arms: tuple[ArmSpec, ...]
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    set: tuple[str, ...] = ()    # overrides applied to every pretrain arm (the shared budget)
    classes: str = ""            # optional template: a noise_model.json whose classes give "class mAP"
    title: str = ""

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError("duplicate_arm", f"arm names must be unique, repeated: {dupes}")
        if not self.arms:
            raise SpecError("no_arms", "the experiment lists no arms")
        for arm in self.arms:
            for ref in (arm.dataset, arm.vocab):
                if ref and not arm.planned and ref not in self.inputs:
                    raise SpecError("unknown_input", f"arm {arm.name!r} names input {ref!r}; inputs: {sorted(self.inputs)}")

    def arm(self, name: str) -> ArmSpec:
        for a in self.arms:
            if a.name == name:
                return a
        raise SpecError("unknown_arm", f"no arm {name!r}; arms: {[a.name for a in self.arms]}")

    def select(self, names: Sequence[str] | None) -> list[ArmSpec]:
        """The arms to run: the named ones (in file order), else every arm not ``planned``."""
        if not names:
            return [a for a in self.arms if not a.planned]
        wanted = {self.arm(n).name for n in names}
        return [a for a in self.arms if a.name in wanted]


def _tuple(value: Any, what: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SpecError("bad_spec", f"{what} must be a list, got {value!r}")
    return tuple(value)


def _make(cls, data: Any, what: str, **extra: Any):
    if not isinstance(data, Mapping):
        raise SpecError("bad_spec", f"{what} must be a mapping, got {data!r}")
    known = set(cls.__dataclass_fields__) - set(extra)
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError("bad_spec", f"{what}: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return cls(**{**data, **extra})
    except TypeError as exc:
        raise SpecError("bad_spec", f"{what}: {exc}") from None


def parse_input(name: str, data: Any) -> InputSpec:
    if isinstance(data, str):
        data = {"path": data}
    if not isinstance(data, Mapping):
        raise SpecError("bad_input", f"input {name!r} must be a path or a mapping")
    commands = tuple(tuple(str(w) for w in _tuple(cmd, f"inputs.{name}.run[]")) for cmd in _tuple(data.get("run"), f"inputs.{name}.run"))
    return _make(InputSpec, {**data, "run": commands}, f"inputs.{name}", name=name)


def parse_experiment(data: Any) -> Experiment:
    """An Experiment from the parsed YAML mapping; SpecError with a reason code on anything wrong."""
    if not isinstance(data, Mapping):
        raise SpecError("bad_spec", "the experiment file must hold a mapping")
    for key in ("name", "preset", "eval", "arms"):
        if key not in data:
            raise SpecError("bad_spec", f"the experiment file needs {key!r}")
    ev = dict(data["eval"]) if isinstance(data["eval"], Mapping) else data["eval"]
    if isinstance(ev, dict):
        ev["methods"] = _tuple(ev.get("methods", METHODS), "eval.methods")
        ev["set"] = tuple(str(x) for x in _tuple(ev.get("set"), "eval.set"))
    arms = []
    for i, raw in enumerate(_tuple(data["arms"], "arms")):
        raw = dict(raw) if isinstance(raw, Mapping) else raw
        if isinstance(raw, dict):
            raw["set"] = tuple(str(x) for x in _tuple(raw.get("set"), f"arms[{i}].set"))
        arms.append(_make(ArmSpec, raw, f"arms[{i}]"))
    inputs = {str(k): parse_input(str(k), v) for k, v in (data.get("inputs") or {}).items()}
    rest = {k: v for k, v in data.items() if k not in ("eval", "arms", "inputs", "set")}
    return _make(Experiment, rest, "experiment", eval=_make(EvalSpec, ev, "eval"), arms=tuple(arms),
                 inputs=inputs, set=tuple(str(x) for x in _tuple(data.get("set"), "set")))


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise SpecError("spec_missing", f"experiment file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError("bad_yaml", f"{path}: {exc}") from None
    return parse_experiment(data)


# ------------------------------------------------------------------ the pretraining config of an arm


def arm_overrides(exp: Experiment, arm: ArmSpec, seed: int) -> list[str]:
    """``--set`` values of a pretrain arm at a seed: the shared ones, then the arm's, then the seed."""
    return [*exp.set, *arm.set, f"seed={seed}"]


def resolve_config(exp: Experiment, arm: ArmSpec, seed: int, repo: Path) -> PretrainConfig:
    """The PretrainConfig ``tagsight pretrain`` will resolve for this arm (to check the budget)."""
    try:
        return PretrainConfig.from_yaml(repo / exp.preset, [f"objective.name={arm.objective}",
                                                           *arm_overrides(exp, arm, seed)])
    except (OSError, ValueError, TypeError) as exc:
        raise SpecError("bad_config", f"arm {arm.name!r}: {exc}") from None


def budget(cfg: PretrainConfig, world_size: int = 1) -> dict[str, Any]:
    """The compute budget of a config: the values of BUDGET_KEYS (samples seen = optimiser steps x global batch)."""
    per_step = cfg.data.batch_size * cfg.loop.accumulate * world_size
    total_steps = (cfg.data.epoch_length * cfg.loop.epochs) // per_step
    steps = total_steps if cfg.loop.max_steps is None else min(cfg.loop.max_steps, total_steps)
    flat = {"samples_seen": steps * per_step}
    for key in BUDGET_KEYS:
        if key != "samples_seen":
            section, leaf = key.split(".")
            flat[key] = getattr(getattr(cfg, section), leaf)
    return {k: flat[k] for k in BUDGET_KEYS}


def check_budgets(exp: Experiment, arms: Sequence[ArmSpec], repo: Path) -> dict[str, Any] | None:
    """The one budget every non-planned pretrain arm shares (None without such arms); SpecError when they differ."""
    budgets = {a.name: budget(resolve_config(exp, a, 0, repo)) for a in arms if a.kind == "pretrain"}
    if not budgets:
        return None
    first_name, first = next(iter(budgets.items()))
    for name, b in budgets.items():
        diff = {k: (first[k], b[k]) for k in BUDGET_KEYS if b[k] != first[k]}
        if diff:
            raise SpecError("budget_mismatch", f"arm {name!r} has another compute budget than {first_name!r}: {diff}")
    return first


def backbone_model(exp: Experiment, repo: Path) -> tuple[str, int]:
    """The preset's (timm model, image size): the random arm's architecture."""
    cfg = PretrainConfig.from_yaml(repo / exp.preset, list(exp.set))
    return cfg.model.name, cfg.model.img_size


def tagsight_command(words: Sequence[str]) -> list[str]:
    """A command whose first word is ``{tagsight}`` runs as ``python -m tagsight.cli``."""
    words = list(words)
    return [sys.executable, "-m", "tagsight.cli", *words[1:]] if words and words[0] == TAGSIGHT else words
