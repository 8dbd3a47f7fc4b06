"""The one interface the training loop knows: an ``Objective`` maps a batch to a loss.

``forward(batch)`` takes a dict of tensors (keys depend on the objective) and returns a dict with a
scalar ``"loss"`` to back-propagate plus detached scalars to log. Objectives are built by name
from ``OBJECTIVES`` (``OBJECTIVES.create("hashtag", backbone, num_labels)``).
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from tagsight.registry import Registry


class Objective(nn.Module, abc.ABC):
    """A trainable module with a loss; subclasses hold their backbone as ``self.backbone``."""

    backbone: nn.Module

    @abc.abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return ``{"loss": scalar with grad, <name>: detached scalar, ...}``."""


OBJECTIVES: Registry[Objective] = Registry("objective")
