"""Heads a user trains on their own labelled folder: categorisation (with abstain) and moderation (allow/review/block).

Both tasks share one mechanism (``train_head``): frozen backbone features of ``root/<category>/*``
(or an ingested dataset with labels), a stratified, seeded validation split (``val_fraction``), a
linear softmax head trained on the rest (learning rate and weight decay swept on a further
hold-out of the training part, ``tagsight.eval.linear``), and thresholds chosen on the validation
split (``tagsight.apps.thresholds``). The head used is the one trained without the validation
split, so the thresholds are those of the model that answers.

* ``categorize``: answer the most probable category, or abstain when its probability is below a
  threshold: the lowest one at which the validation accuracy of the answered images reaches
  ``target_accuracy``.
* ``moderate``: every category except the ``safe`` ones (default: folders named allow, safe, ok,
  benign, clean or none) gets two thresholds on its probability: ``block`` (the lowest reaching
  ``target_precision`` on validation) and ``review`` (the highest reaching ``target_recall``;
  never above ``block``). An image is ``block`` when any category reaches its block threshold, else
  ``review`` when any reaches its review threshold, else ``allow``.

``categories`` (optional) picks which folders to use, and in which order; other folders are skipped
and counted in ``head.json``. A head folder holds ``head.safetensors`` (weight, bias, feature mean and
std) and ``head.json`` (task, categories, thresholds, validation figures, the backbone's fingerprint).
Loading a head and the apps that answer from it live in ``tagsight.apps.head_apps`` (the serving
half, re-exported here).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save

from tagsight import __version__
from tagsight.apps.embedder import Embedder
from tagsight.apps.head_apps import (  # noqa: F401  (re-exported: the serving half of heads)
    DEFAULT_SAFE, FORMAT, HEAD_JSON, HEAD_WEIGHTS, TASKS, CategorizeApp, HeadApp, ModerateApp, TrainedHead,
    from_json_safe, json_safe, find_heads, load_head, load_head_files, moderation_decision)
from tagsight.apps.thresholds import operating_point, threshold_for_precision, threshold_for_recall
from tagsight.eval.datasets import LabelledImages, open_labelled
from tagsight.eval.features import extract_features
from tagsight.eval.linear import LinearProbeConfig, fit_linear, holdout_split, select_hyperparameters
from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text
from tagsight.models.backbone import Backbone
from tagsight.storage import location

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class HeadConfig:
    task: str
    categories: tuple[str, ...] | None = None
    safe: tuple[str, ...] | None = None
    val_fraction: float = 0.25
    target_accuracy: float = 0.9
    target_precision: float = 0.9
    target_recall: float = 0.9
    epochs: int = 30
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for name in ("target_accuracy", "target_precision", "target_recall"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categories must be distinct, got {self.categories}")


class Selected(LabelledImages):
    """The images of ``base`` whose class is in ``categories``, relabelled in that order."""

    def __init__(self, base: LabelledImages, categories: Sequence[str]) -> None:
        missing = [c for c in categories if c not in base.classes]
        if missing:
            raise ReasonError("unknown_category", f"categories {missing} are not folders of the data "
                                                  f"(found: {base.classes})")
        self.base, self.classes = base, list(categories)
        names = np.asarray(base.classes)[base.labels]
        self.rows = np.flatnonzero(np.isin(names, self.classes))
        lookup = {c: i for i, c in enumerate(self.classes)}
        self.labels = np.asarray([lookup[n] for n in names[self.rows]], dtype=np.int64)
        self.skipped = {c: int((names == c).sum()) for c in base.classes if c not in lookup}
        self.identity = f"{base.identity}:select:{','.join(self.classes)}"

    def load(self, i: int) -> Image.Image:
        return self.base.load(int(self.rows[i]))


def open_categories(data: str | Path, categories: Sequence[str] | None) -> tuple[LabelledImages, dict[str, int]]:
    base = open_labelled(data)
    if categories is None:
        return base, {}
    chosen = Selected(base, categories)
    return chosen, chosen.skipped


def safe_classes(classes: Sequence[str], safe: Sequence[str] | None) -> list[str]:
    """The benign categories of a moderation head (explicit, or the DEFAULT_SAFE names present)."""
    chosen = list(safe) if safe is not None else [c for c in classes if c.lower() in DEFAULT_SAFE]
    unknown = [c for c in chosen if c not in classes]
    if unknown:
        raise ReasonError("unknown_category", f"safe categories {unknown} are not among {list(classes)}")
    if not chosen:
        raise ReasonError("no_safe_category", f"a moderation head needs a benign category (one of {DEFAULT_SAFE} "
                                              f"or --safe NAME); the categories are {list(classes)}")
    if len(chosen) == len(classes):
        raise ReasonError("no_flagged_category", "every category is safe: nothing to moderate")
    return chosen


# -- thresholds (pure) ---------------------------------------------------------------------------


def abstain_threshold(probs: np.ndarray, labels: np.ndarray, target_accuracy: float) -> dict[str, Any]:
    """The lowest top-probability threshold whose answered accuracy reaches the target (1.0 when none does)."""
    top = probs.max(1)
    correct = probs.argmax(1) == labels
    chosen = threshold_for_precision(top, correct, target_accuracy)
    threshold = chosen.threshold if chosen else 1.0
    answered = top >= threshold
    return {"threshold": threshold, "target_accuracy": target_accuracy, "target_reached": chosen is not None,
            "val_accuracy": float(correct.mean()), "val_coverage": float(answered.mean()),
            "val_answered_accuracy": float(correct[answered].mean()) if answered.any() else math.nan}


def moderation_thresholds(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], safe: Sequence[str],
                          target_precision: float, target_recall: float) -> dict[str, dict[str, Any]]:
    """Per flagged category: block (target precision) and review (target recall) thresholds, measured on val."""
    out = {}
    for c, name in enumerate(classes):
        if name in safe:
            continue
        scores, positives = probs[:, c], labels == c
        block = threshold_for_precision(scores, positives, target_precision)
        review = threshold_for_recall(scores, positives, target_recall)
        block_t = block.threshold if block else math.inf
        review_t = min(review.threshold, block_t) if review else block_t
        out[name] = {"block": block_t, "review": review_t, "block_target_reached": block is not None,
                     "review_target_reached": review is not None, "val_positives": int(positives.sum()),
                     "val_block": operating_point(scores, positives, block_t).to_dict(),
                     "val_review_or_block": operating_point(scores, positives, review_t).to_dict()}
    return out


# -- training ------------------------------------------------------------------------------------


def fit_head(x: np.ndarray, y: np.ndarray, num_classes: int, cfg: HeadConfig) -> tuple[TrainedHead, np.ndarray, dict[str, Any]]:
    """Head trained on the fit part; ``(head, validation indices, sweep result)``."""
    fit, val = holdout_split(y, cfg.val_fraction, cfg.seed)
    if not len(val) or len(np.unique(y[fit])) < num_classes:
        raise ReasonError("too_few_images", "every category needs at least 2 images (one to train, one to validate)")
    probe = LinearProbeConfig(epochs=cfg.epochs, seed=cfg.seed, batch_size=cfg.batch_size)
    xf, yf = torch.as_tensor(x[fit]), torch.as_tensor(y[fit])
    if min(np.bincount(y[fit], minlength=num_classes)) >= 2:
        (lr, wd), sweep = select_hyperparameters(xf, yf, num_classes, probe)
    else:
        (lr, wd), sweep = (probe.lrs[1], probe.weight_decays[0]), []
    layer, scaler = fit_linear(xf, yf, num_classes, lr, wd, probe)
    head = TrainedHead(layer.weight.detach().clone(), layer.bias.detach().clone(), scaler)
    return head, val, {"lr": lr, "weight_decay": wd, "sweep": sweep, "fit_images": int(len(fit)),
                       "val_images": int(len(val))}


def train_head(data: str | Path, backbone: Backbone, backbone_spec: str, out_dir: str | Path, cfg: HeadConfig,
               embedder: Embedder | None = None, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Train a ``cfg.task`` head on ``data`` and write it to ``out_dir``; returns head.json's content."""
    images, skipped = open_categories(data, cfg.categories)
    if len(images.classes) < 2:
        raise ReasonError("too_few_categories", f"{data}: a head needs at least 2 categories, got {images.classes}")
    safe = safe_classes(images.classes, cfg.safe) if cfg.task == "moderate" else []
    x, y = extract_features(backbone, images, cfg.batch_size, cache_dir=cache_dir)
    head, val, fit_info = fit_head(x, y, len(images.classes), cfg)
    probs = head.probabilities(x[val])
    if cfg.task == "categorize":
        decisions = {"abstain": abstain_threshold(probs, y[val], cfg.target_accuracy)}
    else:
        decisions = {"thresholds": moderation_thresholds(probs, y[val], images.classes, safe,
                                                         cfg.target_precision, cfg.target_recall)}
    embedder = embedder or Embedder(backbone)
    meta = {"format": FORMAT, "tagsight_version": __version__, "task": cfg.task, "classes": images.classes,
            "safe": safe, "config": asdict(cfg), "backbone": _absolute(backbone_spec), "backbone_name": backbone.name,
            "backbone_fingerprint": embedder.fingerprint, "data": {"path": location(data), "identity": images.identity,
            "images": len(images), "per_class": np.bincount(y, minlength=len(images.classes)).tolist(),
            "skipped_folders": skipped}, "training": fit_info, **decisions}
    save_head(out_dir, head, meta)
    return meta


def _absolute(spec: str) -> str:
    """A backbone spec with a local path made absolute (recorded once; never relative to the caller's directory)."""
    prefix, path = ("file:", spec[5:]) if spec.startswith("file:") else ("", spec)
    return prefix + str(Path(path).resolve()) if path and Path(path).exists() else spec


def save_head(out_dir: str | Path, head: TrainedHead, meta: dict[str, Any]) -> Path:
    out = Path(out_dir)
    tensors = {"weight": head.weight, "bias": head.bias, "mean": head.scaler.mean, "std": head.scaler.std}
    atomic_write_bytes(out / HEAD_WEIGHTS, save({k: v.contiguous().float() for k, v in tensors.items()}))
    atomic_write_text(out / HEAD_JSON, json.dumps(json_safe(meta), indent=1) + "\n")
    log.info("%s head (%d categories) written to %s", meta["task"], len(meta["classes"]), out)
    return out
