"""Prediction heads put on top of backbone features."""

from __future__ import annotations

from torch import nn


class LinearHead(nn.Linear):
    """``features [B, in_features] -> logits [B, num_labels]``; bias starts at zero."""

    def __init__(self, in_features: int, num_labels: int) -> None:
        if in_features < 1 or num_labels < 1:
            raise ValueError(f"in_features and num_labels must be >= 1, got {in_features}, {num_labels}")
        super().__init__(in_features, num_labels)
        nn.init.zeros_(self.bias)
