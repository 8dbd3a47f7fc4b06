"""``tagsight predict BUNDLE PHOTOS... --app NAME [--out-format jsonl|csv] [--out FILE]``: offline batch answers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tagsight.cli.options import add_deprecated
from tagsight.storage import dataset_path
from tagsight.cli.engine import add_engine_options, engine_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("predict", help="run apps of a bundle on image files or folders, offline (JSONL or CSV)",
                       description="One row per image and app. Folders are searched recursively for images. An "
                                   "image that cannot be read gets a row with its error reason (never skipped). "
                                   "Several --app share one backbone pass.")
    p.add_argument("paths", nargs="+", type=dataset_path, metavar="BUNDLE PHOTOS",
                   help="the bundle (or run) folder, then image files or folders")
    p.add_argument("--app", action="append", required=True, help="app name (repeatable): hashtags, alt-text, "
                                                                 "similar, or a head's name")
    add_deprecated(p, "--bundle", "tagsight predict BUNDLE PHOTOS...", dest="bundle", type=dataset_path)
    p.add_argument("--out-format", dest="format", choices=("jsonl", "csv"), default="jsonl",
                   help="format of the answers: one JSON object per photo (default) or CSV rows")
    add_deprecated(p, "--format", "--out-format", dest="format", choices=("jsonl", "csv"))
    p.add_argument("--out", type=dataset_path, default=None, help="file of answers to write, a path or an fsspec "
                   "URL (default: standard output)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a per-request option for every app given (e.g. k=3, threshold=0.5)")
    p.add_argument("--batch-size", type=int, default=32, help="photos per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_engine_options(p, "the files, by blocks of 8 batches (each block loads the bundle)", "in this process")
    p.set_defaults(func=run)


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def bundle_and_photos(args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """BUNDLE PHOTOS... (or, with the old --bundle, every path a photo)."""
    from tagsight.fsio import ReasonError

    bundle = getattr(args, "bundle", None)
    if bundle is not None:
        return bundle, list(args.paths)
    if len(args.paths) < 2:
        raise ReasonError("missing_photos", "give the BUNDLE, then the photos: tagsight predict BUNDLE PHOTOS...")
    return args.paths[0], list(args.paths[1:])


def run(args: argparse.Namespace) -> int:
    from tagsight.apps.predict import PredictConfig, predict_files
    from tagsight.engines import EngineError, create_engine
    from tagsight.fsio import ReasonError

    try:
        cfg = PredictConfig(apps=tuple(args.app), format=args.format, batch_size=args.batch_size,
                            options=_options(args.option), device=args.device)
        bundle, photos = bundle_and_photos(args)
        if args.engine == "local":
            counts = predict_files(photos, bundle, cfg, args.out)
        else:
            with create_engine(engine_config(args)) as engine:
                counts = predict_files(photos, bundle, cfg, args.out, engine)
    except (ReasonError, FileNotFoundError, ValueError, EngineError) as exc:
        print(f"tagsight predict: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    print(f"tagsight predict: {counts['images']} images ({counts['answered']} answered, {counts['unreadable']} "
          f"unreadable) x {len(cfg.apps)} app(s) -> {args.out or 'stdout'}", file=sys.stderr)
    return 0
