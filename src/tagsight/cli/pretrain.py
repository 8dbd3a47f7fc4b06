"""``tagsight pretrain``: train a backbone on a dataset's hashtags (under torchrun for several processes)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from tagsight.storage import dataset_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="pretrain a timm backbone on a dataset (hashtag, SwAV or DINO objective)",
        description="Train a timm backbone with a linear head to predict each post's vocabulary labels "
                    "(softmax over 1/k targets or per-label BCE, square-root resampling), then report held-out "
                    "hashtag mAP, P@1, P@5, R@5 against the untrained model; or (--objective swav) self-supervised SwAV on every post's photo (multi-crop, Sinkhorn prototypes) with a held-out collapse check; or (--objective dino) self-supervised DINO (student and momentum teacher, centring and sharpening, docs/dino.md) with a held-out collapse check. Rerun the same command to resume. "
                    "For several processes: torchrun --nproc_per_node N -m tagsight.cli pretrain ...")
    p.add_argument("dataset", type=dataset_path, help="dataset folder made by 'tagsight ingest', or its fsspec URL "
                   "(s3://bucket/ds: streamed by byte ranges through a local cache, docs/storage.md)")
    p.add_argument("--vocab", type=Path, required=True, help="vocab.json (or its folder) from 'tagsight vocab build'")
    p.add_argument("--out", type=Path, required=True, help="run folder (created; an existing one is resumed)")
    p.add_argument("--objective", default=None, help="training method: hashtag (the default unless --config names "
                   "one), swav or dino (self-supervised, ignore hashtags) or diffusion (the hashtag-conditioned image "
                   "generator of 'tagsight generate'; docs/generation.md); the same as --set objective.name=NAME")
    p.add_argument("--config", type=Path, default=None, help="YAML preset (e.g. configs/pretrain_cpu_small.yaml); "
                   "defaults are the PretrainConfig dataclasses")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set model.name=resnet50 --set loop.max_steps=100")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tagsight.cli.methods  # noqa: F401  (every method registered before the config names one)
    from tagsight.train.config import PretrainConfig
    from tagsight.train.pretrain import pretrain

    chosen = [f"objective.name={args.objective}"] if args.objective else []
    try:
        cfg = PretrainConfig.from_yaml(args.config, [*chosen, *args.overrides])
    except (OSError, ValueError, TypeError) as exc:
        print(f"tagsight pretrain: bad config: {exc}", file=sys.stderr)
        return 2
    vocab = args.vocab / "vocab.json" if args.vocab.is_dir() else args.vocab
    return run_on_ranks("pretrain", args.device, lambda env: pretrain(args.dataset, vocab, args.out, cfg, env))


def run_on_ranks(verb: str, device: str, work: Callable[[Any], dict]) -> int:
    """Join torchrun's process group, run ``work(env)``, print its result on rank 0; bad input exits 2."""
    from tagsight.train.distributed import RankFilter, init_distributed, shutdown

    env = init_distributed(device)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RankFilter(env))
    try:
        result = work(env)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"tagsight {verb}: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(env)
    if env.is_main:
        print(json.dumps(result, indent=1))
    return 0
