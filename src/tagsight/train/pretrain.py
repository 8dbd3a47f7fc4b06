"""Pretraining runs: build a method's objective and data from a config, train with the shared loop, evaluate.

The method (``cfg.objective.name``) is looked up in ``tagsight.methods.METHODS``; this module names
none. A run folder holds ``config.yaml`` (the resolved config), ``run.json`` (lineage: dataset manifest
version, vocabulary version and path, method, world size, the method's model fields), ``metrics.jsonl``,
``tensorboard/``, ``checkpoints/``, the method's own files and, after evaluation, ``eval.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from tagsight import __version__
from tagsight.data.index import SampleIndex, dataset_tombstones
from tagsight.data.pipeline import batch_normalizer, make_loader
from tagsight.fsio import atomic_write_text
from tagsight.schema.catalog import manifest_version
from tagsight.methods.base import Objective, method_of
from tagsight.storage import dataset_path, location
from tagsight.tags.vocab import Vocabulary
from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv
from tagsight.train.loop import Trainer, plan

log = logging.getLogger(__name__)


def build_objective(cfg: PretrainConfig, num_labels: int, batches_per_epoch: int = 0) -> Objective:
    """The objective of ``cfg``'s method with freshly initialised weights (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return method_of(cfg.objective.name).build(cfg, num_labels, batches_per_epoch)


def lineage(dataset_dir: Path | str, vocab_path: Path | str | None, vocab: Vocabulary, cfg: PretrainConfig,
            env: DistEnv) -> dict[str, Any]:
    return {"tagsight_version": __version__, "kind": "pretrain", "objective": cfg.objective.name,
            "dataset": {"path": location(dataset_dir),
                        "manifest_version": manifest_version(dataset_dir),
                        "tombstones_applied": len(dataset_tombstones(dataset_dir))},
            "vocab": None if vocab_path is None else {"path": location(vocab_path), "version": vocab.version,
                                                      "labels": len(vocab)},
            **method_of(cfg.objective.name).describe(cfg), "world_size": env.world_size}


def _versions(info: dict[str, Any]) -> tuple[str, str]:   # a run without a vocabulary records ``vocab: null``
    return info["dataset"]["manifest_version"], (info["vocab"] or {}).get("version", "")


def check_lineage(run_dir: Path, expected: dict[str, Any]) -> None:
    """Refuse to resume a run on different data: the dataset and vocabulary versions must match."""
    path = run_dir / "run.json"
    if path.is_file() and _versions(json.loads(path.read_text())) != _versions(expected):
        raise ValueError(f"{run_dir} was trained on another dataset or vocabulary version; use a new --out")


def load_vocabulary(vocab_path: str | Path | None, cfg: PretrainConfig) -> Vocabulary:
    """The run's vocabulary; without one (``None``), an empty one for a method that reads no hashtags."""
    if vocab_path is not None:
        return Vocabulary.load(dataset_path(vocab_path))
    if method_of(cfg.objective.name).needs_vocab:
        raise ValueError(f"the {cfg.objective.name!r} method needs a vocabulary (--vocab)")
    return Vocabulary(version="none", config={"sampling": "none"}, labels=[], lookup={})


def pretrain(dataset_dir: str | Path, vocab_path: str | Path | None, run_dir: str | Path, cfg: PretrainConfig,
             env: DistEnv) -> dict[str, Any]:
    """Train (or resume) a run of the method ``cfg.objective.name`` names, then evaluate it on held-out posts.

    The method must be registered in ``METHODS`` (the CLI imports every method: ``tagsight.cli.methods``).
    ``vocab_path`` may be None for a method that reads no hashtags (``needs_vocab = False``). Returns eval.json's
    content.
    """
    method = method_of(cfg.objective.name)
    vocab = load_vocabulary(vocab_path, cfg)
    dataset_dir, run_dir = dataset_path(dataset_dir), Path(run_dir)
    vocab_path = None if vocab_path is None else dataset_path(vocab_path)
    info = lineage(dataset_dir, vocab_path, vocab, cfg, env)
    check_lineage(run_dir, info)
    if env.is_main:
        write_run_files(run_dir, cfg, info, method.files(cfg, vocab))
    index = SampleIndex.build(dataset_dir)
    per_epoch = plan(cfg.data.epoch_length, cfg.data.batch_size, env, cfg.loop).batches_per_epoch
    objective = build_objective(cfg, len(vocab), per_epoch)
    stream = method.stream(index, vocab, cfg, objective.data_config, "train", env)
    trainer = _trainer(objective, stream, cfg, env, run_dir)
    trainer.fit()
    heldout = method.stream(index, vocab, cfg, objective.data_config, "heldout", env)
    untrained = build_objective(cfg, len(vocab), per_epoch).to(env.device)
    result = {"step": trainer.step, **method.evaluate(objective, untrained, heldout, cfg, env, vocab)}   # trained
    if env.is_main:
        atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=1))
        method.finish(objective, run_dir, cfg, env)
    return result


def write_run_files(run_dir: Path, cfg: PretrainConfig, info: dict[str, Any], files: dict[str, str]) -> None:
    """config.yaml, run.json and the method's own files."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
    for name, text in files.items():
        atomic_write_text(run_dir / name, text)


def _trainer(objective: Objective, stream: Any, cfg: PretrainConfig, env: DistEnv, run_dir: Path) -> Trainer:
    on_gpu = env.device.startswith("cuda")   # uint8 batches into pinned memory, normalised on the GPU

    def loader(s: Any) -> Any:
        return make_loader(s, cfg.data.workers, pin_memory=on_gpu, normalize=not on_gpu)

    return Trainer(objective, stream, loader, cfg.optim, cfg.loop, env, run_dir, cfg.data.epoch_length,
                   cfg.data.batch_size, finish=batch_normalizer(stream) if on_gpu else None)
