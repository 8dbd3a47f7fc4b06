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
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        import_module(f"tagsight.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
