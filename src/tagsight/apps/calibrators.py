"""Serving half of calibration: the calibrators, ``calibration.json`` reading and concept names.

Everything an app needs to answer from a bundle's ``calibration.json`` (``load_calibration``,
``calibrator_from_dict``, the ``Calibrator`` classes), without the fitting machinery of
``tagsight.apps.calibration`` (held-out posts, datasets, runs), so the server imports no
training code. ``tagsight.apps.calibration`` re-exports every name here.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from tagsight.fsio import ReasonError
from tagsight.registry import Registry

CALIBRATION_FILE = "calibration.json"
FORMAT = 1
ECE_BINS = 15


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def raw_probabilities(logits: np.ndarray, loss: str) -> np.ndarray:
    """The uncalibrated probabilities of a head trained with ``loss``: softmax, or sigmoid for BCE."""
    z = np.asarray(logits, dtype=np.float64)
    return sigmoid(z) if loss == "bce" else softmax(z)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width bins of (share of samples) * |accuracy - mean confidence|."""
    c, y = np.asarray(confidence, dtype=np.float64).ravel(), np.asarray(correct, dtype=np.float64).ravel()
    if not len(c):
        return float("nan")
    which = np.minimum((c * bins).astype(np.int64), bins - 1)
    total = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, y, bins) - np.bincount(which, c, bins))
    return float(gap.sum() / total.sum())


def presence(targets: np.ndarray) -> np.ndarray:
    return np.asarray(targets) > 0


def _target_distribution(targets: np.ndarray) -> np.ndarray:
    t = presence(targets).astype(np.float64)
    out: np.ndarray = t / np.maximum(t.sum(axis=1, keepdims=True), 1.0)
    return out


def _minimise(params: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], steps: int = 100) -> None:
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    opt.step(closure)


class Calibrator(abc.ABC):
    """Maps logits ``[N, L]`` to calibrated probabilities; ``fit`` on held-out logits and targets."""

    name: ClassVar[str]

    def __init__(self, loss: str = "softmax") -> None:
        self.loss = loss

    @abc.abstractmethod
    def fit(self, logits: np.ndarray, targets: np.ndarray) -> Calibrator: ...

    @abc.abstractmethod
    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def params(self) -> dict[str, float]: ...

    @abc.abstractmethod
    def scores(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """``nll`` and ``ece`` of ``probs`` in this calibrator's sense (see the module docstring)."""

    def evaluate(self, logits: np.ndarray, targets: np.ndarray) -> dict[str, dict[str, float]]:
        """Scores of the raw and the calibrated probabilities on ``(logits, targets)``."""
        return {"raw": self.scores(raw_probabilities(logits, self.loss), targets),
                "calibrated": self.scores(self.probabilities(logits), targets)}

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.name, "loss": self.loss, **self.params()}


CALIBRATORS: Registry[Calibrator] = Registry("calibrator")


@CALIBRATORS.register("temperature")
class TemperatureScaling(Calibrator):
    name = "temperature"

    def __init__(self, loss: str = "softmax", temperature: float = 1.0) -> None:
        super().__init__(loss)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def fit(self, logits: np.ndarray, targets: np.ndarray) -> TemperatureScaling:
        z = torch.as_tensor(logits, dtype=torch.float64)
        t = torch.as_tensor(_target_distribution(targets))
        log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        _minimise(log_t, lambda p: -(t * torch.log_softmax(z / p.exp(), dim=1)).sum(1).mean())
        self.temperature = float(log_t.detach().exp())
        return self

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

    def params(self) -> dict[str, float]:
        return {"temperature": self.temperature}

    def scores(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        t = _target_distribution(targets)
        nll = float(-(t * np.log(np.clip(probs, 1e-12, 1))).sum(1).mean())
        top = probs.argmax(1)
        correct = presence(targets)[np.arange(len(top)), top]
        return {"nll": nll, "ece": expected_calibration_error(probs.max(1), correct)}


@CALIBRATORS.register("platt")
class PlattScaling(Calibrator):
    name = "platt"

    def __init__(self, loss: str = "softmax", a: float = 1.0, b: float = 0.0) -> None:
        super().__init__(loss)
        self.a, self.b = float(a), float(b)

    def _inputs(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)
        return z if self.loss == "bce" else log_softmax(z)

    def fit(self, logits: np.ndarray, targets: np.ndarray) -> PlattScaling:
        u = torch.as_tensor(self._inputs(logits))
        y = torch.as_tensor(presence(targets), dtype=torch.float64)
        ab = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        _minimise(ab, lambda p: bce(p[0] * u + p[1], y))
        self.a, self.b = (float(v) for v in ab.detach())
        return self

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(self.a * self._inputs(logits) + self.b)

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    def scores(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        y = presence(targets)
        p = np.clip(probs, 1e-12, 1 - 1e-12)
        nll = float(-(y * np.log(p) + (~y) * np.log(1 - p)).mean())
        return {"nll": nll, "ece": expected_calibration_error(probs, y)}


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    d = dict(d)
    return CALIBRATORS.create(d.pop("method"), **d)


def concept_name(label: str) -> str:
    """A WordNet synset name as words: ``golden_retriever.n.01`` -> ``golden retriever``."""
    return label.split(".")[0].replace("_", " ")



def load_calibration(bundle_dir: str | Path) -> dict[str, Any]:
    path = Path(bundle_dir) / CALIBRATION_FILE
    if not path.is_file():
        raise ReasonError("not_calibrated", f"{path} is missing: run 'tagsight apps calibrate RUN_DIR'")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ReasonError("bad_calibration", f"{path}: not a JSON object")
    if data.get("format") != FORMAT:
        raise ReasonError("bad_calibration", f"{path}: unsupported format {data.get('format')!r}")
    return data
