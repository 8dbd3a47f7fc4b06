"""Reading an export of ``tagsight export`` back as a bundle (the writing is ``tagsight.apps.export``).

An export folder is itself a bundle: its ``bundle.json`` says ``{"format": "tagsight-export",
"backbone": "file:model.safetensors", "arch", "timm_kwargs", "data_config", "fingerprint",
"hashtag_head"}``, every path relative to the folder, so it loads wherever it is copied. The backbone
is rebuilt as ``timm.create_model(arch, num_classes=0, **timm_kwargs)`` with the recorded data config,
and its fingerprint must equal the recorded one (else ``export_mismatch``): calibration and heads
were made for exactly that backbone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tagsight.models.backbone import backbone_fingerprint
from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone, DataConfig, create_backbone
from tagsight.models.heads import LinearHead

log = logging.getLogger(__name__)

EXPORT_FORMAT = "tagsight-export"
WEIGHTS_FILE = "model.safetensors"
HASHTAG_HEAD_FILE = "heads/hashtags.safetensors"


def _record(root: Path) -> dict[str, Any]:
    record = json.loads((root / "bundle.json").read_text())
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        raise ReasonError("not_an_export", f"{root}/bundle.json is not a tagsight export")
    return record


def load_exported_backbone(root: str | Path) -> Backbone:
    """The backbone of the export at ``root``, checked against its recorded fingerprint."""
    root = Path(root)
    record = _record(root)
    weights = root / record["backbone"].removeprefix("file:")
    if not weights.is_file():
        raise ReasonError("backbone_missing", f"{root}: the export's weights {weights.name} are missing")
    data_config = DataConfig.from_dict(record["data_config"])
    with torch.random.fork_rng(devices=[]):
        backbone = create_backbone(record["arch"], img_size=data_config.input_size, **record.get("timm_kwargs", {}))
    backbone.model.load_state_dict(load_file(str(weights)), strict=True)
    backbone.data_config = data_config
    backbone.timm_kwargs = dict(record.get("timm_kwargs", {}))
    if record.get("fingerprint") and backbone_fingerprint(backbone) != record["fingerprint"]:
        raise ReasonError("export_mismatch", f"{root}: {weights.name} is not the backbone the export recorded "
                                             "(fingerprint differs); export the bundle again")
    return backbone.eval()


def load_exported_hashtag_head(root: str | Path) -> LinearHead | None:
    """The export's hashtag head (weight, bias), or None when it has none (or ``root`` is no export)."""
    root = Path(root)
    if not (root / "bundle.json").is_file() or json.loads((root / "bundle.json").read_text()).get("format") != EXPORT_FORMAT:
        return None
    record = _record(root)
    if not record.get("hashtag_head"):
        return None
    tensors = load_file(str(root / record["hashtag_head"]))
    head = LinearHead(tensors["weight"].shape[1], tensors["weight"].shape[0])
    with torch.no_grad():
        head.weight.copy_(tensors["weight"])
        head.bias.copy_(tensors["bias"])
    return head.eval()
