"""Export a bundle's backbone and heads for use outside tagsight: safetensors + config.json, and ONNX.

``export_bundle(bundle_dir, out_dir, onnx=...)`` writes::

    OUT/config.json              backbone (timm name, data config, feature size), every head (kind,
                                 labels or categories, calibration / thresholds), the ONNX outputs
    OUT/backbone.safetensors     the timm model's state dict: ``timm.create_model(arch, num_classes=0,
                                 **timm_kwargs)`` of config.json loads it (in tagsight, 'file:OUT/backbone.safetensors
                                 --arch NAME' when timm_kwargs is empty)
    OUT/heads/<name>.safetensors hashtags: weight, bias; categorize/moderate: weight, bias, mean, std
    OUT/model.onnx               (with onnx=True) input "image" [B, 3, S, S] normalised as the data config
                                 says; outputs "features", "hashtags_logits" (raw: apply the calibrator of
                                 config.json) and "<head>_probabilities" (softmax of the standardised head)

After writing the ONNX file, it is run with onnxruntime on a seeded random batch and compared with
PyTorch; the largest absolute difference per output goes into config.json and an export that differs
by more than ``tolerance`` (default 1e-4) fails. The similar-image index is data, not a model: it is
not exported.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save
from torch import nn

from tagsight import __version__
from tagsight.apps.bundle import Bundle, load_bundle
from tagsight.apps.calibration import load_calibration
from tagsight.apps.heads import HeadApp
from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

FORMAT = 1
ONNX_FILE = "model.onnx"
TOLERANCE = 1e-4


class ExportModel(nn.Module):
    """Backbone + heads as one graph: ``image -> (features, hashtag logits?, head probabilities...)``."""

    def __init__(self, backbone: nn.Module, hashtag_head: nn.Module | None,
                 heads: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        self.backbone, self.hashtag_head = backbone, hashtag_head
        self.head_names = list(heads)
        for i, (w, b, mean, std) in enumerate(heads.values()):
            for name, t in (("w", w), ("b", b), ("mean", mean), ("std", std)):
                self.register_buffer(f"h{i}_{name}", t.detach().clone().float())

    def output_names(self) -> list[str]:
        return ["features", *(["hashtags_logits"] if self.hashtag_head is not None else []),
                *(f"{n}_probabilities" for n in self.head_names)]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.backbone(image)
        out = [f]
        if self.hashtag_head is not None:
            out.append(self.hashtag_head(f))
        for i in range(len(self.head_names)):
            x = (f - getattr(self, f"h{i}_mean")) / getattr(self, f"h{i}_std")
            out.append(torch.softmax(x @ getattr(self, f"h{i}_w").T + getattr(self, f"h{i}_b"), dim=1))
        return tuple(out)


def head_apps(bundle: Bundle) -> list[HeadApp]:
    """The bundle's head apps, in order of their folder names (what exported files and outputs are named by)."""
    return sorted((a for a in bundle.apps.values() if isinstance(a, HeadApp)), key=lambda a: a.head_name)


def export_model(bundle: Bundle) -> ExportModel:
    heads = {app.head_name: (app.head.weight, app.head.bias, app.head.scaler.mean, app.head.scaler.std)
             for app in head_apps(bundle)}
    hashtag = bundle.run.head if bundle.run is not None else None
    return ExportModel(bundle.embedder.backbone.cpu(), hashtag, heads).eval()


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def _head_config(bundle: Bundle) -> dict[str, Any]:
    heads: dict[str, Any] = {}
    if bundle.run is not None:
        entry: dict[str, Any] = {"kind": "hashtags", "labels": [lab.label for lab in bundle.run.vocab().labels]}
        if "hashtags" in bundle.apps:
            cal = load_calibration(bundle.root)
            entry.update(calibrator=cal["calibrator"], display=cal["display"],
                         alt_text={c["label"]: c["threshold"] for c in cal["concepts"] if c["alt_text"]})
        heads["hashtags"] = entry
    for app in head_apps(bundle):
            meta = app.head.meta
            heads[app.head_name] = {"kind": meta["task"], "classes": meta["classes"], "safe": meta["safe"],
                           **({"abstain": meta["abstain"]} if "abstain" in meta else {}),
                           **({"thresholds": {c: {"block": _num(t["block"]), "review": _num(t["review"])}
                                              for c, t in meta["thresholds"].items()}} if "thresholds" in meta else {})}
    return heads


def _num(v: float) -> float | str:
    return "inf" if v == float("inf") else v


def export_bundle(bundle_dir: str | Path, out_dir: str | Path, onnx: bool = False, tolerance: float = TOLERANCE,
                  opset: int = 17) -> dict[str, Any]:
    """Write the export (module docstring); returns config.json's content."""
    bundle, out = load_bundle(bundle_dir), Path(out_dir)
    backbone = bundle.embedder.backbone
    atomic_write_bytes(out / "backbone.safetensors", _tensor_bytes(backbone.model.state_dict()))
    if bundle.run is not None:
        atomic_write_bytes(out / "heads" / "hashtags.safetensors", _tensor_bytes(dict(bundle.run.head.state_dict())))
    for app in head_apps(bundle):
            h = app.head
            atomic_write_bytes(out / "heads" / f"{app.head_name}.safetensors", _tensor_bytes(
                {"weight": h.weight, "bias": h.bias, "mean": h.scaler.mean, "std": h.scaler.std}))
    model = export_model(bundle)
    config = {"format": FORMAT, "tagsight_version": __version__, "bundle": str(Path(bundle_dir).resolve()),
              "backbone": {"spec": bundle.backbone_spec, "arch": backbone.name, "num_features": backbone.num_features,
                           "timm_kwargs": backbone.timm_kwargs, "data_config": backbone.data_config.to_dict(), "fingerprint": bundle.embedder.fingerprint},
              "heads": _head_config(bundle), "outputs": model.output_names()}
    if onnx:
        config["onnx"] = {"file": ONNX_FILE, "opset": opset,
                          "max_abs_diff": write_onnx(model, out / ONNX_FILE, backbone.data_config.input_size,
                                                     opset, tolerance)}
    atomic_write_text(out / "config.json", json.dumps(config, indent=1) + "\n")
    log.info("exported %s to %s (%s)", bundle_dir, out, ", ".join(config["outputs"]))
    return config


def write_onnx(model: ExportModel, path: Path, size: int, opset: int = 17, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Export ``model`` to ONNX at ``path`` and check it against PyTorch; the max abs difference per output."""
    names = model.output_names()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in ["image", *names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), buf, dynamo=False, input_names=["image"], output_names=names,
                          dynamic_axes=axes, opset_version=opset)
    atomic_write_bytes(path, buf.getvalue())
    diffs = compare_onnx(model, path, torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1)))
    worst = max(diffs.values())
    if worst > tolerance:
        raise ReasonError("onnx_mismatch", f"{path}: onnxruntime differs from PyTorch by {worst:.3g} (> {tolerance:g})")
    return diffs


def compare_onnx(model: nn.Module, path: str | Path, x: torch.Tensor) -> dict[str, float]:
    """Largest absolute difference per output between onnxruntime on ``path`` and ``model`` on ``x``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ReasonError("missing_package", "ONNX export checks need onnxruntime: pip install 'tagsight[serve]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in model(x)]
    names = [o.name for o in session.get_outputs()]
    return {n: float(np.abs(g - w).max()) for n, g, w in zip(names, got, want)}
