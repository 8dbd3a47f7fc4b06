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


def multicrop_views(batch: dict[str, torch.Tensor], n_global: int, method: str) -> tuple[list[torch.Tensor], int]:
    """A multi-crop batch as crop-major stacks: ``[global crops of every sample, local crops ...]``, and B.

    ``batch["image"]`` is ``[B, n_global, 3, G, G]``; the optional ``batch["local"]`` ``[B, N, 3, L, L]``.
    """
    if "image" not in batch:
        raise KeyError(f"{method} batch lacks 'image' (has {sorted(batch)})")
    image = batch["image"]
    if image.ndim != 5 or image.shape[1] != n_global:
        raise ValueError(f"expected image [B, {n_global}, 3, H, W] (multi-crop), got {tuple(image.shape)}")
    b = image.shape[0]
    crops = [image.transpose(0, 1).flatten(0, 1)]            # crop-major: all first crops, then all second
    local = batch.get("local")
    if local is not None and local.shape[1] > 0:
        if local.ndim != 5 or local.shape[0] != b:
            raise ValueError(f"expected local [{b}, N, 3, h, w], got {tuple(local.shape)}")
        crops.append(local.transpose(0, 1).flatten(0, 1))
    return crops, b


OBJECTIVES: Registry[Objective] = Registry("objective")
