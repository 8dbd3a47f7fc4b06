"""The ``tagsight`` console script: one verb per module in this package, each a thin call into the library."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

# Each module has ``register(subparsers)`` adding its verb(s) with ``set_defaults(func=...)``.
VERB_MODULES = ("setup", "ingest", "vocab", "datasets", "pretrain", "eval", "report", "relevance", "apps", "heads",
                "index", "predict", "export", "serve", "curate", "forget", "lineage", "card", "demo", "judge",
                "generate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagsight",
        description="Turn photo collections with hashtags into visual models, with consent built in.",
    )
    from tagsight import __version__

    parser.add_argument("--version", action="version", version=f"tagsight {__version__}",
                        help="print the version and exit")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        import_module(f"tagsight.cli.{name}").register(sub)
    for verb in _all_subparsers(parser):   # -q / -v after the verb too: `tagsight ingest SRC --out D -q`
        _add_verbosity(verb, argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every verb's and sub-verb's parser below ``parser``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += [child, *_all_subparsers(child)]
    return found


def main(argv: list[str] | None = None) -> int:
    from tagsight.cli.options import warn_deprecated

    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    warn_deprecated(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
