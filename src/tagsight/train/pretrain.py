"""Pretraining runs: build objective and data from a config, train with the shared loop, evaluate, record lineage.

A run folder holds ``config.yaml`` (the resolved config), ``run.json`` (lineage: dataset manifest
version, vocabulary version and path, objective, world size), ``metrics.jsonl``, ``tensorboard/``,
``checkpoints/`` and, after evaluation, ``eval.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tagsight import __version__
from tagsight.data.index import SampleIndex, dataset_tombstones
from tagsight.data.pipeline import HashtagStream, StreamConfig, batch_normalizer, make_loader
from tagsight.data.multicrop import multicrop_transform
from tagsight.data.transforms import eval_transform, train_transform
from tagsight.data.views import ViewStream
from tagsight.eval.metrics import hashtag_metrics, per_label_average_precision
from tagsight.fsio import atomic_write_text
from tagsight.schema.catalog import manifest_version
from tagsight.models.backbone import Backbone
from tagsight.models.pretrained import run_backbone
from tagsight.objectives.dino import DinoObjective, DinoSchedule
from tagsight.objectives.hashtag import HashtagObjective
from tagsight.objectives.swav import SwavObjective, assignment_entropy, collapse_verdict, feature_spread
from tagsight.registry import Registry
from tagsight.storage import dataset_path, location
from tagsight.tags.vocab import Vocabulary
from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv, all_gather_cat
from tagsight.train.loop import Trainer, plan

log = logging.getLogger(__name__)


def timm_backbone(cfg: PretrainConfig) -> Backbone:
    """The default model of a recipe: the timm backbone ``cfg.model`` names, initialised as ``cfg.model.init`` says."""
    return run_backbone(cfg.model.name, cfg.model.img_size, cfg.model.init)


def _describe_backbone(cfg: PretrainConfig) -> dict[str, Any]:
    return {"backbone": cfg.model.name, "init": cfg.model.init}


def _no_files(cfg: PretrainConfig, vocab: Vocabulary) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Recipe:
    """What an objective needs around the shared loop: how to build it, its stream per split, its evaluation.

    ``model`` builds what ``build`` receives (default: the timm backbone of ``cfg.model``; a recipe
    with its own model, such as the generator's, builds it here or in ``build``); ``describe`` gives
    the model's fields of ``run.json``; ``files`` more files for the run folder (name -> text).
    """

    build: Callable[[PretrainConfig, Any, int, int], torch.nn.Module]   # (cfg, model, labels, batches/epoch)
    stream: Callable[..., Any]        # (index, vocab, cfg, data_config, split, env) -> stream
    evaluate: Callable[..., dict]     # (trained, untrained, heldout stream, cfg, env, vocab) -> eval.json fields
    model: Callable[[PretrainConfig], Any] = timm_backbone
    describe: Callable[[PretrainConfig], dict[str, Any]] = _describe_backbone
    files: Callable[[PretrainConfig, Vocabulary], dict[str, str]] = _no_files


RECIPES: Registry[Recipe] = Registry("pretraining objective")
# Modules that register recipes from a higher layer (imported by name, on first need, like forget's kinds).
RECIPE_MODULES = ("tagsight.generate.recipe",)


def recipe(name: str) -> Recipe:
    """The recipe of objective ``name`` (loading ``RECIPE_MODULES`` when it is not registered yet)."""
    if name not in RECIPES:
        for module in RECIPE_MODULES:
            import_module(module)
    return RECIPES.create(name)


def build_objective(cfg: PretrainConfig, num_labels: int, batches_per_epoch: int = 0) -> torch.nn.Module:
    """The objective with freshly initialised weights (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    chosen = recipe(cfg.objective.name)
    return chosen.build(cfg, chosen.model(cfg), num_labels, batches_per_epoch)


def build_stream(index: SampleIndex, vocab: Vocabulary, cfg: PretrainConfig, data_config: Any, split: str,
                 env: DistEnv) -> Any:
    return recipe(cfg.objective.name).stream(index, vocab, cfg, data_config, split, env)


def data_config_of(objective: torch.nn.Module) -> Any:
    """The input config of an objective: its own ``data_config``, else its backbone's."""
    own = getattr(type(objective), "data_config", None)
    return objective.data_config if own is not None else objective.backbone.data_config


def stream_config(cfg: PretrainConfig, split: str) -> StreamConfig:
    d = cfg.data
    return StreamConfig(epoch_length=d.epoch_length, batch_size=d.batch_size, seed=cfg.seed,
                        sampling=d.sampling, holdout_fraction=d.holdout_fraction, split=split)


def _hashtag_stream(index, vocab, cfg, data_config, split, env) -> HashtagStream:
    transform = train_transform(data_config) if split == "train" else eval_transform(data_config)
    return HashtagStream(index, vocab, transform, stream_config(cfg, split), rank=env.rank, world_size=env.world_size)


def _hashtag_evaluate(trained, untrained, heldout, cfg, env, vocab) -> dict:
    result = {"trained": evaluate_hashtags(trained, heldout, cfg.data.workers, env, vocab),
              "untrained": evaluate_hashtags(untrained, heldout, cfg.data.workers, env, vocab)}
    log.info("held-out hashtag mAP %.3f (untrained %.3f)", result["trained"]["mAP"], result["untrained"]["mAP"])
    return result


def _swav_stream(index, vocab, cfg, data_config, split, env) -> ViewStream:
    transform = multicrop_transform(data_config, cfg.data.multicrop) if split == "train" else eval_transform(data_config)
    return ViewStream(index, vocab, transform, stream_config(cfg, split), select=cfg.data.select,
                      rank=env.rank, world_size=env.world_size)


def _swav_build(cfg, backbone, num_labels, batches_per_epoch) -> SwavObjective:
    freeze = round(cfg.objective.swav.freeze_prototypes_epochs * batches_per_epoch)
    return SwavObjective(backbone, cfg.objective.swav, cfg.data.multicrop.n_global, freeze)


def lineage(dataset_dir: Path | str, vocab_path: Path | str, vocab: Vocabulary, cfg: PretrainConfig, env: DistEnv) -> dict:
    return {"tagsight_version": __version__, "kind": "pretrain", "objective": cfg.objective.name,
            "dataset": {"path": location(dataset_dir),
                        "manifest_version": manifest_version(dataset_dir),
                        "tombstones_applied": len(dataset_tombstones(dataset_dir))},
            "vocab": {"path": location(vocab_path), "version": vocab.version, "labels": len(vocab)},
            **recipe(cfg.objective.name).describe(cfg), "world_size": env.world_size}


def _versions(info: dict) -> tuple[str, str]:
    return info["dataset"]["manifest_version"], info["vocab"]["version"]


def check_lineage(run_dir: Path, expected: dict) -> None:
    """Refuse to resume a run on different data: the dataset and vocabulary versions must match."""
    path = run_dir / "run.json"
    if path.is_file() and _versions(json.loads(path.read_text())) != _versions(expected):
        raise ValueError(f"{run_dir} was trained on another dataset or vocabulary version; use a new --out")


def pretrain(dataset_dir: str | Path, vocab_path: str | Path, run_dir: str | Path, cfg: PretrainConfig,
             env: DistEnv) -> dict[str, Any]:
    """Train (or resume) a run, then evaluate hashtag prediction on held-out posts. Returns eval.json's content."""
    dataset_dir, vocab_path, run_dir = dataset_path(dataset_dir), dataset_path(vocab_path), Path(run_dir)
    vocab = Vocabulary.load(vocab_path)
    info = lineage(dataset_dir, vocab_path, vocab, cfg, env)
    check_lineage(run_dir, info)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
        for name, text in recipe(cfg.objective.name).files(cfg, vocab).items():
            atomic_write_text(run_dir / name, text)
    index = SampleIndex.build(dataset_dir)
    per_epoch = plan(cfg.data.epoch_length, cfg.data.batch_size, env, cfg.loop).batches_per_epoch
    objective = build_objective(cfg, len(vocab), per_epoch)
    data_config = data_config_of(objective)
    stream = build_stream(index, vocab, cfg, data_config, "train", env)
    on_gpu = env.device.startswith("cuda")   # uint8 batches into pinned memory, normalised on the GPU

    def loader(s: Any) -> Any:
        return make_loader(s, cfg.data.workers, pin_memory=on_gpu, normalize=not on_gpu)

    trainer = Trainer(objective, stream, loader, cfg.optim, cfg.loop, env, run_dir, cfg.data.epoch_length, cfg.data.batch_size,
                      finish=batch_normalizer(stream) if on_gpu else None)
    trainer.fit()
    heldout = build_stream(index, vocab, cfg, data_config, "heldout", env)
    untrained = build_objective(cfg, len(vocab), per_epoch).to(env.device)
    evaluate = recipe(cfg.objective.name).evaluate
    result = {"step": trainer.step, **evaluate(trainer.model, untrained, heldout, cfg, env, vocab)}
    if env.is_main:
        atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=1))
    return result


@torch.no_grad()
def heldout_scores_embeddings(objective: SwavObjective, stream: ViewStream, workers: int,
                              env: DistEnv) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototype scores and embeddings of every held-out sample (centre crops), gathered from all ranks."""
    objective.eval()
    parts = [objective.scores_and_embeddings(b["image"].to(env.device)) for b in make_loader(stream, workers)]
    scores, z = (torch.cat([p[i].cpu() for p in parts]) for i in (0, 1))
    return all_gather_cat(scores, env), all_gather_cat(z, env)


def collapse_diagnostics(objective: SwavObjective, stream: ViewStream, workers: int, env: DistEnv) -> dict:
    scores, z = heldout_scores_embeddings(objective, stream, workers, env)
    verdict = collapse_verdict(float(assignment_entropy(scores)), float(feature_spread(z)), objective.cfg)
    return {**verdict, "n_samples": int(z.shape[0])}


def evaluate_collapse(trained, untrained, heldout, cfg, env, vocab) -> dict:
    """SwAV's held-out check: is the trained model collapsed? (the untrained one for reference)."""
    result = {"collapse": collapse_diagnostics(trained, heldout, cfg.data.workers, env),
              "untrained": collapse_diagnostics(untrained, heldout, cfg.data.workers, env)}
    c = result["collapse"]
    if c["collapsed"]:
        log.warning("SwAV run COLLAPSED on held-out images: %s", c["reason"])
    else:
        log.info("held-out assignment entropy %.3f, feature spread %.3f (untrained %.3f, %.3f): not collapsed",
                 c["assignment_entropy"], c["feature_std"], result["untrained"]["assignment_entropy"],
                 result["untrained"]["feature_std"])
    return result


@torch.no_grad()
def predict_heldout(objective: torch.nn.Module, stream: HashtagStream, workers: int,
                    env: DistEnv) -> tuple[np.ndarray, np.ndarray]:
    """Scores and targets of every held-out sample, gathered from all ranks."""
    objective.eval()
    scores, targets = [], []
    for batch in make_loader(stream, workers):
        scores.append(objective.predict(batch["image"].to(env.device)).float().cpu())
        targets.append(batch["target"])
    s, t = torch.cat(scores), torch.cat(targets)
    return all_gather_cat(s, env).numpy(), all_gather_cat(t, env).numpy()


def evaluate_hashtags(objective: torch.nn.Module, stream: HashtagStream, workers: int, env: DistEnv,
                      vocab: Vocabulary) -> dict:
    """Held-out hashtag metrics, plus the AP of every label that has a held-out positive."""
    scores, targets = predict_heldout(objective, stream, workers, env)
    ap = per_label_average_precision(scores, targets)
    per_label = {vocab.labels[i].label: round(float(a), 4) for i, a in enumerate(ap) if not np.isnan(a)}
    return {**hashtag_metrics(scores, targets), "per_label_ap": per_label}


def _hashtag_build(cfg, backbone, num_labels, batches_per_epoch) -> HashtagObjective:
    return HashtagObjective(backbone, num_labels, loss=cfg.objective.loss)


RECIPES.register("hashtag")(lambda: Recipe(_hashtag_build, _hashtag_stream, _hashtag_evaluate))
RECIPES.register("swav")(lambda: Recipe(_swav_build, _swav_stream, evaluate_collapse))


# DINO (objectives/dino.py): SwAV's multi-crop stream; the held-out check runs the teacher.
def _dino_build(cfg, backbone, num_labels, batches_per_epoch) -> DinoObjective:
    schedule = DinoSchedule.of(cfg.objective.dino, batches_per_epoch, cfg.loop.epochs, cfg.loop.accumulate)
    return DinoObjective(backbone, cfg.objective.dino, cfg.data.multicrop.n_global, schedule)


@torch.no_grad()
def _dino_collapse(objective: DinoObjective, stream: ViewStream, workers: int, env: DistEnv) -> dict:
    objective.eval()
    parts = [objective.teacher_outputs(b["image"].to(env.device)) for b in make_loader(stream, workers)]
    probs, z = (all_gather_cat(torch.cat([p[i].cpu() for p in parts]), env) for i in (0, 1))
    return {**objective.verdict(probs, z), "n_samples": int(z.shape[0])}


def _dino_evaluate(trained, untrained, heldout, cfg, env, vocab) -> dict:
    result = {"collapse": _dino_collapse(trained, heldout, cfg.data.workers, env),
              "untrained": _dino_collapse(untrained, heldout, cfg.data.workers, env)}
    c = result["collapse"]
    if c["collapsed"]:
        log.warning("DINO run COLLAPSED on held-out images: %s", c["reason"])
    log.info("held-out teacher entropy %.3f, KL to the centre %.3f, feature spread %.3f", c["teacher_entropy"],
             c["kl_to_centre"], c["feature_std"])
    return result


RECIPES.register("dino")(lambda: Recipe(_dino_build, _swav_stream, _dino_evaluate))
