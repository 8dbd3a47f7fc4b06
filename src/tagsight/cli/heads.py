"""``tagsight heads train --task categorize|moderate --data DIR --backbone SPEC --out HEAD_DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tagsight.cli.eval import BACKBONE_HELP, DEFAULT_CACHE


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("heads", help="train a categorisation or moderation head on your own labelled folder",
                       description="Frozen backbone features of DATA (root/<category>/*.jpg or an ingested dataset "
                                   "with labels), a linear head, thresholds chosen on a validation split. Put the "
                                   "head in BUNDLE/heads/<name>/ to serve it as app <name> (docs/apps.md).")
    verbs = p.add_subparsers(dest="heads_verb", metavar="ACTION", required=True)
    t = verbs.add_parser("train", help="train a head")
    t.add_argument("--task", required=True, choices=("categorize", "moderate"), help="categorize: one label per photo "
                   "from class folders; moderate: safe vs unsafe, --safe naming the safe class")
    t.add_argument("--data", type=Path, required=True, help="labelled images: one folder per category")
    t.add_argument("--backbone", required=True, help=BACKBONE_HELP + "; or a bundle folder")
    t.add_argument("--out", type=Path, required=True, help="head folder to write (e.g. BUNDLE/heads/products)")
    t.add_argument("--categories", type=_names, default=None,
                   help="comma-separated folder names to use, in this order (default: every folder)")
    t.add_argument("--safe", type=_names, default=None,
                   help="moderate: comma-separated benign categories (default: folders named allow/safe/ok/...)")
    t.add_argument("--val-fraction", type=float, default=0.25, help="share of each category for validation")
    t.add_argument("--target-accuracy", type=float, default=0.9,
                   help="categorize: answered-image accuracy the abstain threshold aims at (default 0.9)")
    t.add_argument("--target-precision", type=float, default=0.9, help="moderate: block precision (default 0.9)")
    t.add_argument("--target-recall", type=float, default=0.9, help="moderate: review recall (default 0.9)")
    t.add_argument("--epochs", type=int, default=30, help="passes over the training photos (default 30)")
    t.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and initialisation")
    t.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"feature cache (default {DEFAULT_CACHE})")
    t.set_defaults(func=run)


def resolve_backbone(spec: str):
    """(backbone, spec) for a backbone spec or a bundle folder (its backbone)."""
    from tagsight.apps.bundle import BUNDLE_JSON, bundle_backbone
    from tagsight.eval.backbones import load_backbone

    if (Path(spec) / BUNDLE_JSON).is_file():   # a bundle, or an export (its own weights)
        backbone, spec, _ = bundle_backbone(Path(spec))
        return backbone, spec
    return load_backbone(spec), spec


def run(args: argparse.Namespace) -> int:
    from tagsight.apps.heads import HeadConfig, train_head
    from tagsight.fsio import ReasonError

    try:
        cfg = HeadConfig(task=args.task, categories=args.categories, safe=args.safe, val_fraction=args.val_fraction,
                         target_accuracy=args.target_accuracy, target_precision=args.target_precision,
                         target_recall=args.target_recall, epochs=args.epochs, seed=args.seed)
        backbone, spec = resolve_backbone(args.backbone)
        meta = train_head(args.data, backbone, spec, args.out, cfg, cache_dir=args.cache_dir)
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        print(f"tagsight heads train: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    keys = ("task", "classes", "safe", "abstain", "thresholds", "training")
    summary = {k: meta[k] for k in keys if k in meta}
    summary["training"] = {k: v for k, v in summary["training"].items() if k != "sweep"}
    print(json.dumps(summary, indent=1, default=str))
    return 0
