"""The engine options of the data-stage verbs: ``--engine local|ray`` and ``--ray-address`` (docs/scale.md)."""

from __future__ import annotations

import argparse

from tagsight.engines import ENGINES, EngineConfig


def add_engine_options(parser: argparse.ArgumentParser, blocks: str = "the blocks",
                       local: str = "a process pool of --workers processes on this machine") -> None:
    """Add ``--engine`` and ``--ray-address`` to a verb whose blocks an engine runs; ``blocks`` says what runs by
    blocks, ``local`` what the local engine is for this verb."""
    group = parser.add_argument_group("engine (docs/scale.md)")
    group.add_argument("--engine", default="local", choices=ENGINES.names(),
                       help=f"what runs {blocks}: local ({local}; the default) or ray (Ray tasks; a worker that "
                            "dies has its block retried); the output is the same bytes")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="with --engine ray: the cluster to join ('auto' for the one `ray start` runs here, "
                            "'HOST:6379', 'ray://HOST:10001'); default: start a local Ray for the run")


def engine_config(args: argparse.Namespace, workers: int = 0) -> EngineConfig:
    """The EngineConfig of the parsed options; ValueError when ``--ray-address`` comes without ``--engine ray``."""
    if args.ray_address and args.engine != "ray":
        raise ValueError("--ray-address: only with --engine ray")
    return EngineConfig(name=args.engine, workers=workers, address=args.ray_address or None)
