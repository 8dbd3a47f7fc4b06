"""Serving half of the trained heads: loading a head folder and the categorize / moderate apps.

A head folder (``tagsight heads train``, ``tagsight.apps.heads``) holds ``head.safetensors``
(weight, bias, feature mean and std) and ``head.json`` (task, categories, thresholds, validation
figures, the backbone's fingerprint). This module reads them and answers from backbone features,
importing none of the fitting code (linear probes, feature extraction); ``tagsight.apps.heads``
re-exports every name here.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from tagsight.apps.base import APPS
from tagsight.apps.calibrators import softmax
from tagsight.apps.embedder import Embedder, FeatureApp, check_features
from tagsight.fsio import ReasonError
from tagsight.models.heads import Standardiser

log = logging.getLogger(__name__)

TASKS = ("categorize", "moderate")
DEFAULT_SAFE = ("allow", "safe", "ok", "benign", "clean", "none")
HEAD_JSON, HEAD_WEIGHTS = "head.json", "head.safetensors"
FORMAT = 1


def moderation_decision(probs: np.ndarray, classes: Sequence[str], thresholds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``allow`` / ``review`` / ``block`` for one image's category probabilities, with the categories that fired."""
    fired: list[dict[str, Any]] = []
    for c, name in enumerate(classes):
        t = thresholds.get(name)
        if t is None:
            continue
        action = "block" if probs[c] >= t["block"] else "review" if probs[c] >= t["review"] else None
        if action:
            fired.append({"category": name, "probability": round(float(probs[c]), 4), "action": action})
    fired.sort(key=lambda f: (f["action"] != "block", -f["probability"]))
    decision = fired[0]["action"] if fired else "allow"
    return {"decision": decision, "flags": fired}


@dataclass
class TrainedHead:
    weight: torch.Tensor
    bias: torch.Tensor
    scaler: Standardiser
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = self.scaler(torch.as_tensor(features, dtype=torch.float32))
        return softmax((x @ self.weight.T + self.bias).double().numpy())


def json_safe(obj: Any) -> Any:
    """``inf`` thresholds as the string "inf" (JSON has no infinity)."""
    if isinstance(obj, float) and math.isinf(obj):
        return "inf"
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def from_json_safe(obj: Any) -> Any:
    """The inverse of ``json_safe``: the string "inf" back to ``math.inf``, in nested dicts and lists."""
    if obj == "inf":
        return math.inf
    if isinstance(obj, dict):
        return {k: from_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json_safe(v) for v in obj]
    return obj


def load_head(head_dir: str | Path) -> TrainedHead:
    head_dir = Path(head_dir)
    return load_head_files(head_dir / HEAD_JSON, head_dir / HEAD_WEIGHTS)


def load_head_files(meta_path: Path, weights_path: Path) -> TrainedHead:
    """A head from its JSON record and its weights (a head folder's two files, or an export's NAME.json + NAME.safetensors)."""
    if not meta_path.is_file() or not weights_path.is_file():
        raise ReasonError("not_a_head", f"{meta_path.parent} has no {meta_path.name} + {weights_path.name}: train "
                                        "one with 'tagsight heads train'")
    meta = from_json_safe(json.loads(meta_path.read_text()))
    if meta.get("format") != FORMAT or meta.get("task") not in TASKS:
        raise ReasonError("bad_head", f"{meta_path}: unsupported head format or task")
    t = load_file(str(weights_path))
    return TrainedHead(t["weight"], t["bias"], Standardiser(t["mean"], t["std"]), meta)


def find_heads(heads_dir: Path) -> dict[str, TrainedHead]:
    """Every head under ``heads_dir`` by name: ``NAME/head.json`` folders and exported ``NAME.json`` files."""
    if not heads_dir.is_dir():
        return {}
    found: dict[str, TrainedHead] = {}
    for p in sorted(heads_dir.iterdir()):
        if (p / HEAD_JSON).is_file():
            found[p.name] = load_head(p)
        elif p.suffix == ".json" and p.with_suffix(".safetensors").is_file():
            found[p.stem] = load_head_files(p, p.with_suffix(".safetensors"))
    return found


# -- the apps ------------------------------------------------------------------------------------


class HeadApp(FeatureApp):
    """An app answering from a trained head (``head_dir``) on the bundle's backbone features.

    ``task`` is what the head does (its head.json's task); ``name``, the name the app is served and
    asked for under, is the task unless the caller gives another (``app_name``: a bundle holding
    several heads of one task names each by its folder).
    """

    task: str

    def __init__(self, embedder: Embedder, head: TrainedHead, head_name: str = "", app_name: str | None = None) -> None:
        super().__init__(embedder)
        if head.meta["backbone_fingerprint"] != embedder.fingerprint:
            raise ReasonError("head_mismatch", f"head {head_name!r} was trained on another backbone "
                                               f"({head.meta['backbone']}); retrain it on this bundle's backbone")
        if head.meta["task"] != self.task:
            raise ReasonError("head_mismatch", f"head {head_name!r} is a {head.meta['task']} head, not {self.task}")
        self.head, self.head_name, self.classes = head, head_name, list(head.meta["classes"])
        self.name = app_name or self.task

    @classmethod
    def load(cls, head_dir: Path, embedder: Embedder, app_name: str | None = None) -> HeadApp:
        return cls(embedder, load_head(head_dir), head_dir.name, app_name)

    def probabilities(self, features: np.ndarray, images: Sequence[Image.Image] | None = None) -> np.ndarray:
        return self.head.probabilities(check_features(features, images, self.embedder.num_features))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "task": self.task, "head": self.head_name, "categories": self.classes}


@APPS.register("categorize")
class CategorizeApp(HeadApp):
    name = task = "categorize"
    options = {"threshold": float}

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        opts = self.check_options(options)
        threshold = float(opts.get("threshold", self.head.meta["abstain"]["threshold"]))
        out = []
        for row in self.probabilities(features, images):
            best = int(row.argmax())
            answer = self.classes[best] if row[best] >= threshold else None
            out.append({"category": answer, "abstained": answer is None, "probability": round(float(row[best]), 4),
                        "best_guess": self.classes[best], "threshold": threshold})
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "abstain": self.head.meta["abstain"]}


@APPS.register("moderate")
class ModerateApp(HeadApp):
    name = task = "moderate"
    options: dict[str, Any] = {}

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        self.check_options(options)
        thresholds = self.head.meta["thresholds"]
        return [{**moderation_decision(row, self.classes, thresholds),
                 "probabilities": {c: round(float(p), 4) for c, p in zip(self.classes, row)}}
                for row in self.probabilities(features, images)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "safe": self.head.meta["safe"], "thresholds": json_safe(
            {c: {"block": t["block"], "review": t["review"]} for c, t in self.head.meta["thresholds"].items()})}
