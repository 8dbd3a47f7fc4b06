"""Hashtag prediction (WSL, Mahajan et al. 2018): backbone + linear head over the vocabulary.

Batch keys: ``"image"`` float ``[B, 3, H, W]``; ``"target"`` float ``[B, L]`` with 1/k on each of a
post's k labels and 0 elsewhere; optional ``"weight"`` float ``[B]`` per-sample weights.

Losses, for logits z and target row t of one sample:

* ``softmax`` (default, the paper's): ``-(t * log_softmax(z)).sum()``, cross-entropy against the
  1/k distribution. It beat per-label sigmoids in the paper.
* ``bce``: ``mean_c BCEWithLogits(z_c, t_c > 0)``, independent per-label binary cross-entropy.

The batch loss is the mean over samples, weighted by ``"weight"`` when given
(``sum(w * loss) / sum(w)``; 0 when all weights are 0). Losses are computed in float32 even when
the forward pass runs under autocast. A sample with an all-zero target contributes 0 to the
softmax loss and counts as a miss in ``pos_in_top1``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from tagsight.models.backbone import Backbone
from tagsight.models.heads import LinearHead
from tagsight.objectives.base import OBJECTIVES, Objective

log = logging.getLogger(__name__)

HASHTAG_LOSSES = ("softmax", "bce")


@OBJECTIVES.register("hashtag")
class HashtagObjective(Objective):
    """Predict a post's hashtags from its image; ``backbone`` and ``head`` are saved separately."""

    def __init__(self, backbone: Backbone, num_labels: int, loss: str = "softmax") -> None:
        super().__init__()
        if loss not in HASHTAG_LOSSES:
            raise ValueError(f"hashtag loss {loss!r} is not one of {HASHTAG_LOSSES}")
        if int(num_labels) != num_labels or num_labels < 1:
            raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
        self.backbone = backbone
        self.head = LinearHead(backbone.num_features, int(num_labels))
        self.num_labels = int(num_labels)
        self.loss_kind = loss

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_labels]``; the caller decides about ``torch.no_grad``."""
        return self.head(self.backbone(images))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss", "loss_<kind>", "pos_in_top1"}`` for one batch (see module docstring)."""
        target, weight = self._check(batch)
        logits = self.predict(batch["image"]).float()
        per_sample = per_sample_loss(logits, target, self.loss_kind)
        loss = weighted_mean(per_sample, weight)
        return {
            "loss": loss,
            f"loss_{self.loss_kind}": loss.detach(),
            "pos_in_top1": pos_in_top1(logits.detach(), target),
        }

    def _check(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        missing = {"image", "target"} - set(batch)
        if missing:
            raise KeyError(f"hashtag batch lacks {sorted(missing)} (has {sorted(batch)})")
        image, target, weight = batch["image"], batch["target"].float(), batch.get("weight")
        b = image.shape[0]
        if image.ndim != 4 or tuple(target.shape) != (b, self.num_labels):
            raise ValueError(f"expected image [B,3,H,W] and target [B,{self.num_labels}], "
                             f"got {tuple(image.shape)} and {tuple(target.shape)}")
        if weight is not None and tuple(weight.shape) != (b,):
            raise ValueError(f"expected weight [{b}], got {tuple(weight.shape)}")
        return target, None if weight is None else weight.float()


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Loss of each sample ``[B]`` for ``kind`` in ``HASHTAG_LOSSES``."""
    if kind == "softmax":
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    if kind == "bce":
        positives = (target > 0).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, positives, reduction="none").mean(dim=1)
    raise ValueError(f"hashtag loss {kind!r} is not one of {HASHTAG_LOSSES}")


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Plain mean, or ``sum(w * v) / sum(w)`` (0 when the weights sum to 0)."""
    if weight is None:
        return values.mean()
    total = weight.sum()
    return (weight * values).sum() / total.clamp_min(torch.finfo(values.dtype).tiny)


def pos_in_top1(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose highest logit is one of their labels (detached scalar)."""
    top1 = logits.argmax(dim=1, keepdim=True)
    return (target.gather(1, top1) > 0).float().mean().detach()
