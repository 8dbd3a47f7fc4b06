"""SwAV (Caron et al. 2020), the objective of SEER: swap the prototype assignments of views of one photo.

The ``swav`` method, top to bottom: its settings (``SwavConfig``), Sinkhorn-Knopp and the swapped loss,
the collapse diagnostics, the objective (``SwavObjective``), its multi-crop stream (``multicrop_stream``,
shared with DINO) and its held-out collapse check.

Batch keys: ``"image"`` float ``[B, n_global, 3, G, G]`` (at least 2 global crops) and optional
``"local"`` ``[B, n_local, 3, L, L]`` (data/multicrop.py). Each crop goes through the backbone and a
projection head (Linear-BN-ReLU-Linear, or one Linear when ``hidden_dim`` is 0) to an L2-normalised
embedding ``z``; its scores are cosine similarities with ``K`` prototypes ``c`` (a Linear without bias).
As in the official SwAV, the prototypes are put back on the unit sphere in place before each training
forward pass and then scored as they are, so their gradient is the plain linear one (no gradient through
a normalisation, which would project it onto the sphere and scale it by ``1 / |c|``). The crops of one
resolution go through backbone and head together (one BatchNorm batch per resolution), or with
``batchnorm: crop`` each crop on its own (one BatchNorm batch of B per crop, as lightly's SwAV example).

For each global crop ``i`` the codes ``q_i`` are the Sinkhorn-Knopp solution of the scores of that
crop over the batch (plus a queue of past embeddings, see below) with entropy ``epsilon``: every
sample's code sums to 1 and every prototype receives ~``B/K`` of the mass. The loss is
``mean_i mean_{v != i} mean_b -sum_k q_i[b,k] log softmax(z_v[b] . c / temperature)[k]``.

Distributed: the Sinkhorn sums (and the max used for numerical stability) are all-reduced over
ranks when ``torch.distributed`` is initialised, so W ranks with batch B/W compute the codes one
process with batch B would; one code path, a no-op for a single process.

Prototypes are frozen for the first ``freeze_batches`` training batches: zero gradient in the forward pass,
and ``before_step`` (the Trainer's hook before each optimiser step) then drops it, as the official SwAV sets
the prototypes' gradient to None, so neither weight decay nor momentum moves them while frozen. The queue holds the last
``queue_length`` embeddings of each global crop of *all* ranks (gathered, identical on every rank,
in global sample order, so the rank-0 checkpoint is the whole state, the same as one process's, and
resume is exact at any world size); once full, rank
r adds rows ``r, r + W, ...`` to its Sinkhorn columns. Queue, fill count and batch counter are
buffers, saved with the model.

Collapse diagnostics (logged every step, and on held-out images at the end of a run):
``assign_entropy``: entropy of the histogram of hard prototype assignments, divided by
``log(min(K, n))`` (1 = spread evenly over as many prototypes as possible, 0 = all in one);
``feature_std``: per-dimension standard deviation of the embeddings, averaged over dimensions and
multiplied by ``sqrt(dim)`` (~1 for embeddings spread over the sphere, 0 when they are all equal).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tagsight.collectives import DistEnv, all_gather, all_gather_cat, all_reduce, rank_world
from tagsight.data.index import SampleIndex
from tagsight.data.multicrop import multicrop_transform
from tagsight.data.pipeline import make_loader
from tagsight.data.transforms import eval_transform
from tagsight.data.views import ViewStream
from tagsight.methods.base import (Method, Objective, RunConfig, batchnorm_passes, check_batchnorm_grouping,
                                   multicrop_views, register_method, stream_config)
from tagsight.models.backbone import Backbone, DataConfig
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwavConfig:
    """The ``swav`` method's settings: ``objective: {name: swav, prototypes: 3000, epsilon: 0.05, ...}``."""

    prototypes: int = 3000
    projection_dim: int = 128
    hidden_dim: int = 2048            # 0: a single linear projection (no BatchNorm)
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    freeze_prototypes_epochs: float = 1.0
    queue_length: int = 0             # 0: no queue; else embeddings kept per global crop (all ranks together)
    collapse_entropy: float = 0.1     # collapsed when assign_entropy falls below this ...
    collapse_std: float = 0.1         # ... or feature_std below this
    batchnorm: str = "resolution"     # BatchNorm batches: "resolution" (the crops of one size together) or "crop"

    def __post_init__(self) -> None:
        check_batchnorm_grouping("swav", self.batchnorm)
        if self.prototypes < 2 or self.projection_dim < 1 or self.hidden_dim < 0:
            raise ValueError("objective.swav.prototypes must be >= 2, projection_dim >= 1, hidden_dim >= 0")
        if self.temperature <= 0 or self.epsilon <= 0:
            raise ValueError("objective.swav.temperature and objective.swav.epsilon must be > 0")
        if self.sinkhorn_iterations < 1:
            raise ValueError(f"objective.swav.sinkhorn_iterations must be >= 1, got {self.sinkhorn_iterations}")
        if self.freeze_prototypes_epochs < 0 or self.queue_length < 0:
            raise ValueError("objective.swav.freeze_prototypes_epochs and queue_length must be >= 0")
        if not (0 <= self.collapse_entropy < 1 and 0 <= self.collapse_std < 1):
            raise ValueError("objective.swav.collapse_entropy and collapse_std must be in [0, 1)")


def _interleave(gathered: torch.Tensor, per_rank: int) -> torch.Tensor:
    """Rank-major rows ``[W * b, D]`` into global-position order (rank r's row j is position j * W + r)."""
    world = gathered.shape[0] // per_rank
    return gathered.view(world, per_rank, -1).transpose(0, 1).reshape(world * per_rank, -1)


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Codes ``[B, K]`` for scores ``[B, K]``: rows sum to 1, columns to ~B/K (exactly, as iterations grow).

    Over several ranks the B columns are the union of every rank's rows (sums all-reduced).
    """
    scores = scores.float()
    q = torch.exp((scores - all_reduce(scores.max(), "max")) / epsilon).t()   # [K, B]
    k = q.shape[0]
    b = all_reduce(torch.tensor(float(q.shape[1]), device=q.device))
    q /= all_reduce(q.sum())
    for _ in range(iterations):
        q /= all_reduce(q.sum(dim=1, keepdim=True)).clamp_min(1e-30)
        q /= k
        q /= q.sum(dim=0, keepdim=True).clamp_min(1e-30)
        q /= b
    return (q * b).t()


def swapped_loss(scores: list[torch.Tensor], codes: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """``mean_i mean_{v != i} mean_b -sum_k codes[i] * log_softmax(scores[v] / T)``; ``codes[i]`` is crop i's."""
    total = scores[0].new_zeros(())
    for i, q in enumerate(codes):
        others = [v for v in range(len(scores)) if v != i]
        sub = sum(-(q * F.log_softmax(scores[v] / temperature, dim=1)).sum(dim=1).mean() for v in others)
        total = total + sub / len(others)
    return total / len(codes)


def assignment_entropy(scores: torch.Tensor) -> torch.Tensor:
    """Entropy of the hard-assignment histogram over prototypes divided by ``log(min(K, n))`` (in [0, 1])."""
    n, k = scores.shape
    if n < 2:
        return scores.new_ones(())
    counts = torch.bincount(scores.argmax(dim=1), minlength=k).float()
    p = counts[counts > 0] / n
    return (-(p * p.log()).sum() / math.log(min(k, n))).clamp(0, 1)


def feature_spread(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension std of embeddings ``[n, D]`` times ``sqrt(D)`` (~1 spread out, 0 collapsed)."""
    if z.shape[0] < 2:
        return z.new_zeros(())
    return z.float().std(dim=0).mean() * math.sqrt(z.shape[1])


def collapse_verdict(entropy: float, spread: float, cfg: SwavConfig) -> dict[str, Any]:
    """``{"collapsed", "reason", "assignment_entropy", "feature_std"}`` for measured diagnostics."""
    reasons = []
    if entropy < cfg.collapse_entropy:
        reasons.append(f"prototype-assignment entropy {entropy:.3f} < {cfg.collapse_entropy}: "
                       "nearly every image goes to the same few prototypes")
    if spread < cfg.collapse_std:
        reasons.append(f"feature spread {spread:.3f} < {cfg.collapse_std}: the embeddings are nearly identical")
    return {"collapsed": bool(reasons), "reason": "; ".join(reasons) or "not collapsed",
            "assignment_entropy": round(entropy, 4), "feature_std": round(spread, 4)}


def projection_head(in_features: int, cfg: SwavConfig) -> nn.Module:
    if cfg.hidden_dim == 0:
        return nn.Linear(in_features, cfg.projection_dim)
    return nn.Sequential(nn.Linear(in_features, cfg.hidden_dim), nn.BatchNorm1d(cfg.hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(cfg.hidden_dim, cfg.projection_dim))


class SwavObjective(Objective):
    """Backbone + projection head + prototypes, trained with swapped Sinkhorn assignments."""

    queue: torch.Tensor          # buffers (registered in __init__): per global crop, the last projections
    queue_filled: torch.Tensor
    batches_seen: torch.Tensor

    def __init__(self, backbone: Backbone, cfg: SwavConfig | None = None, n_global: int = 2,
                 freeze_batches: int = 0) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SwavConfig()
        if n_global < 2 or freeze_batches < 0:
            raise ValueError(f"n_global must be >= 2 and freeze_batches >= 0, got {n_global}, {freeze_batches}")
        self.backbone, self.n_global, self.freeze_batches = backbone, n_global, int(freeze_batches)
        self.head = projection_head(backbone.num_features, cfg)
        self.prototypes = nn.Linear(cfg.projection_dim, cfg.prototypes, bias=False)
        self.register_buffer("queue", torch.zeros(n_global if cfg.queue_length else 0, cfg.queue_length,
                                                  cfg.projection_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.int64))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))
        self._warned = False

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections ``[B, projection_dim]`` of images ``[B, 3, H, W]``."""
        return F.normalize(self.head(self.backbone(images)).float(), dim=1)

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Put every prototype back on the unit sphere, in place (SwAV does this before each training step)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def prototype_weights(self) -> torch.Tensor:
        """Prototypes ``[K, D]`` as scored: in training the in-place normalised weights themselves (the gradient is
        the plain linear one, no gradient through a normalisation), without gradient (but still used) while frozen;
        out of training a normalised copy."""
        if not self.training:
            return F.normalize(self.prototypes.weight.float(), dim=1)
        w = self.prototypes.weight.float()
        return w.detach() + 0.0 * w if self.frozen else w

    @property
    def frozen(self) -> bool:
        return self.training and int(self.batches_seen) < self.freeze_batches

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss", "loss_swav", "assign_entropy", "feature_std", "prototypes_frozen", "queue_used"}``."""
        crops, b = multicrop_views(batch, self.n_global, "swav")
        if self.training:
            self.normalize_prototypes()
        z = torch.cat([self.embed(c) for c in batchnorm_passes(crops, b, self.cfg.batchnorm)])
        w, frozen = self.prototype_weights(), self.frozen
        if frozen:
            self.freeze_for_step(self.prototypes.weight)
        scores = (z @ w.t()).split(b)
        z_global = z[: self.n_global * b].detach()
        codes, queued = self._codes(scores, z_global.split(b), w.detach())
        loss = swapped_loss(list(scores), codes, self.cfg.temperature)
        if self.training:
            self._push(z_global.split(b))
            self.batches_seen += 1
        logs = self._diagnostics(torch.cat(scores[: self.n_global]).detach(), z_global)
        return {"loss": loss, "loss_swav": loss.detach(), **logs,
                "prototypes_frozen": torch.tensor(float(frozen)), "queue_used": torch.tensor(float(queued))}

    @torch.no_grad()
    def _codes(self, scores: Sequence[torch.Tensor], z_global: Sequence[torch.Tensor],
               w: torch.Tensor) -> tuple[list[torch.Tensor], bool]:
        use_queue = self.cfg.queue_length > 0 and int(self.queue_filled) >= self.cfg.queue_length
        rank, world = rank_world()
        codes = []
        for i in range(self.n_global):
            s = scores[i].detach().float()
            if use_queue:
                s = torch.cat([s, self.queue[i, rank::world] @ w.t()])
            codes.append(sinkhorn(s, self.cfg.epsilon, self.cfg.sinkhorn_iterations)[: z_global[i].shape[0]])
        return codes, use_queue

    @torch.no_grad()
    def _push(self, z_global: Sequence[torch.Tensor]) -> None:
        if self.cfg.queue_length == 0:
            return
        for i in range(self.n_global):
            new = _interleave(all_gather(z_global[i]), z_global[i].shape[0])
            self.queue[i] = torch.cat([new, self.queue[i]])[: self.cfg.queue_length]
        self.queue_filled.copy_(torch.clamp(self.queue_filled + new.shape[0], max=self.cfg.queue_length))

    def _diagnostics(self, scores: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        entropy, spread = assignment_entropy(scores), feature_spread(z)
        if self.training and not self.frozen and not self._warned:
            verdict = collapse_verdict(float(entropy), float(spread), self.cfg)
            if verdict["collapsed"]:
                log.warning("SwAV may be collapsing at batch %d: %s", int(self.batches_seen), verdict["reason"])
                self._warned = True
        return {"assign_entropy": entropy.detach(), "feature_std": spread.detach()}

    @torch.no_grad()
    def scores_and_embeddings(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prototype scores ``[B, K]`` and embeddings ``[B, D]`` of plain images (evaluation)."""
        z = self.embed(images)
        return z @ F.normalize(self.prototypes.weight.float(), dim=1).t(), z


def multicrop_stream(index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
                     env: DistEnv) -> ViewStream:
    """Every post's photo of ``split`` (``data.select``): multi-crop views to train, one centre crop held out."""
    transform = multicrop_transform(data_config, cfg.data.multicrop) if split == "train" else eval_transform(data_config)
    return ViewStream(index, vocab, transform, stream_config(cfg, split), select=cfg.data.select,
                      rank=env.rank, world_size=env.world_size)


@torch.no_grad()
def heldout_scores_embeddings(objective: SwavObjective, stream: ViewStream, workers: int,
                              env: DistEnv) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototype scores and embeddings of every held-out sample (centre crops), gathered from all ranks."""
    objective.eval()
    parts = [objective.scores_and_embeddings(b["image"].to(env.device)) for b in make_loader(stream, workers)]
    scores, z = (torch.cat([p[i].cpu() for p in parts]) for i in (0, 1))
    return all_gather_cat(scores, env), all_gather_cat(z, env)


def collapse_diagnostics(objective: SwavObjective, stream: ViewStream, workers: int, env: DistEnv) -> dict[str, Any]:
    scores, z = heldout_scores_embeddings(objective, stream, workers, env)
    verdict = collapse_verdict(float(assignment_entropy(scores)), float(feature_spread(z)), objective.cfg)
    return {**verdict, "n_samples": int(z.shape[0])}


@register_method
class SwavMethod(Method[SwavConfig]):
    """Self-supervised SwAV on every post's photo (hashtags unused), with a held-out collapse check."""

    name = "swav"
    config_class = SwavConfig

    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> SwavObjective:
        params = self.params(cfg)
        backbone = self.backbone(cfg)
        freeze = round(params.freeze_prototypes_epochs * batches_per_epoch)
        return SwavObjective(backbone, params, cfg.data.multicrop.n_global, freeze)

    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> ViewStream:
        return multicrop_stream(index, vocab, cfg, data_config, split, env)

    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        """Is the trained model collapsed on held-out images? (the untrained one for reference)."""
        assert isinstance(trained, SwavObjective) and isinstance(untrained, SwavObjective)
        result = {"collapse": collapse_diagnostics(trained, heldout, cfg.data.workers, env),
                  "untrained": collapse_diagnostics(untrained, heldout, cfg.data.workers, env)}
        c = result["collapse"]
        if c["collapsed"]:
            log.warning("SwAV run COLLAPSED on held-out images: %s", c["reason"])
        else:
            log.info("held-out assignment entropy %.3f, feature spread %.3f (untrained %.3f, %.3f): not collapsed",
                     c["assignment_entropy"], c["feature_std"], result["untrained"]["assignment_entropy"],
                     result["untrained"]["feature_std"])
        return result
