"""Image classification (full fine-tuning): backbone + linear head, softmax cross-entropy on a class index.

The objective only, not a registered ``Method``: fine-tuning (``tagsight.eval.finetune``) trains it on
labelled image folders with its own config, stream and evaluation, not on a dataset's posts.

Batch keys: ``"image"`` float ``[B, 3, H, W]``; ``"label"`` int64 ``[B]`` in ``[0, num_classes)``.
``forward`` returns ``{"loss", "loss_ce", "accuracy"}``: the mean cross-entropy (computed in float32
even under autocast; optional label smoothing) and the batch's top-1 accuracy (detached).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tagsight.models.backbone import Backbone
from tagsight.models.heads import LinearHead
from tagsight.methods.base import Objective


class ClassifyObjective(Objective):
    """Predict one class per image; ``backbone`` and ``head`` are saved separately in checkpoints."""

    def __init__(self, backbone: Backbone, num_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.backbone = backbone
        self.head = LinearHead(backbone.num_features, int(num_classes))
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]``; the caller decides about ``torch.no_grad``."""
        logits: torch.Tensor = self.head(self.backbone(images))
        return logits

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labels = self._check(batch)
        logits = self.predict(batch["image"]).float()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "loss_ce": loss.detach(), "accuracy": accuracy}

    def _check(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = {"image", "label"} - set(batch)
        if missing:
            raise KeyError(f"classify batch lacks {sorted(missing)} (has {sorted(batch)})")
        image, labels = batch["image"], batch["label"]
        if image.ndim != 4 or tuple(labels.shape) != (image.shape[0],):
            raise ValueError(f"expected image [B,3,H,W] and label [B], got {tuple(image.shape)} and {tuple(labels.shape)}")
        labels = labels.long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        return labels
