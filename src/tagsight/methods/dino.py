"""DINO (Caron et al. 2021): a student learns to match a momentum teacher's centred, sharpened outputs.

The ``dino`` method, top to bottom: its settings (``DinoConfig``) and schedules, the loss and collapse
diagnostics, the head, the objective (``DinoObjective``), and the method: SwAV's multi-crop stream and a
held-out collapse check that runs the teacher.

Batch keys as for SwAV (data/multicrop.py): ``"image"`` ``[B, n_global, 3, G, G]`` (at least 2 global
crops) and optional ``"local"`` ``[B, n_local, 3, L, L]``. Every crop goes through the *student*
(backbone, then the DINO head); only the global crops go through the *teacher*, a copy of the student
whose weights are an exponential moving average of the student's.

Head: a 3-layer MLP (Linear-GELU-Linear-GELU-Linear, with BatchNorm after the hidden layers when
``use_bn``) to a ``bottleneck_dim`` embedding ``z``, L2-normalised, then a weight-normalised linear layer
(rows of unit norm, no bias) to ``out_dim`` logits, computed in float32 also under bf16 autocast (the
teacher's are divided by a temperature of 0.04). The last layer gets zero gradient for the first
``freeze_batches`` training batches, and ``before_step`` (the Trainer's hook before each optimiser step)
then drops that gradient, as DINO's ``cancel_gradients_last_layer`` does: the optimiser skips the layer,
so neither weight decay nor momentum touches it while it is frozen, and its momentum starts from zero after.

Loss: teacher probabilities ``P_t = softmax((g_t - c) / T_t)`` (centre ``c``, teacher temperature ``T_t``)
and student log-probabilities ``log softmax(g_s / T_s)``; the loss is the cross-entropy
``-sum_k P_t log P_s`` averaged over every (teacher global crop i, student crop v != i) pair and the batch.
``T_t`` rises linearly from ``warmup_teacher_temp`` to ``teacher_temp`` over ``warmup_batches`` training
batches, then stays; ``T_s`` is ``student_temp``. After each loss the centre moves towards the batch mean
of the teacher logits: ``c <- m c + (1 - m) mean(g_t)`` with ``m = center_momentum``; the batch sum and
count are all-reduced over ranks when torch.distributed is initialised (one code path, as SwAV's
Sinkhorn), so W ranks with batch B/W keep the centre one process with batch B would.

Teacher: after every optimiser step (the Trainer's ``after_step`` hook) ``teacher <- m teacher +
(1 - m) student`` for every weight, with ``m`` rising from ``momentum_teacher`` to 1 on a cosine over
the run's ``total_steps``. The teacher's weights are buffers (never optimised, left out of DDP's
gradient and buffer synchronisation: every rank computes the same average), and the teacher runs in the
mode of the objective (batch statistics while training, as in DINO). ``self.backbone`` is the teacher's
backbone: DINO evaluates the teacher, so ``tagsight eval`` on a run folder loads it; the student is
``self.student``. Teacher, centre and both counters are in the state dict, so resume is exact.

Collapse diagnostics (logged every step, and on held-out images at the end of a run):
``teacher_entropy``: mean entropy of the teacher's distributions divided by ``log(out_dim)`` (near 1:
uniform outputs, centring won; near 0: sharp outputs); ``kl_to_centre``: mean KL divergence of each
image's teacher distribution to the mean distribution of the batch (the centre of the outputs in
probability space; the mutual information between image and output dimension), divided by
``log(min(out_dim, n))``: 0 when every image gets the same distribution, whichever way DINO collapses;
``feature_std``: SwAV's spread of the L2-normalised teacher embeddings (~1 spread out, 0 all equal).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from tagsight.collectives import DistEnv, all_gather_cat, all_reduce
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import make_loader
from tagsight.data.views import ViewStream
from tagsight.methods.base import (Method, Objective, RunConfig, batchnorm_passes, check_batchnorm_grouping,
                                   multicrop_views, register_method)
from tagsight.methods.swav import feature_spread, multicrop_stream
from tagsight.models.backbone import Backbone, DataConfig
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DinoConfig:
    """The ``dino`` method's settings: ``objective: {name: dino, out_dim: 65536, teacher_temp: 0.07, ...}``."""

    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    use_bn: bool = False                    # BatchNorm after the head's hidden layers
    student_temp: float = 0.1
    teacher_temp: float = 0.07              # after the warm-up
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: float = 30.0
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996         # the teacher EMA's momentum at step 0; cosine to 1 at the end
    freeze_last_layer_epochs: float = 1.0
    collapse_kl: float = 0.05               # collapsed when kl_to_centre falls below this ...
    collapse_std: float = 0.1               # ... or feature_std below this
    batchnorm: str = "resolution"           # BatchNorm batches: "resolution" (crops of one size together) or "crop"

    def __post_init__(self) -> None:
        check_batchnorm_grouping("dino", self.batchnorm)
        if self.out_dim < 2 or self.hidden_dim < 1 or self.bottleneck_dim < 1:
            raise ValueError("objective.dino.out_dim must be >= 2, hidden_dim and bottleneck_dim >= 1")
        if min(self.student_temp, self.teacher_temp, self.warmup_teacher_temp) <= 0:
            raise ValueError("objective.dino.student_temp, teacher_temp and warmup_teacher_temp must be > 0")
        if not (0 <= self.center_momentum < 1 and 0 <= self.momentum_teacher <= 1):
            raise ValueError("objective.dino.center_momentum must be in [0, 1) and momentum_teacher in [0, 1]")
        if self.warmup_teacher_temp_epochs < 0 or self.freeze_last_layer_epochs < 0:
            raise ValueError("objective.dino.warmup_teacher_temp_epochs and freeze_last_layer_epochs must be >= 0")
        if not (0 <= self.collapse_kl < 1 and 0 <= self.collapse_std < 1):
            raise ValueError("objective.dino.collapse_kl and collapse_std must be in [0, 1)")


@dataclass(frozen=True)
class DinoSchedule:
    """The run's length in the units the schedules need (from the loop's plan)."""

    total_steps: int = 1          # optimiser steps of the whole run: the teacher momentum's cosine
    freeze_batches: int = 0       # training batches with a frozen last layer
    warmup_batches: int = 0       # training batches of the teacher temperature warm-up

    def __post_init__(self) -> None:
        if self.total_steps < 1 or self.freeze_batches < 0 or self.warmup_batches < 0:
            raise ValueError(f"bad DINO schedule {self}: total_steps >= 1, batch counts >= 0")

    @classmethod
    def of(cls, cfg: DinoConfig, batches_per_epoch: int, epochs: int, accumulate: int) -> DinoSchedule:
        return cls(max(1, batches_per_epoch // accumulate * epochs),
                   round(cfg.freeze_last_layer_epochs * batches_per_epoch),
                   round(cfg.warmup_teacher_temp_epochs * batches_per_epoch))


def teacher_momentum(step: int, total: int, base: float) -> float:
    """``1 - (1 - base) (cos(pi step / total) + 1) / 2``: ``base`` at step 0, 1 at ``total``."""
    return 1 - (1 - base) * (math.cos(math.pi * min(step, total) / total) + 1) / 2


def teacher_temperature(batch: int, warmup: int, start: float, end: float) -> float:
    """Linear from ``start`` to ``end`` over ``warmup`` batches, then ``end``."""
    return end if batch >= warmup else start + (end - start) * batch / warmup


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], student_temp: float) -> torch.Tensor:
    """Mean over pairs (i, v != i) of ``mean_b -sum_k teacher[i] * log_softmax(student[v] / T_s)``.

    ``teacher[i]`` are the probabilities of global crop i; ``student[v]`` the logits of crop v (globals first).
    """
    total, pairs = student[0].new_zeros((), dtype=torch.float32), 0
    for i, q in enumerate(teacher):
        for v, s in enumerate(student):
            if v != i:
                total = total - (q * F.log_softmax(s.float() / student_temp, dim=1)).sum(dim=1).mean()
                pairs += 1
    return total / pairs


def teacher_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the rows of ``probs [n, K]`` divided by ``log K`` (in [0, 1])."""
    h = -(probs * probs.clamp_min(1e-30).log()).sum(dim=1).mean()
    return (h / math.log(probs.shape[1])).clamp(0, 1)


def kl_to_centre(probs: torch.Tensor) -> torch.Tensor:
    """Mean KL of each row to the mean row, divided by ``log(min(K, n))`` (0: every row the same)."""
    n, k = probs.shape
    if n < 2:
        return probs.new_zeros(())
    p = probs.clamp_min(1e-30)
    mean = p.mean(dim=0, keepdim=True)
    return ((p * (p.log() - mean.log())).sum(dim=1).mean() / math.log(min(k, n))).clamp_min(0)


def collapse_verdict(entropy: float, kl: float, spread: float, cfg: DinoConfig) -> dict[str, Any]:
    """``{"collapsed", "reason", "teacher_entropy", "kl_to_centre", "feature_std"}`` for measured diagnostics."""
    reasons = []
    if kl < cfg.collapse_kl:
        mode = "uniform outputs: the centring won" if entropy > 0.5 else "one output dominates: the sharpening won"
        reasons.append(f"teacher KL to the centre {kl:.3f} < {cfg.collapse_kl}: every image gets nearly the same "
                       f"output distribution ({mode})")
    if spread < cfg.collapse_std:
        reasons.append(f"feature spread {spread:.3f} < {cfg.collapse_std}: the embeddings are nearly identical")
    return {"collapsed": bool(reasons), "reason": "; ".join(reasons) or "not collapsed",
            "teacher_entropy": round(entropy, 4), "kl_to_centre": round(kl, 4), "feature_std": round(spread, 4)}


class DinoHead(nn.Module):
    """3-layer MLP to an L2-normalised bottleneck, then a weight-normalised linear layer to ``out_dim``."""

    def __init__(self, in_features: int, cfg: DinoConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        norm = (lambda: nn.BatchNorm1d(h)) if cfg.use_bn else nn.Identity
        self.mlp = nn.Sequential(nn.Linear(in_features, h), norm(), nn.GELU(), nn.Linear(h, h), norm(), nn.GELU(),
                                 nn.Linear(h, cfg.bottleneck_dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.Linear(cfg.bottleneck_dim, cfg.out_dim, bias=False)

    def forward(self, x: torch.Tensor, frozen: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, out_dim]`` and the normalised bottleneck ``[B, bottleneck_dim]``."""
        z = F.normalize(self.mlp(x).float(), dim=1)
        w = F.normalize(self.last_layer.weight.float(), dim=1)
        w = w.detach() + 0.0 * w if frozen else w
        with torch.autocast(z.device.type, enabled=False):   # fp32 logits: they are divided by T_t = 0.04
            return z @ w.t(), z


def _weights_as_buffers(module: nn.Module) -> list[str]:
    """Turn every parameter of ``module`` into a buffer of the same name (a frozen copy); returns the names."""
    names = [name for name, _ in module.named_parameters(remove_duplicate=False)]   # tied weights: every slot
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None:
                del sub._parameters[name]
                sub.register_buffer(name, p.detach().clone())
    return names


class DinoObjective(Objective):
    """Student (``student.backbone``, ``student.head``) and EMA teacher (``backbone``, ``teacher_head``)."""

    center: torch.Tensor         # buffers (registered in __init__)
    batches_seen: torch.Tensor
    updates: torch.Tensor

    def __init__(self, backbone: Backbone, cfg: DinoConfig | None = None, n_global: int = 2,
                 schedule: DinoSchedule | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DinoConfig()
        if n_global < 2:
            raise ValueError(f"n_global must be >= 2 (the teacher's crops teach the other views), got {n_global}")
        self.n_global, self.schedule = n_global, schedule or DinoSchedule()
        self.student = nn.ModuleDict({"backbone": backbone, "head": DinoHead(backbone.num_features, cfg)})
        self.backbone = copy.deepcopy(backbone)
        self.teacher_head = copy.deepcopy(self.student["head"])
        self._ema_names = _weights_as_buffers(self.backbone), _weights_as_buffers(self.teacher_head)
        ignored = [f"backbone.{n}" for n in self._ema_names[0]] + [f"teacher_head.{n}" for n in self._ema_names[1]]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self, ignored)
        self.register_buffer("center", torch.zeros(1, cfg.out_dim))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self._warned = False

    @property
    def frozen(self) -> bool:
        """Whether the student's last layer gets zero gradient in this batch."""
        return self.training and int(self.batches_seen) < self.schedule.freeze_batches

    def teacher_temp(self) -> float:
        c, s = self.cfg, self.schedule
        return teacher_temperature(int(self.batches_seen), s.warmup_batches, c.warmup_teacher_temp, c.teacher_temp)

    def momentum(self) -> float:
        """The teacher EMA momentum of the next optimiser step."""
        return teacher_momentum(int(self.updates), self.schedule.total_steps, self.cfg.momentum_teacher)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss", "loss_dino", "teacher_entropy", "kl_to_centre", "feature_std", "teacher_temp", ...}``."""
        crops, b = multicrop_views(batch, self.n_global, "dino")
        frozen, temp = self.frozen, self.teacher_temp()
        head = self.student["head"]
        if frozen and isinstance(head, DinoHead):
            self.freeze_for_step(head.last_layer.weight)
        passes = self.cfg.batchnorm
        student = torch.cat([self.student["head"](self.student["backbone"](c), frozen)[0]
                             for c in batchnorm_passes(crops, b, passes)])
        with torch.no_grad():
            teacher = [self.teacher_head(self.backbone(c)) for c in batchnorm_passes(crops[:1], b, passes)]
            logits, z = torch.cat([t[0] for t in teacher]), torch.cat([t[1] for t in teacher])
            probs = F.softmax((logits.float() - self.center) / temp, dim=1)
        loss = dino_loss(list(student.split(b)), list(probs.split(b)), self.cfg.student_temp)
        if self.training:
            self._update_center(logits.float())
            self.batches_seen += 1
        logs = self._diagnostics(probs, z)
        scalars = {"teacher_temp": temp, "teacher_momentum": self.momentum(), "last_layer_frozen": float(frozen)}
        return {"loss": loss, "loss_dino": loss.detach(), **logs,
                **{k: torch.tensor(v, device=loss.device) for k, v in scalars.items()}}

    @torch.no_grad()
    def _update_center(self, logits: torch.Tensor) -> None:
        total = all_reduce(logits.sum(dim=0, keepdim=True))
        count = all_reduce(torch.tensor(float(logits.shape[0]), device=logits.device))
        m = self.cfg.center_momentum
        self.center.mul_(m).add_(total / count, alpha=1 - m)

    def _diagnostics(self, probs: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        entropy, kl, spread = teacher_entropy(probs), kl_to_centre(probs), feature_spread(z)
        if self.training and not self.frozen and not self._warned:
            verdict = collapse_verdict(float(entropy), float(kl), float(spread), self.cfg)
            if verdict["collapsed"]:
                log.warning("DINO may be collapsing at batch %d: %s", int(self.batches_seen), verdict["reason"])
                self._warned = True
        return {"teacher_entropy": entropy.detach(), "kl_to_centre": kl.detach(), "feature_std": spread.detach()}

    @torch.no_grad()
    def after_step(self) -> None:
        """The Trainer's hook after each optimiser step: move the teacher towards the student."""
        m = self.momentum()
        for teacher, student, names in ((self.backbone, self.student["backbone"], self._ema_names[0]),
                                        (self.teacher_head, self.student["head"], self._ema_names[1])):
            for name in names:
                teacher.get_buffer(name).lerp_(student.get_parameter(name).detach(), 1 - m)
        self.updates += 1

    @torch.no_grad()
    def teacher_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher probabilities ``[B, out_dim]`` (centred, at ``teacher_temp``) and embeddings of plain images."""
        logits, z = self.teacher_head(self.backbone(images))
        return F.softmax((logits.float() - self.center) / self.cfg.teacher_temp, dim=1), z

    def verdict(self, probs: torch.Tensor, z: torch.Tensor) -> dict[str, Any]:
        """The collapse verdict of teacher outputs (``teacher_outputs`` of held-out images)."""
        return collapse_verdict(float(teacher_entropy(probs)), float(kl_to_centre(probs)), float(feature_spread(z)),
                                self.cfg)


@torch.no_grad()
def heldout_collapse(objective: DinoObjective, stream: ViewStream, workers: int, env: DistEnv) -> dict[str, Any]:
    """The teacher's collapse verdict on every held-out sample (centre crops), gathered from all ranks."""
    objective.eval()
    parts = [objective.teacher_outputs(b["image"].to(env.device)) for b in make_loader(stream, workers)]
    probs, z = (all_gather_cat(torch.cat([p[i].cpu() for p in parts]), env) for i in (0, 1))
    return {**objective.verdict(probs, z), "n_samples": int(z.shape[0])}


@register_method
class DinoMethod(Method[DinoConfig]):
    """Self-supervised DINO on every post's photo (hashtags unused), with a held-out collapse check."""

    name = "dino"
    config_class = DinoConfig

    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> DinoObjective:
        params = self.params(cfg)
        backbone = self.backbone(cfg)
        schedule = DinoSchedule.of(params, batches_per_epoch, cfg.loop.epochs, cfg.loop.accumulate)
        return DinoObjective(backbone, params, cfg.data.multicrop.n_global, schedule)

    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> ViewStream:
        return multicrop_stream(index, vocab, cfg, data_config, split, env)

    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        """Is the trained teacher collapsed on held-out images? (the untrained one for reference)."""
        assert isinstance(trained, DinoObjective) and isinstance(untrained, DinoObjective)
        result = {"collapse": heldout_collapse(trained, heldout, cfg.data.workers, env),
                  "untrained": heldout_collapse(untrained, heldout, cfg.data.workers, env)}
        c = result["collapse"]
        if c["collapsed"]:
            log.warning("DINO run COLLAPSED on held-out images: %s", c["reason"])
        log.info("held-out teacher entropy %.3f, KL to the centre %.3f, feature spread %.3f", c["teacher_entropy"],
                 c["kl_to_centre"], c["feature_std"])
        return result
