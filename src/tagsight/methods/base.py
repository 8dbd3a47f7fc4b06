"""What every training method is: an ``Objective`` (the module the loop trains) and a ``Method`` around it.

An ``Objective`` maps a batch (a dict of tensors; keys depend on the method) to
``{"loss": scalar with grad, <name>: detached scalar, ...}``. It declares the two hooks the Trainer
uses: ``data_config`` (the input size and normalisation its stream must produce; by default its
backbone's), ``before_step()`` (called after the backward pass, before every optimiser step: it drops the
gradient of what ``freeze_for_step`` marked) and ``after_step()`` (called after every optimiser step; nothing by
default).

A ``Method`` is what a run needs around the shared loop, for one objective: its settings
(``config_class``, a frozen dataclass validated in ``__post_init__``; ``objective`` in a run config is
``{name: <method>, <its settings>...}``), how to build the objective with its model (``build``), its
stream per split (``stream``), its held-out evaluation (``evaluate``, eval.json's fields), its fields of
run.json (``describe``) and any extra files of the run folder (``files``). Methods register themselves
in ``METHODS`` under their ``name``; ``tagsight.train`` looks them up there and names none of them.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import torch
from torch import nn

from tagsight.collectives import DistEnv
from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import StreamConfig
from tagsight.models.backbone import Backbone, DataConfig
from tagsight.models.pretrained import run_backbone
from tagsight.registry import Registry
from tagsight.tags.vocab import Vocabulary

DEFAULT_METHOD = "hashtag"   # the method of a run config that names none

C = TypeVar("C")
M = TypeVar("M", bound="type[Method[Any]]")


class Objective(nn.Module, abc.ABC):
    """A trainable module with a loss; subclasses hold their backbone as ``self.backbone`` (or own ``data_config``)."""

    backbone: nn.Module

    @abc.abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return ``{"loss": scalar with grad, <name>: detached scalar, ...}``."""

    @property
    def data_config(self) -> DataConfig:
        """The input size and normalisation this objective's images need: its backbone's, unless overridden."""
        backbone = self.backbone
        if not isinstance(backbone, Backbone):
            raise TypeError(f"{type(self).__name__} has no timm Backbone: it must override data_config")
        return backbone.data_config

    def freeze_for_step(self, *params: torch.Tensor) -> None:
        """Mark ``params`` frozen in this optimiser step (a forward pass gave them zero gradient): ``before_step``
        then sets their gradient to None, as the official SwAV and DINO do, so the optimiser skips them (no weight
        decay, no momentum). Held outside nn.Module's registries: a plain per-step list."""
        self.__dict__.setdefault("_frozen_for_step", []).extend(params)

    def before_step(self) -> None:
        """Called after the backward pass, just before each optimiser step: drops the gradient of the parameters
        ``freeze_for_step`` marked in this step (DINO's frozen last layer, SwAV's frozen prototypes)."""
        for param in self.__dict__.pop("_frozen_for_step", []):
            param.grad = None

    def after_step(self) -> None:
        """Per-step bookkeeping after each optimiser step (an EMA teacher or EMA weights); nothing by default."""


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


BATCHNORM_GROUPS = ("resolution", "crop")
"""How a multi-crop method's crops share BatchNorm statistics in backbone and head: the crops of one resolution in
one pass (the official SwAV and DINO code), or each crop in its own pass of B samples (lightly's examples)."""


def batchnorm_passes(crops: list[torch.Tensor], b: int, grouping: str) -> list[torch.Tensor]:
    """The forward passes of crop-major stacks under ``grouping`` (``BATCHNORM_GROUPS``), in the same sample order."""
    if grouping == "crop":
        return [c for stack in crops for c in stack.split(b)]
    return crops


def check_batchnorm_grouping(method: str, grouping: str) -> None:
    """ValueError unless ``grouping`` is one of ``BATCHNORM_GROUPS``."""
    if grouping not in BATCHNORM_GROUPS:
        raise ValueError(f"objective.{method}.batchnorm must be one of {BATCHNORM_GROUPS}, got {grouping!r}")


class RunConfig(Protocol):
    """What a method reads of a run's config (``tagsight.train.config.PretrainConfig`` is one).

    ``model``: name, img_size, init; ``objective``: name and ``params`` (the method's config instance);
    ``data``: epoch_length, batch_size, sampling, holdout_fraction, workers, select, multicrop;
    ``loop``: epochs, accumulate; ``seed``.
    """

    @property
    def model(self) -> Any: ...

    @property
    def objective(self) -> Any: ...

    @property
    def data(self) -> Any: ...

    @property
    def loop(self) -> Any: ...

    @property
    def seed(self) -> int: ...


def stream_config(cfg: RunConfig, split: str) -> StreamConfig:
    """The sampling settings of ``cfg.data`` for one split (``train`` or ``heldout``)."""
    d = cfg.data
    return StreamConfig(epoch_length=d.epoch_length, batch_size=d.batch_size, seed=cfg.seed,
                        sampling=d.sampling, holdout_fraction=d.holdout_fraction, split=split)


class Method(abc.ABC, Generic[C]):
    """One training method: its settings class and what the shared loop needs around its objective.

    ``cfg`` below is the whole run config (``RunConfig``); ``self.params(cfg)`` is this method's settings.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[Any]]     # a frozen dataclass, validated in __post_init__
    needs_vocab: ClassVar[bool] = True    # False: the method reads no hashtags (``pretrain`` without a vocabulary)

    def params(self, cfg: RunConfig) -> C:
        """This method's settings in ``cfg`` (``cfg.objective.params``), checked to be of ``config_class``."""
        params = cfg.objective.params
        if cfg.objective.name != self.name or not isinstance(params, self.config_class):
            raise TypeError(f"the {self.name!r} method got the settings of {cfg.objective.name!r} "
                            f"({type(params).__name__}, not {self.config_class.__name__})")
        found: C = params
        return found

    def backbone(self, cfg: RunConfig) -> Backbone:
        """The timm backbone ``cfg.model`` names, initialised as ``cfg.model.init`` says (the default model)."""
        return run_backbone(cfg.model.name, cfg.model.img_size, cfg.model.init)

    @abc.abstractmethod
    def build(self, cfg: RunConfig, num_labels: int, batches_per_epoch: int) -> Objective:
        """A fresh objective with its model, for a vocabulary of ``num_labels`` (the caller seeds torch first)."""

    @abc.abstractmethod
    def stream(self, index: SampleIndex, vocab: Vocabulary, cfg: RunConfig, data_config: DataConfig, split: str,
               env: DistEnv) -> Any:
        """The batches of ``split`` (``train`` or ``heldout``) for this objective, as this rank's share."""

    @abc.abstractmethod
    def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: RunConfig, env: DistEnv,
                 vocab: Vocabulary) -> dict[str, Any]:
        """eval.json's fields (besides ``step``): the trained objective against the untrained one, on held-out data."""

    def describe(self, cfg: RunConfig) -> dict[str, Any]:
        """This method's fields of run.json: the model trained."""
        return {"backbone": cfg.model.name, "init": cfg.model.init}

    def files(self, cfg: RunConfig, vocab: Vocabulary) -> dict[str, str]:
        """More files of the run folder (name -> text); none by default."""
        return {}

    def finish(self, trained: Objective, run_dir: Path, cfg: RunConfig, env: DistEnv) -> None:
        """Write what the run folder holds of the trained model besides checkpoints, after evaluation (rank 0
        only); nothing by default (the ``vae`` method exports its diffusers folder here)."""


METHODS: Registry[Method[Any]] = Registry("training method")


def register_method(cls: M) -> M:
    """Class decorator: register a ``Method`` subclass in ``METHODS`` under its ``name``."""
    METHODS.register(cls.name)(cls)
    return cls


def method_of(name: str) -> Method[Any]:
    """The registered method ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return METHODS.create(name)
    except KeyError as exc:
        raise ValueError(f"objective.name: {exc.args[0]}") from None
