"""One loader for every YAML config: nested frozen dataclasses from a mapping, dotted ``--set`` overrides.

A config is a (nested) frozen dataclass validated in its own ``__post_init__``; this module turns a YAML
file plus ``key=value`` overrides into one, the same way for every verb:

- unknown keys are refused with the known ones named (and a "did you mean"),
- a nested dataclass field is built from its mapping, or by the nested class's own ``from_dict``
  classmethod when it defines one (a config with its own layout, e.g. a method's parameters),
- ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]`` and ``list[X]`` fields are converted (a YAML list
  becomes a tuple), and plain ``int`` / ``float`` / ``str`` / ``bool`` values are type-checked,
- overrides are ``dotted.key=value`` with the value parsed as YAML (``--set loop.max_steps=100``),
- every error names the file (or ``--set``) and the dotted key: ``ConfigError`` (a ``ValueError``
  with reason ``bad_config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import yaml

from tagsight.fsio import ReasonError
from tagsight.storage import is_url, read_bytes

C = TypeVar("C")

_SCALARS: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURALS: dict[type, str] = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


class ConfigError(ReasonError):
    """A config that cannot be built: the message names the file (or ``--set``) and the dotted key."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_config", message)


def load_mapping(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The YAML mapping of ``path`` (empty without a path) with the ``key=value`` overrides applied."""
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(_read_text(path)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a YAML mapping, got {type(data).__name__}")
    mapping: dict[str, Any] = data
    for item in overrides:
        apply_override(mapping, item)
    return mapping


def _read_text(path: str | Path) -> str:
    """A config file's text: a local file, or an fsspec URL read through ``tagsight.storage``."""
    return read_bytes(path).decode("utf-8") if is_url(path) else Path(path).read_text(encoding="utf-8")


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to ``data`` in place (the value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: an override is key=value, e.g. loop.max_steps=100")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from None
    node = data
    *parents, leaf = key.split(".")
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {'.'.join(parents[:i + 1])} is a value, not a section")
    node[leaf] = value


def from_mapping(cls: type[C], data: Any, source: str = "config") -> C:
    """Build ``cls`` from a mapping; ``source`` (a file name or ``--set``) prefixes every error."""
    try:
        return build(cls, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{source}: {_message(exc)}") from None


def load_config(cls: type[C], path: str | Path | None, overrides: Iterable[str] = ()) -> C:
    """``cls`` from the YAML file ``path`` (None: the defaults) with the ``key=value`` overrides applied."""
    overrides = list(overrides)
    return from_mapping(cls, load_mapping(path, overrides), source_of(path, overrides))


def source_of(path: str | Path | None, overrides: Iterable[str] = ()) -> str:
    """How errors name where a config came from: ``FILE``, ``FILE with --set k=v`` or ``--set k=v``."""
    sets = " ".join(f"--set {o}" for o in overrides)
    return " with ".join(s for s in (str(path) if path else "", sets) if s) or "defaults"


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def build(cls: type[C], data: Any, prefix: str = "") -> C:
    """Build the dataclass ``cls`` from ``data``; ``prefix`` is the dotted key of ``data`` (``"loop."``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix[:-1] or 'the config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass config")
    fields = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    _refuse_unknown(cls, data, fields, prefix)
    kwargs = {name: convert(hints[name], value, f"{prefix}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        text = _message(exc)
        where = prefix[:-1]
        raise ConfigError(text if not where or where in text else f"{where}: {text}") from None


def _refuse_unknown(cls: type, data: Mapping[str, Any], fields: list[str], prefix: str) -> None:
    unknown = sorted(str(k) for k in data if k not in fields)
    if not unknown:
        return
    label = getattr(cls, "config_label", "config")
    close = difflib.get_close_matches(unknown[0], fields, n=1)
    hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
    raise ConfigError(f"unknown {label} keys {[prefix + k for k in unknown]}{hint} (known: {', '.join(fields)})")


def convert(hint: Any, value: Any, key: str) -> Any:
    """``value`` as the field type ``hint`` wants it (nested configs built, lists to tuples, scalars checked)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(args, value, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _convert_nested(hint, value, key)
    if origin in (tuple, list):
        return _convert_sequence(origin, args, value, key)
    if hint in _SCALARS:
        return _convert_scalar(hint, value, key)
    return value


def _convert_union(args: tuple[Any, ...], value: Any, key: str) -> Any:
    if value is None and type(None) in args:
        return None
    rest = [a for a in args if a is not type(None)]
    return convert(rest[0], value, key) if len(rest) == 1 else value


def _convert_nested(cls: type, value: Any, key: str) -> Any:
    own = _own_from_dict(cls)
    if own is None:
        return build(cls, value, f"{key}.")
    try:
        return own(value)
    except ConfigError as exc:
        raise ConfigError(str(exc) if key in str(exc) else f"{key}: {exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{key}: {_message(exc)}") from None


def _own_from_dict(cls: type) -> Any:
    """``cls.from_dict`` when ``cls`` defines its own (not ``YamlConfig``'s generic one), else None."""
    method = getattr(cls, "from_dict", None)
    if method is None or getattr(method, "__func__", None) is getattr(YamlConfig.from_dict, "__func__", None):
        return None
    return method


def _convert_sequence(origin: type, args: tuple[Any, ...], value: Any, key: str) -> Any:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        what = _PLURALS.get(args[0], "values") if args else "values"
        raise ConfigError(f"{key} must be a list of {what}, got {value!r}")
    items = list(value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}")
        converted = [convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, items))]
    else:
        item_type = args[0] if args else Any
        converted = [convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(items)]
    return tuple(converted) if origin is tuple else converted


def _convert_scalar(hint: type, value: Any, key: str) -> Any:
    if hint is float and isinstance(value, str):
        try:
            return float(value)         # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ConfigError(f"{key} must be {_SCALARS[hint]}, got {value!r}")
    return value


class YamlConfig:
    """Mixin of a frozen dataclass config: dict / YAML round trip with dotted ``key=value`` overrides."""

    def to_dict(self) -> dict[str, Any]:
        return dict(dataclasses.asdict(self))  # type: ignore[call-overload]  # a mixin: its subclasses are dataclasses

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return from_mapping(cls, d)

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Iterable[str] = ()) -> Self:
        return load_config(cls, path, overrides)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
