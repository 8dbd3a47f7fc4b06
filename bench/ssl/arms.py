"""The arms of the SwAV / DINO comparison: tagsight's objectives and the same methods built from lightly.

Every arm is an ``nn.Module`` with ``forward(batch, step) -> {"loss": ...}``, ``before_step(step)`` (after the
backward pass, before the optimiser step), ``after_step(step)`` (after it) and ``backbone_to_evaluate()``.
All arms get the same timm backbone (built by tagsight, same seed), the same crops (``{"image": [B, G, 3, S, S],
"local": [B, L, 3, s, s]}``), the same optimiser and the same settings, read from the preset of the method:

- ``tagsight`` arms are ``SwavObjective`` / ``DinoObjective`` built as ``tagsight pretrain`` builds them.
- ``lightly`` arms follow lightly's own examples: ``SwaVProjectionHead`` + ``SwaVPrototypes`` (normalised
  before each step, frozen for the same number of steps) + ``SwaVLoss``; ``DINOProjectionHead`` (student,
  and a copy without gradients as the teacher, moved with ``update_momentum`` on lightly's
  ``cosine_schedule``, given one more step than the run so that it ends at 1 as DINO's does; lightly's own
  cosine spans ``max_steps - 1``) + ``DINOLoss`` with the teacher temperature from lightly's
  ``linear_warmup_schedule``, last-layer gradients cancelled during the freeze.

DINO is evaluated through its teacher in both implementations (as the paper does); SwAV through its backbone.
``start_as`` gives a lightly DINO arm the tagsight arm's initial head weights (``--same-init``), so that the two
differ only in their code, not in their random draws.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tagsight.models.backbone import Backbone
from tagsight.methods.dino import DinoConfig, DinoObjective, DinoSchedule
from tagsight.methods.swav import SwavConfig, SwavObjective

METHODS = ("swav", "dino")
IMPLS = ("tagsight", "lightly")


def _views(batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Global and local crops as lists of ``[B, 3, S, S]`` tensors (one per view)."""
    local = batch.get("local")
    return list(batch["image"].unbind(1)), ([] if local is None else list(local.unbind(1)))


class TagsightArm(nn.Module):
    """A tagsight objective behind the arm interface (its own ``after_step`` when it has one)."""

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self.objective(batch)

    def before_step(self, step: int) -> None:
        hook = getattr(self.objective, "before_step", None)     # DINO: drop the frozen last layer's gradient
        if hook is not None:
            hook()

    def after_step(self, step: int) -> None:
        hook = getattr(self.objective, "after_step", None)
        if hook is not None:
            hook()

    def backbone_to_evaluate(self) -> Backbone:
        return self.objective.backbone       # DINO: the teacher's backbone; SwAV: the trained backbone


class LightlySwav(nn.Module):
    """SwAV from lightly's parts (its SwAV example, with multi-crop)."""

    def __init__(self, backbone: Backbone, cfg: SwavConfig, freeze_steps: int) -> None:
        super().__init__()
        from lightly.loss import SwaVLoss
        from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

        self.backbone = backbone
        hidden = cfg.hidden_dim or backbone.num_features
        self.head = SwaVProjectionHead(backbone.num_features, hidden, cfg.projection_dim)
        self.prototypes = SwaVPrototypes(cfg.projection_dim, cfg.prototypes, n_steps_frozen_prototypes=freeze_steps)
        self.loss = SwaVLoss(cfg.temperature, cfg.sinkhorn_iterations, cfg.epsilon)

    def _scores(self, x: torch.Tensor, step: int) -> torch.Tensor:
        return self.prototypes(F.normalize(self.head(self.backbone(x)), dim=1), step)

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.prototypes.normalize()
        glob, local = _views(batch)
        loss = self.loss([self._scores(v, step) for v in glob], [self._scores(v, step) for v in local])
        return {"loss": loss.reshape(())}

    def before_step(self, step: int) -> None:
        return None

    def after_step(self, step: int) -> None:
        return None

    def backbone_to_evaluate(self) -> Backbone:
        return self.backbone


class LightlyDino(nn.Module):
    """DINO from lightly's parts (its DINO example, with multi-crop and per-step schedules)."""

    def __init__(self, backbone: Backbone, cfg: DinoConfig, schedule: DinoSchedule) -> None:
        super().__init__()
        from lightly.loss import DINOLoss
        from lightly.models.modules import DINOProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        self.cfg, self.schedule = cfg, schedule
        self.student_backbone = backbone
        def head() -> nn.Module:
            return DINOProjectionHead(backbone.num_features, cfg.hidden_dim, cfg.bottleneck_dim, cfg.out_dim,
                                      batch_norm=cfg.use_bn, freeze_last_layer=1)

        self.student_head, self.teacher_head = head(), head()    # weight_norm modules cannot be deep-copied
        self.teacher_head.load_state_dict(self.student_head.state_dict())
        self.teacher_backbone = copy.deepcopy(backbone)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.loss = DINOLoss(cfg.out_dim, warmup_teacher_temp=cfg.warmup_teacher_temp, teacher_temp=cfg.teacher_temp,
                             student_temp=cfg.student_temp, center_momentum=cfg.center_momentum)

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        from lightly.utils.scheduler import linear_warmup_schedule

        glob, local = _views(batch)
        temp = linear_warmup_schedule(step, self.schedule.warmup_batches, self.cfg.warmup_teacher_temp,
                                      self.cfg.teacher_temp)
        with torch.no_grad():
            teacher = [self.teacher_head(self.teacher_backbone(v)) for v in glob]
        student = [self.student_head(self.student_backbone(v)) for v in glob + local]
        return {"loss": self.loss(teacher, student, teacher_temp=temp)}

    def before_step(self, step: int) -> None:
        # lightly freezes by epoch; "epoch 0" while the step is inside the freeze, "epoch 1" after it.
        self.student_head.cancel_last_layer_gradients(current_epoch=int(step >= self.schedule.freeze_batches))

    def after_step(self, step: int) -> None:
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        # lightly's cosine runs over max_steps - 1; max_steps = T + 1 gives DINO's (and tagsight's) schedule over T.
        m = cosine_schedule(step, self.schedule.total_steps + 1, self.cfg.momentum_teacher, 1.0)
        update_momentum(self.student_backbone, self.teacher_backbone, m)
        update_momentum(self.student_head, self.teacher_head, m)

    def backbone_to_evaluate(self) -> Backbone:
        return self.teacher_backbone


def build_arm(method: str, impl: str, backbone: Backbone, objective: Any, n_global: int,
              freeze_steps: int, schedule: DinoSchedule) -> nn.Module:
    """The arm ``impl`` of ``method`` on ``backbone``; ``objective`` is the preset's SwavConfig or DinoConfig."""
    builders: dict[tuple[str, str], Callable[[], nn.Module]] = {
        ("swav", "tagsight"): lambda: TagsightArm(SwavObjective(backbone, objective, n_global, freeze_steps)),
        ("dino", "tagsight"): lambda: TagsightArm(DinoObjective(backbone, objective, n_global, schedule)),
        ("swav", "lightly"): lambda: LightlySwav(backbone, objective, freeze_steps),
        ("dino", "lightly"): lambda: LightlyDino(backbone, objective, schedule),
    }
    if (method, impl) not in builders:
        raise ValueError(f"unknown arm {method}/{impl}: methods {METHODS}, implementations {IMPLS}")
    return builders[(method, impl)]()


def start_as(theirs: nn.Module, ours: nn.Module) -> None:
    """Give lightly's DINO arm ``theirs`` the initial heads of tagsight's DINO arm ``ours`` (student and teacher; the
    backbones are already equal when both were built from the same seed). Linear and BatchNorm layers are copied
    one to one: lightly's Linear before a BatchNorm has no bias where ours has a zero one, which the BatchNorm cancels;
    lightly's weight-normalised last layer (``weight_g`` 1, frozen) gets our last layer's weight as ``weight_v``."""
    if not isinstance(theirs, LightlyDino) or not isinstance(ours, TagsightArm) or \
            not isinstance(ours.objective, DinoObjective):
        raise ValueError("start_as takes a lightly DINO arm and a tagsight DINO arm")
    with torch.no_grad():
        for mine, their in ((ours.objective.student["head"], theirs.student_head),
                            (ours.objective.teacher_head, theirs.teacher_head)):
            for a, b in zip(mine.mlp, their.layers, strict=True):
                if isinstance(b, nn.Linear):
                    b.weight.copy_(a.weight)
                    if b.bias is not None:
                        b.bias.copy_(a.bias)
                elif isinstance(b, nn.BatchNorm1d):
                    b.load_state_dict(a.state_dict())
            their.last_layer.weight_v.copy_(mine.last_layer.weight)
