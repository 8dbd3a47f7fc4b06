"""DINO-style weighted k-nearest-neighbour classification of frozen features.

Features are L2-normalised, similarity is the cosine (a dot product), each query takes its ``k``
most similar training samples (ties in similarity go to the lower training index: a stable sort),
each neighbour votes for its class with weight ``exp(sim / T)`` (T = 0.07), votes are summed per
class, and the class scores are ranked for top-1 / top-5 (ties between classes go to the lower
class index, as ``tagsight.metrics.top_k_mask``). Queries are processed in chunks so memory
stays ``chunk x N_train``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from tagsight.metrics import top_k_mask

log = logging.getLogger(__name__)


def knn_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, k: int = 20,
               temperature: float = 0.07, chunk: int = 256) -> np.ndarray:
    """Summed neighbour weights per class ``[N_test, num_classes]`` (float64)."""
    if k < 1 or temperature <= 0 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1 and temperature > 0, got {k}, {chunk}, {temperature}")
    train, test = _normalise(train_x), _normalise(test_x)
    labels = torch.as_tensor(np.asarray(train_y), dtype=torch.int64)
    if train.shape[0] != labels.shape[0] or train.shape[1] != test.shape[1]:
        raise ValueError(f"shape mismatch: train {tuple(train.shape)}, labels {tuple(labels.shape)}, "
                         f"test {tuple(test.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"train labels must lie in [0, {num_classes})")
    k = min(k, train.shape[0])
    out = torch.zeros(test.shape[0], num_classes, dtype=torch.float64)
    for start in range(0, test.shape[0], chunk):
        sim = test[start:start + chunk] @ train.T
        top_sim, top_idx = torch.sort(sim, dim=1, descending=True, stable=True)
        weights = torch.exp(top_sim[:, :k].double() / temperature)
        out[start:start + chunk].scatter_add_(1, labels[top_idx[:, :k]], weights)
    return out.numpy()


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``: fraction of rows whose label is among their k best scores."""
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(labels))
    return {f"top{k}": float(top_k_mask(scores, k)[rows, labels].mean()) if len(labels) else float("nan")
            for k in ks}


def knn_evaluate(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 num_classes: int, k: int = 20, temperature: float = 0.07) -> dict[str, float | int]:
    """Top-1 / top-5 accuracy of the weighted kNN classifier, with its settings."""
    return knn_evaluate_scores(train_x, train_y, test_x, test_y, num_classes, k, temperature)[0]


def knn_evaluate_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                        num_classes: int, k: int = 20, temperature: float = 0.07) -> tuple[dict[str, Any], np.ndarray]:
    """``knn_evaluate``'s result and the class scores ``[N_test, num_classes]``."""
    scores = knn_scores(train_x, train_y, test_x, num_classes, k, temperature)
    result = {**topk_accuracy(scores, test_y), "k": int(k), "temperature": float(temperature)}
    log.info("kNN (k=%d, T=%g): top-1 %.4f, top-5 %.4f", k, temperature, result["top1"], result["top5"])
    return result, scores


def _normalise(x: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if t.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(t.shape)}")
    return torch.nn.functional.normalize(t, dim=1)
