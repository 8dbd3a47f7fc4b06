"""Hashtag prediction (WSL, Mahajan et al. 2018): backbone + linear head over the vocabulary.

The ``hashtag`` method, top to bottom: its settings (``HashtagConfig``), the loss, the objective
(``HashtagObjective``), its stream (``HashtagStream``: square-root resampled posts with 1/k targets)
and its held-out evaluation (mAP, P@1, P@5, R@5 and per-label AP against the untrained model).

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tagsight.collectives import DistEnv, all_gather_cat
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import HashtagStream, make_loader
from tagsight.data.transforms import eval_transform, train_transform
from tagsight.methods.base import Method, Objective, RunConfig, register_method, stream_config
from tagsight.metrics import hashtag_metrics, per_label_average_precision
from tagsight.models.backbone import Backbone, DataConfig
from tagsight.models.heads import LinearHead
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

HASHTAG_LOSSES = ("softmax", "bce")


@dataclass(frozen=True)
class HashtagConfig:
    """The ``hashtag`` method's settings: ``objective: {name: hashtag, loss: softmax}``."""

    loss: str = "softmax"          # softmax (the paper's, over 1/k targets) or bce (per-label sigmoids)

    def __post_init__(self) -> None:
        if self.loss not in HASHTAG_LOSSES:
            raise ValueError(f"objective.loss must be one of {HASHTAG_LOSSES}, got {self.loss!r}")


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
        logits: torch.Tensor = self.head(self.backbone(images))
        return logits

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


@torch.no_grad()
def predict_heldout(objective: HashtagObjective, stream: HashtagStream, workers: int,
                    env: DistEnv) -> tuple[np.ndarray, np.ndarray]:
    """Scores and targets of every held-out sample, gathered from all ranks."""
    objective.eval()
    scores, targets = [], []
    for batch in make_loader(stream, workers):
        scores.append(objective.predict(batch["image"].to(env.device)).float().cpu())
        targets.append(batch["target"])
    s, t = torch.cat(scores), torch.cat(targets)
    return all_gather_cat(s, env).numpy(), all_gather_cat(t, env).numpy()


def evaluate_hashtags(objective: HashtagObjective, stream: HashtagStream, workers: int, env: DistEnv,
                      vocab: Vocabulary) -> dict[str, Any]:
    """Held-out hashtag metrics, plus the AP of every label that has a held-out positive."""
    scores, targets = predict_heldout(objective, stream, workers, env)
    ap = per_label_average_precision(scores, targets)
    per_label = {vocab.labels[i].label: round(float(a), 4) for i, a in enumerate(ap) if not np.isnan(a)}
    return {**hashtag_metrics(scores, targets), "per_label_ap": per_label}


@register_method
class HashtagMethod(Method[HashtagConfig]):
    """Weakly supervised pretraining on hashtags: the vocabulary's labels of each post are its targets."""

    name = "hashtag"
    config_class = HashtagConfig

    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> HashtagObjective:
        return HashtagObjective(self.backbone(cfg), num_labels, loss=self.params(cfg).loss)

    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> HashtagStream:
        transform = train_transform(data_config) if split == "train" else eval_transform(data_config)
        return HashtagStream(index, vocab, transform, stream_config(cfg, split), rank=env.rank,
                             world_size=env.world_size)

    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        """Held-out hashtag mAP, P@1, P@5, R@5 and per-label AP of the trained and the untrained model."""
        assert isinstance(trained, HashtagObjective) and isinstance(untrained, HashtagObjective)
        result = {"trained": evaluate_hashtags(trained, heldout, cfg.data.workers, env, vocab),
                  "untrained": evaluate_hashtags(untrained, heldout, cfg.data.workers, env, vocab)}
        log.info("held-out hashtag mAP %.3f (untrained %.3f)", result["trained"]["mAP"], result["untrained"]["mAP"])
        return result
