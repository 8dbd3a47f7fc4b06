"""``tagsight pretrain``: train a backbone on a dataset's hashtags (under torchrun for several processes)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from tagsight.cli.options import add_config_options, add_json_option, emit, format_fields
from tagsight.storage import dataset_path, is_url

log = logging.getLogger(__name__)

def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "pretrain", help="pretrain a timm backbone on a dataset (hashtag, SwAV or DINO objective)",
        description="Train a timm backbone with a linear head to predict each post's vocabulary labels "
                    "(softmax over 1/k targets or per-label BCE, square-root resampling), then report held-out "
                    "hashtag mAP, P@1, P@5, R@5 against the untrained model; or (--objective swav) self-supervised SwAV on every post's photo (multi-crop, Sinkhorn prototypes) with a held-out collapse check; or (--objective dino) self-supervised DINO (student and momentum teacher, centring and sharpening, docs/dino.md) with a held-out collapse check. Rerun the same command to resume. "
                    "For several processes: torchrun --nproc_per_node N -m tagsight.cli pretrain ...")
    p.add_argument("dataset", type=dataset_path, help="dataset folder made by 'tagsight ingest', or its fsspec URL "
                   "(s3://bucket/ds: streamed by byte ranges through a local cache, docs/storage.md)")
    p.add_argument("--vocab", type=dataset_path, default=None,
                   help="vocab.json (or its folder) from 'tagsight vocab build', local or an fsspec URL (required "
                        "unless the method reads no hashtags: vae)")
    p.add_argument("--out", type=dataset_path, required=True,
                   help="run folder (created; an existing one is resumed), local or an fsspec URL (trained in a local "
                        "staging folder, each checkpoint published as it is saved: docs/storage.md)")
    p.add_argument("--objective", default=None, help="training method: hashtag (the default unless --config names "
                   "one), swav or dino (self-supervised, ignore hashtags) or diffusion (the hashtag-conditioned image "
                   "generator of 'tagsight generate'; docs/generation.md) or vae (its autoencoder for the latent "
                   "preset: RUN/vae is an objective.vae_path; no --vocab); the same as --set objective.name=NAME")
    add_config_options(p, "PretrainConfig", "loop.max_steps=100", "configs/pretrain_cpu_small.yaml")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    add_json_option(p)
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
    vocab = args.vocab if args.vocab is None or is_url(args.vocab) or not args.vocab.is_dir() \
        else args.vocab / "vocab.json"
    return run_on_ranks("pretrain", args.device,
                        lambda env: in_run_folder(args.out, env, lambda run_dir: pretrain(args.dataset, vocab, run_dir,
                                                                                          cfg, env)), args)


def in_run_folder(out: str | Path, env: Any, work: Callable[[Path], dict[str, Any]], marker: str = "run.json") -> dict[str, Any]:
    """``work(run folder)``: ``out`` itself, or for an fsspec URL a local staging folder that starts from what the
    store holds (a rerun, here or on a fresh machine, resumes from the last checkpoint published), publishes every
    checkpoint as it is saved (``publish_checkpoint``) and the whole run when it ends, ``marker`` last. Only rank 0
    publishes."""
    if not is_url(out):
        return work(Path(out))
    import torch.distributed as dist

    from tagsight.storage import output_folder, staging_folder
    from tagsight.train.checkpoint import after_checkpoint

    if not env.is_main:
        if dist.is_initialized():
            dist.barrier()   # rank 0 has filled the staging folder
        return work(staging_folder(str(out)))
    with output_folder(out, marker=marker) as run_dir:
        if dist.is_initialized():
            dist.barrier()
        with after_checkpoint(lambda folder, _: publish_checkpoint(folder, str(out), marker)):
            return work(run_dir)


def publish_checkpoint(run_dir: Path, url: str, marker: str = "run.json") -> None:
    """Publish what changed in the run folder since the last checkpoint: the new checkpoint's files first, then the
    run's records (``marker``), ``checkpoints/latest`` last; checkpoints the run removed are then deleted from the
    store. A store that cannot be reached costs a warning, not the run: the next checkpoint (or the run's end) sends
    what is missing."""
    from tagsight.fsio import ReasonError
    from tagsight.storage import publish_changes
    from tagsight.train.checkpoint import LATEST

    try:
        publish_changes(run_dir, url, last=(marker, f"checkpoints/{LATEST}"), prune_under="checkpoints")
    except (ReasonError, OSError) as exc:
        log.warning("checkpoint not published to %s (%s); the next checkpoint or the end of the run sends it", url, exc)


def run_on_ranks(verb: str, device: str, work: Callable[[Any], dict[str, Any]], args: argparse.Namespace | None = None) -> int:
    """Join torchrun's process group, run ``work(env)``, print its result on rank 0 (JSON with ``--json``, else
    lines for people); bad input exits 2."""
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
        emit(args or argparse.Namespace(json=True), result, lambda: format_fields(result))
    return 0
