"""Frozen-feature transfer (``knn``, ``linear``): load, decontaminate, extract (cached), score, one record.

``PROBES`` maps a method name to ``fn(train_x, train_y, val_x, val_y, num_classes, **params) ->
(settings, val scores [N_val, C])``; ``run_probe`` does the rest for any of them.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from tagsight.eval.features import extract_features
from tagsight.eval.knn import knn_evaluate_scores
from tagsight.eval.linear import LinearProbeConfig, linear_probe_scores
from tagsight.eval.transfer import TransferInputs, open_sets, result_record
from tagsight.registry import Registry
from tagsight.train.distributed import DistEnv

ProbeFn = Callable[..., tuple[dict[str, Any], np.ndarray]]
PROBES: Registry[tuple[dict[str, Any], np.ndarray]] = Registry("probe")


@PROBES.register("knn")
def _knn(tx: np.ndarray, ty: np.ndarray, vx: np.ndarray, vy: np.ndarray, num_classes: int, k: int = 20,
         temperature: float = 0.07) -> tuple[dict[str, Any], np.ndarray]:
    result, scores = knn_evaluate_scores(tx, ty, vx, vy, num_classes, k, temperature)
    return {"k": result["k"], "temperature": result["temperature"]}, scores


@PROBES.register("linear")
def _linear(tx: np.ndarray, ty: np.ndarray, vx: np.ndarray, vy: np.ndarray, num_classes: int,
            config: LinearProbeConfig | None = None) -> tuple[dict[str, Any], np.ndarray]:
    result, scores = linear_probe_scores(tx, ty, vx, vy, num_classes, config)
    return {k: v for k, v in result.items() if k not in ("top1", "top5")}, scores


def run_probe(method: str, inputs: TransferInputs, env: DistEnv, **params: Any) -> dict[str, Any]:
    """The result record on rank 0 (``{}`` on other ranks, which only share the feature extraction)."""
    probe = PROBES.get(method)
    start = time.perf_counter()
    backbone = inputs.load_backbone()
    sets, decontamination = open_sets(inputs, env)
    feats = {name: extract_features(backbone, data, inputs.batch_size, inputs.workers, env, inputs.cache_dir)
             for name, data in sets.items()}
    if not env.is_main:  # scoring needs one process
        return {}
    (tx, ty), (vx, vy) = feats["train"], feats["val"]
    settings, scores = probe(tx, ty, vx, vy, len(sets["train"].classes), **params)
    return result_record(method, inputs, backbone, sets, decontamination, scores, settings,
                         time.perf_counter() - start)
