"""The flags every verb shares, added one way: ``--config``/``--set``, ``--json``, and hidden deprecated aliases.

The grammar they serve is in docs/cli.md: inputs positional, ``--out`` what the verb writes, ``--config FILE``
and ``--set KEY=VALUE`` on every verb whose behaviour is a dataclass config, ``--json`` on every verb that
reports a result (one JSON document on stdout; logs and progress go to stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("tagsight.cli")

C = TypeVar("C")

DEPRECATIONS = "_deprecations"    # the namespace attribute the hidden aliases append their warnings to


def add_config_options(parser: argparse.ArgumentParser, config: str, example: str,
                       preset: str | None = None) -> None:
    """``--config FILE`` and ``--set KEY=VALUE`` (repeatable) for the verb's dataclass ``config``."""
    where = f" (e.g. {preset})" if preset else ""
    parser.add_argument("--config", type=input_file, default=None, metavar="FILE",
                        help=f"YAML file (local or an fsspec URL) of {config} fields{where}; absent fields keep "
                             "their defaults")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one {config} field, value as YAML (repeatable; after --config and the "
                             f"flags), e.g. --set {example}")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: the verb's result as one JSON document on stdout instead of lines for people."""
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON document on stdout (logs go to stderr)")


class _Deprecated(argparse.Action):
    """A hidden old spelling: stores like the new flag and records a warning naming the new form."""

    def __init__(self, option_strings: list[str], dest: str, new: str, store: str = "store", **kwargs: Any) -> None:
        self.new, self.store = new, store
        if store == "store_true":
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.store == "append":
            values = [*(getattr(namespace, self.dest, None) or []), values]
        elif self.store == "store_true":
            values = True
        setattr(namespace, self.dest, values)
        note_deprecated(namespace, option_string or self.option_strings[0], self.new)


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str, store: str = "store",
                   **kwargs: Any) -> None:
    """Accept ``old`` as a hidden alias of the flag stored in ``dest``; using it warns with the ``new`` form."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, store=store, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def note_deprecated(args: argparse.Namespace, old: str, new: str) -> None:
    """Record that ``old`` was used; ``warn_deprecated`` logs it once logging is set up."""
    notes = getattr(args, DEPRECATIONS, None) or []
    notes.append(f"{old} is deprecated and will be removed: use {new}")
    setattr(args, DEPRECATIONS, notes)


def warn_deprecated(args: argparse.Namespace) -> None:
    for note in getattr(args, DEPRECATIONS, None) or []:
        log.warning(note)


def show_usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The ``func`` of a verb given without its action: print the verb's help, exit status 2."""
    def usage(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return usage


def resolve_config(load: Callable[[Path | None, list[str]], C], args: argparse.Namespace,
                   flags: Mapping[str, Any] | None = None) -> C:
    """The verb's config: defaults, then ``--config``, then the verb's own flags that were given (``flags``:
    field -> value, see ``given``), then ``--set``."""
    sets = [f"{name}={json.dumps(_plain(value))}" for name, value in dict(flags or {}).items()]
    return load(getattr(args, "config", None), [*sets, *getattr(args, "overrides", [])])


def config_from_args(cls: type[C], args: argparse.Namespace, flags: Mapping[str, Any] | None = None,
                     base: Mapping[str, Any] | None = None) -> C:
    """The dataclass ``cls`` of a verb: its defaults, then the verb's own defaults (``base``), then ``--config``,
    then the flags given, then ``--set``."""
    from tagsight.config import apply_override, from_mapping, load_mapping, source_of

    path, overrides = getattr(args, "config", None), list(getattr(args, "overrides", []))
    data = {**dict(base or {}), **load_mapping(path)}
    for item in [f"{name}={json.dumps(_plain(value))}" for name, value in dict(flags or {}).items()] + overrides:
        apply_override(data, item)
    return from_mapping(cls, data, source_of(path, overrides))


def given(**flags: Any) -> dict[str, Any]:
    """The flags that were given on the command line (argparse leaves the others None)."""
    return {name: value for name, value in flags.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def jsonable(result: Any) -> Any:
    """A verb's result as JSON-ready data: ``to_dict()`` when it has one, a dataclass as a dict, else itself;
    mapping keys as strings (a tuple key joined with ':')."""
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    return _string_keys(result)


def _string_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {(":".join(map(str, k)) if isinstance(k, tuple) else k if isinstance(k, str) else str(k)):
                _string_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_string_keys(v) for v in value]
    return value


def optional_path(text: str) -> Any:
    """argparse type of an optional positional path whose old spelling is a hidden flag (default SUPPRESS)."""
    from tagsight.storage import dataset_path

    return text if text == argparse.SUPPRESS else dataset_path(text)   # a local Path, or an fsspec URL as is


def emit(args: argparse.Namespace, result: Any, human: str | Callable[[], str]) -> None:
    """Print the result: one JSON document with ``--json``, else the lines for people."""
    if getattr(args, "json", False):
        print(json.dumps(jsonable(result), indent=1, default=str))
    else:
        print(human() if callable(human) else human)


def fail(verb: str, exc: BaseException) -> int:
    """One line on stderr naming the verb and the reason; exit status 2."""
    reason = getattr(exc, "reason", None) or "error"
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    print(f"tagsight {verb}: {reason}: {text}", file=sys.stderr)
    return 2


def format_fields(data: Mapping[str, Any], keys: Iterable[str] | None = None, width: int = 18) -> str:
    """A result mapping as aligned ``key  value`` lines for people (nested mappings as dotted keys, lists
    joined), never a Python or JSON dump."""
    rows: list[tuple[str, str]] = []
    _flatten(data if keys is None else {k: data[k] for k in keys if k in data}, "", rows)
    width = max([width, *(len(k) + 1 for k, _ in rows)]) if rows else width
    return "\n".join(f"{k:<{width}} {v}" for k, v in rows)


def _flatten(data: Mapping[str, Any], prefix: str, rows: list[tuple[str, str]]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            _flatten(value, f"{name}.", rows)
        else:
            rows.append((name, _text(value)))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_text(v) for v in value) if value else "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items()) if value else "none"
    return str(value)


def dataset_input(text: str) -> Path:
    """argparse type of a dataset a verb reads: a local folder as it is, or an fsspec URL mirrored into the local
    cache (``tagsight.storage.local_folder``; lineage records name the URL)."""
    from tagsight.fsio import ReasonError
    from tagsight.storage import dataset_path, local_folder

    try:
        return local_folder(dataset_path(text), marker="manifest.json")
    except (ReasonError, FileNotFoundError) as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None


def photos_input(text: str) -> Path:
    """argparse type of labelled photos a verb reads (class folders or a dataset): a local folder as it is, an fsspec
    URL mirrored into the local cache, shards included (``tagsight.storage.location`` names it by the URL)."""
    from tagsight.fsio import ReasonError
    from tagsight.storage import dataset_path, local_folder

    try:
        return local_folder(dataset_path(text))
    except (ReasonError, FileNotFoundError) as exc:
        raise argparse.ArgumentTypeError(f"{getattr(exc, 'reason', 'missing')}: {exc}") from None


def artifact_input(marker: str, what: str) -> Callable[[str], Path]:
    """argparse type of an artifact folder a verb reads (a scores folder, a study): a local folder as it is, an fsspec
    URL mirrored into the local cache (refused without its record file ``marker``: an upload in progress or cut off);
    ``tagsight.storage.location`` of the copy names the URL."""
    def parse(text: str) -> Path:
        from tagsight.fsio import ReasonError
        from tagsight.storage import dataset_path, local_folder

        try:
            return local_folder(dataset_path(text), marker=marker)
        except (ReasonError, FileNotFoundError) as exc:
            raise argparse.ArgumentTypeError(f"{getattr(exc, 'reason', 'missing')}: {exc}") from None

    parse.__name__ = what   # argparse names the type in its error message
    return parse


def input_file(text: str) -> Path | str:
    """argparse type of one file a verb reads (a config, a prompts file): a local ``Path``, or an fsspec URL as it is,
    read through fsspec (``tagsight.storage.read_bytes``)."""
    from tagsight.storage import dataset_path

    return dataset_path(text)


def local_cache_folder(text: str) -> Path:
    """argparse type of a feature or hash cache folder: local only. A cache is read and rewritten piece by piece by
    every run, which object storage cannot do in place, so a URL is refused (``cache_not_local``)."""
    from tagsight.storage import is_url

    if is_url(text):
        raise argparse.ArgumentTypeError(f"{text}: cache_not_local: a cache folder is a local folder (a cache is "
                                         "rewritten piece by piece on every run); give a local path")
    return Path(text.removeprefix("file://"))
