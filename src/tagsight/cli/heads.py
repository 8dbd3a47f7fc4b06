"""``tagsight heads train DATA --task categorize|moderate --backbone SPEC --out HEAD_DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tagsight.cli.eval import BACKBONE_HELP, DEFAULT_CACHE
from tagsight.cli.options import (add_config_options, add_deprecated, add_json_option, emit, fail, format_fields,
                                  given, local_cache_folder, optional_path, resolve_config)
from tagsight.storage import dataset_path, is_url, local_folder, location, output_folder

if TYPE_CHECKING:
    from tagsight.apps.heads import HeadConfig
    from tagsight.models.backbone import Backbone


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("heads", help="train a categorisation or moderation head on your own labelled folder",
                       description="Frozen backbone features of DATA (root/<category>/*.jpg or an ingested dataset "
                                   "with labels), a linear head, thresholds chosen on a validation split. Put the "
                                   "head in BUNDLE/heads/<name>/ to serve it as app <name> (docs/apps.md).")
    verbs = p.add_subparsers(dest="heads_verb", metavar="ACTION", required=True)
    t = verbs.add_parser("train", help="train a head")
    t.add_argument("data", type=optional_path, nargs="?", default=argparse.SUPPRESS,
                   help="labelled images: one folder per category, or an ingested dataset with labels (local or an "
                        "fsspec URL, copied into the local cache)")
    add_deprecated(t, "--data", "tagsight heads train DATA", dest="data", type=dataset_path)
    t.add_argument("--task", default=None, choices=("categorize", "moderate"), help="categorize: one label per "
                   "photo from class folders; moderate: safe vs unsafe, --safe naming the safe class (required, "
                   "here or in --config)")
    t.add_argument("--backbone", required=True, help=BACKBONE_HELP + "; or a bundle folder")
    t.add_argument("--out", type=dataset_path, required=True, help="head folder to write (e.g. BUNDLE/heads/products), "
                   "local or an fsspec URL (written here, published head.json last)")
    t.add_argument("--categories", type=_names, default=None,
                   help="comma-separated folder names to use, in this order (default: every folder)")
    t.add_argument("--safe", type=_names, default=None,
                   help="moderate: comma-separated benign categories (default: folders named allow/safe/ok/...)")
    t.add_argument("--val-fraction", type=float, default=None, help="share of each category for validation "
                                                                     "(default 0.25)")
    t.add_argument("--target-accuracy", type=float, default=None,
                   help="categorize: answered-image accuracy the abstain threshold aims at (default 0.9)")
    t.add_argument("--target-precision", type=float, default=None, help="moderate: block precision (default 0.9)")
    t.add_argument("--target-recall", type=float, default=None, help="moderate: review recall (default 0.9)")
    t.add_argument("--epochs", type=int, default=None, help="passes over the training photos (default 30)")
    t.add_argument("--seed", type=int, default=None, help="seed of the train/validation split and initialisation "
                                                          "(default 0)")
    t.add_argument("--cache-dir", type=local_cache_folder, default=DEFAULT_CACHE,
                   help=f"feature cache, a local folder (default {DEFAULT_CACHE})")
    add_config_options(t, "HeadConfig", "batch_size=32")
    add_json_option(t)
    t.set_defaults(func=run)


def resolve_backbone(spec: str) -> tuple[Backbone, str]:
    """(backbone, spec) for a backbone spec or a bundle folder (its backbone), local or at an fsspec URL."""
    from tagsight.apps.bundle import BUNDLE_JSON, bundle_backbone
    from tagsight.eval.backbones import load_backbone

    folder = local_folder(spec) if is_url(spec) else Path(spec)   # a URL: a run or a bundle, mirrored
    if (folder / BUNDLE_JSON).is_file():   # a bundle, or an export (its own weights)
        backbone, found, _ = bundle_backbone(folder)
        if is_url(spec) and Path(found).is_dir():   # the run of a bundle on a store: named by its URL, not the copy
            found = location(found)
        return backbone, found
    return load_backbone(spec), spec


def head_config(args: argparse.Namespace) -> HeadConfig:
    """The HeadConfig: defaults, then --config, then the flags given, then --set."""
    from tagsight.apps.heads import HeadConfig
    from tagsight.config import load_config

    flags = given(task=args.task, categories=args.categories, safe=args.safe, val_fraction=args.val_fraction,
                  target_accuracy=args.target_accuracy, target_precision=args.target_precision,
                  target_recall=args.target_recall, epochs=args.epochs, seed=args.seed)
    return resolve_config(lambda path, sets: load_config(HeadConfig, path, sets), args, flags)


def run(args: argparse.Namespace) -> int:
    from tagsight.apps.head_apps import HEAD_JSON
    from tagsight.apps.heads import train_head
    from tagsight.fsio import ReasonError

    try:
        if getattr(args, "data", None) is None:
            raise ReasonError("missing_data", "give the DATA folder: tagsight heads train DATA --task ...")
        cfg = head_config(args)
        backbone, spec = resolve_backbone(args.backbone)
        data = local_folder(args.data)   # a URL: mirrored (class folders or a dataset, shards included)
        with output_folder(args.out, marker=HEAD_JSON) as out:   # a URL: written here, then published
            meta = train_head(data, backbone, spec, out, cfg, cache_dir=args.cache_dir)
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        return fail("heads train", exc)
    keys = ("task", "classes", "safe", "abstain", "thresholds", "training")
    summary = {k: meta[k] for k in keys if k in meta}
    summary["training"] = {k: v for k, v in summary["training"].items() if k != "sweep"}
    emit(args, {"out": str(args.out), **summary}, lambda: format_fields({"out": str(args.out), **summary}))
    return 0
