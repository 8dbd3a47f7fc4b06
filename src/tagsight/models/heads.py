"""Prediction heads put on top of backbone features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class LinearHead(nn.Linear):
    """``features [B, in_features] -> logits [B, num_labels]``; bias starts at zero."""

    def __init__(self, in_features: int, num_labels: int) -> None:
        if in_features < 1 or num_labels < 1:
            raise ValueError(f"in_features and num_labels must be >= 1, got {in_features}, {num_labels}")
        super().__init__(in_features, num_labels)
        nn.init.zeros_(self.bias)


@dataclass
class Standardiser:
    """Per-feature standardisation ``(x - mean) / std`` of a linear head's inputs, fitted on its training features."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor) -> Standardiser:
        return cls(x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
