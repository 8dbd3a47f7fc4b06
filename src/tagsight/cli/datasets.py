"""``tagsight datasets social-imagenette --out SOURCE_DIR``: build benchmark corpora from ../shared data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from tagsight.cli.options import add_deprecated, add_json_option, emit, jsonable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("datasets", help="build benchmark corpora (sources with ground truth) from real data",
                       description="Build benchmark corpora that `tagsight ingest` reads, each with a separate "
                                   "ground-truth file the pipeline never reads.")
    p.set_defaults(func=lambda args: _usage(p))
    dsub = p.add_subparsers(dest="dataset", metavar="DATASET")
    s = dsub.add_parser(
        "social-imagenette", help="Imagenette photos posted with HARRISON-calibrated simulated hashtags",
        description="Turn every photo of imagenette-160/{train,val} into a post whose hashtags follow a noise "
                    "model calibrated on HARRISON (docs/social-imagenette.md). Writes SOURCE_DIR/<split>/posts.jsonl "
                    "(ingest it with `tagsight ingest SOURCE_DIR/<split>/posts.jsonl --optout "
                    "SOURCE_DIR/<split>/optout.txt`), the photos hard-linked under SOURCE_DIR/<split>/media/, the "
                    "ground truth in SOURCE_DIR/<split>/truth.jsonl and the model in SOURCE_DIR/noise_model.json. "
                    "The same arguments give byte-identical files.")
    s.add_argument("--out", type=Path, required=True, metavar="SOURCE_DIR", help="folder to write (created)")
    s.add_argument("--data", type=Path, default=None, help="folder holding imagenette-160/ and harrison/ "
                   "(default: $TAGSIGHT_DATA, else <cwd>/../shared/data)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--p-present", type=float, default=0.8, help="probability that the photo's concept is "
                   "among its hashtags (default 0.8)")
    s.add_argument("--p-wrong", type=float, default=0.25, help="probability that another class's concept is "
                   "among its hashtags (default 0.25)")
    s.add_argument("--splits", default="train,val", help="comma-separated splits to build (default train,val)")
    s.add_argument("--limit", type=int, default=None, help="at most N posts per split, for quick runs "
                   "(a prefix of the full build)")
    add_json_option(s)
    s.set_defaults(func=run_social_imagenette)
    g = dsub.add_parser(
        "ground-truth", help="the clean-label twin of a social-imagenette split (hashtags = the true class)",
        description="Copy a social-imagenette split folder (posts.jsonl, truth.jsonl, optout.txt, photos "
                    "hard-linked) with every post's hashtags replaced by its true class word from truth.jsonl "
                    "(opt-out tags and every consent field kept), for the clean-label arm of the transfer "
                    "experiment. Ingest OUT/posts.jsonl with --optout OUT/optout.txt as the noisy split.")
    g.add_argument("split_dir", type=Path, help="a social-imagenette split folder, e.g. SOURCE_DIR/train")
    g.add_argument("--out", type=Path, required=True, help="folder to write (created; not the split folder)")
    add_json_option(g)
    g.set_defaults(func=run_ground_truth)
    v = dsub.add_parser(
        "verified", help="a verified-labels file (post key -> true class) from a social-imagenette split",
        description="Write SPLIT_DIR/truth.jsonl's true class of every post as verified labels, for "
                    "'tagsight apps calibrate --verified' (alt-text concepts chosen against checked labels).")
    v.add_argument("split_dir", type=Path, help="a social-imagenette split folder, e.g. SOURCE_DIR/train")
    v.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    v.add_argument("--source-name", dest="source", default="posts",
                   help="the name of the source in catalog keys, as ingest gave it to the posts file (default: posts)")
    add_deprecated(v, "--source", "--source-name", dest="source")
    add_json_option(v)
    v.set_defaults(func=run_verified)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_social_imagenette(args: argparse.Namespace) -> int:
    from tagsight.datasets.harrison_stats import DatasetError
    from tagsight.datasets.social_imagenette import (NoiseModel, SocialImagenetteConfig, build_social_imagenette,
                                                     resolve_data_root)
    from tagsight.tags.wordnet import WordNetMissing

    try:
        noise = NoiseModel(p_present=args.p_present, p_wrong=args.p_wrong)
        splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
        cfg = SocialImagenetteConfig(out_dir=args.out, data_root=resolve_data_root(args.data), seed=args.seed,
                                     splits=splits, limit=args.limit, noise=noise)
        summary = build_social_imagenette(cfg)
    except DatasetError as exc:
        print(f"tagsight datasets social-imagenette: {exc} [{exc.reason}]", file=sys.stderr)
        return 2
    except (ValueError, WordNetMissing, OSError) as exc:
        print(f"tagsight datasets social-imagenette: {exc}", file=sys.stderr)
        return 2
    emit(args, summary, summary.format)
    return 0


def _write(action: str, work: Callable[[], Any], show: Callable[[Any], str], args: argparse.Namespace,
           as_data: Callable[[Any], Any] = jsonable) -> int:
    """Run ``work``; print ``show(result)``, or the error with its reason code (exit 2)."""
    from tagsight.fsio import ReasonError

    try:
        result = work()
    except (ReasonError, OSError) as exc:
        print(f"tagsight datasets {action}: {exc} [{getattr(exc, 'reason', 'os_error')}]", file=sys.stderr)
        return 2
    emit(args, as_data(result), lambda: show(result))
    return 0


def run_ground_truth(args: argparse.Namespace) -> int:
    from tagsight.datasets.ground_truth import write_ground_truth_split

    return _write("ground-truth", lambda: write_ground_truth_split(args.split_dir, args.out), lambda s: s.format(),
                  args)


def run_verified(args: argparse.Namespace) -> int:
    from tagsight.datasets.ground_truth import write_verified_labels

    return _write("verified", lambda: write_verified_labels(args.split_dir, args.out, args.source),
                  lambda n: f"{n} verified posts written to {args.out}", args,
                  lambda n: {"posts": n, "out": str(args.out)})
