"""What the apps take from a pretraining run folder: backbone, hashtag head, vocabulary, dataset, held-out split.

A run folder (``tagsight pretrain``) holds ``config.yaml``, ``run.json`` (lineage: dataset path and
manifest version, vocabulary path and version) and ``checkpoints/`` whose ``model.safetensors``
has the backbone (``backbone.model.*``) and the hashtag head (``head.weight``, ``head.bias``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from tagsight.eval.backbones import load_backbone, run_config_path
from tagsight.fsio import ReasonError
from tagsight.ingest.catalog import read_table
from tagsight.lineage import resolve_recorded
from tagsight.models.backbone import Backbone
from tagsight.models.heads import LinearHead
from tagsight.tags.vocab import Vocabulary
from tagsight.train.checkpoint import load_model_weights
from tagsight.train.config import PretrainConfig

log = logging.getLogger(__name__)


@dataclass
class Run:
    """A loaded run: its config, lineage, backbone and hashtag head (eval mode, CPU)."""

    run_dir: Path
    config: PretrainConfig
    lineage: dict
    backbone: Backbone
    head: LinearHead

    @property
    def loss(self) -> str:
        return self.config.objective.loss

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
    backbone = load_backbone(str(run_dir))
    head = load_hashtag_head(run_dir, backbone.num_features)
    return Run(root, PretrainConfig.from_yaml(cfg_path), lineage, backbone, head)


def load_hashtag_head(run_dir: Path, in_features: int) -> LinearHead:
    """The run's hashtag head from its (latest) checkpoint."""
    tensors = load_model_weights(run_dir)
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
