"""What the apps take from a pretraining run folder: backbone, hashtag head, vocabulary, dataset, held-out split.

A run folder (``tagsight pretrain``) holds ``config.yaml``, ``run.json`` (lineage: dataset path and
manifest version, vocabulary path and version) and ``checkpoints/`` whose ``model.safetensors``
has the backbone (``backbone.model.*``) and the hashtag head (``head.weight``, ``head.bias``).

Serving reads a run without the trainer: ``RunSettings`` takes the few fields it needs (model name,
image size, initialisation, hashtag loss) from ``config.yaml`` and the weights come from the
checkpoint files directly, so loading a run imports nothing of ``tagsight.train``. The full
``PretrainConfig`` (``Run.config``) is read on demand, by the fitting code that needs it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tagsight.fsio import ReasonError
from tagsight.schema.catalog import read_table
from tagsight.lineage import resolve_recorded
from tagsight.models.backbone import Backbone
from tagsight.models.heads import LinearHead
from tagsight.models.runs import RunSettings, backbone_from_weights, run_config_path
from tagsight.models.runs import checkpoint_weights as read_checkpoint
from tagsight.tags.vocab import Vocabulary

if TYPE_CHECKING:
    from tagsight.train.config import PretrainConfig

log = logging.getLogger(__name__)



@dataclass
class Run:
    """A loaded run: its settings, lineage, backbone and hashtag head (eval mode, CPU)."""

    run_dir: Path
    settings: RunSettings
    lineage: dict[str, Any]
    backbone: Backbone
    head: LinearHead

    @cached_property
    def config(self) -> PretrainConfig:
        """The run's full pretraining config (imports the trainer's config classes: fitting code only)."""
        from tagsight.train.config import PretrainConfig

        config: PretrainConfig = PretrainConfig.from_yaml(self.run_dir / "config.yaml")
        return config

    @property
    def loss(self) -> str:
        return self.settings.loss

    @property
    def dataset_dir(self) -> Path:
        return _resolve(self.lineage["dataset"]["path"], self.run_dir)

    def vocab(self) -> Vocabulary:
        """The run's vocabulary; ReasonError when it is gone or is not the version the run trained on."""
        path = _resolve(self.lineage["vocab"]["path"], self.run_dir)
        try:
            vocab = Vocabulary.load(path)
        except FileNotFoundError as exc:
            raise ReasonError("missing_vocab", f"{self.run_dir}: the run's vocabulary is gone ({exc})") from None
        if vocab.version != self.lineage["vocab"]["version"]:
            raise ReasonError("vocab_mismatch", f"{path} is vocabulary {vocab.version}, the run trained on "
                                                f"{self.lineage['vocab']['version']}")
        if len(vocab) != self.head.out_features:
            raise ReasonError("vocab_mismatch", f"{path} has {len(vocab)} labels, the head {self.head.out_features}")
        return vocab


def _resolve(path: str, run_dir: Path) -> Path:
    """A path run.json recorded, resolved against the run (never only the caller's directory)."""
    return resolve_recorded(path, run_dir) or Path(path)


def load_run(run_dir: str | Path) -> Run:
    """The run at ``run_dir`` (a run folder or one of its checkpoint folders)."""
    run_dir = Path(run_dir)
    cfg_path = run_config_path(run_dir)
    root = cfg_path.parent
    if not (root / "run.json").is_file():
        raise ReasonError("not_a_run", f"{root} has no run.json: not a tagsight pretraining run")
    lineage = json.loads((root / "run.json").read_text())
    settings = RunSettings.from_yaml(cfg_path)
    tensors = checkpoint_weights(run_dir)
    backbone = run_backbone_from(tensors, settings, run_dir)
    head = load_hashtag_head(run_dir, backbone.num_features, tensors)
    return Run(root, settings, lineage, backbone, head)


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint folder, or of a run folder's latest checkpoint."""
    try:
        return read_checkpoint(path)
    except FileNotFoundError as exc:
        raise ReasonError("no_checkpoint", str(exc)) from None


def run_backbone_from(tensors: dict[str, torch.Tensor], settings: RunSettings, origin: Path) -> Backbone:
    """The run's backbone (eval mode) with the checkpoint's ``backbone.model.*`` tensors loaded strictly."""
    return backbone_from_weights(tensors, settings, origin).eval()


def load_run_backbone(path: str | Path) -> Backbone:
    """The backbone of a run or checkpoint folder, as ``tagsight.eval.backbones.load_backbone`` gives it."""
    path = Path(path)
    settings = RunSettings.from_yaml(run_config_path(path))
    return run_backbone_from(checkpoint_weights(path), settings, path)


def load_hashtag_head(run_dir: Path, in_features: int, tensors: dict[str, torch.Tensor] | None = None) -> LinearHead:
    """The run's hashtag head from its (latest) checkpoint (``tensors``: already read)."""
    tensors = checkpoint_weights(run_dir) if tensors is None else tensors
    if "head.weight" not in tensors or "head.bias" not in tensors:
        raise ReasonError("no_hashtag_head", f"{run_dir}: the checkpoint has no 'head.weight'/'head.bias'")
    weight, bias = tensors["head.weight"], tensors["head.bias"]
    if weight.shape[1] != in_features:
        raise ReasonError("weights_mismatch", f"{run_dir}: head expects {weight.shape[1]} features, "
                                              f"the backbone gives {in_features}")
    head = LinearHead(in_features, weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head.eval()


def post_authors(dataset_dir: str | Path) -> dict[str, str]:
    """``source/post_id`` -> author id of every kept post of a dataset (from its catalog)."""
    table = read_table(dataset_dir, "posts", columns=["source", "post_id", "author_id"]).to_pydict()
    return {f"{s}/{p}": a for s, p, a in zip(table["source"], table["post_id"], table["author_id"])}
