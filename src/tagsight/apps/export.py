"""Export a bundle for use outside tagsight (timm, ONNX) and as a bundle that ``predict`` and ``serve`` load.

``export_bundle(bundle_dir, out_dir, onnx=...)`` writes, every path inside relative to OUT::

    OUT/config.json              timm's Hugging Face layout: "architecture", "num_classes": 0, "num_features",
                                 "model_args" (timm kwargs beyond the defaults, img_size for models that take it)
                                 and "pretrained_cfg" (mean, std, input_size [3, S, S], crop_pct, interpolation,
                                 num_classes 0, ...); "tagsight": every head (kind, labels or categories,
                                 calibration / thresholds), the ONNX outputs, the backbone fingerprint
    OUT/model.safetensors        the timm model's state dict: ``timm.create_model(arch, pretrained=True,
                                 pretrained_cfg_overlay=dict(config["pretrained_cfg"], file=OUT/model.safetensors),
                                 **config["model_args"])`` or ``timm.create_model("local-dir:OUT", pretrained=True)``
                                 load it with no download
    OUT/heads/hashtags.safetensors  the hashtag head (weight, bias), with OUT/calibration.json
    OUT/heads/<name>.safetensors categorize/moderate heads (weight, bias, mean, std) + heads/<name>.json (head.json)
    OUT/bundle.json              {"format": "tagsight-export", ...}: OUT is a bundle (``tagsight.apps.export_format``)
    OUT/README.md                model card with Hugging Face front matter (license, library_name: timm, tags,
                                 pipeline_tag, ...)
    OUT/lineage.json             kind "export": the bundle and run it was exported from
    OUT/model.onnx               (with onnx=True) input "image" [B, 3, S, S] normalised as the data config
                                 says; outputs "features", "hashtags_logits" (raw: apply the calibrator of
                                 config.json) and "<head>_probabilities" (softmax of the standardised head)

After writing the ONNX file, it is run with onnxruntime on a seeded random batch and compared with
PyTorch; the largest absolute difference per output goes into config.json and an export that differs
by more than ``tolerance`` (default 1e-4) fails. The similar-image index is data, not a model: it is
not exported.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save
import yaml
from torch import nn

from tagsight import __version__
from tagsight.apps.bundle import Bundle, load_bundle
from tagsight.apps.calibrators import CALIBRATION_FILE, load_calibration
from tagsight.apps.openset import BANK_FILE
from tagsight.apps.export_format import EXPORT_FORMAT, HASHTAG_HEAD_FILE, WEIGHTS_FILE
from tagsight.apps.hashtags import HashtagsApp
from tagsight.apps.head_apps import HeadApp, json_safe
from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text
from tagsight.lineage import Ref, bundle_version, read_artifact, write_lineage
from tagsight.models.backbone import Backbone
from tagsight.privacy.cards import model_card
from tagsight.storage import location, output_folder

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
    hashtag = bundle.hashtag_head
    return ExportModel(bundle.embedder.backbone.cpu(), hashtag, heads).eval()


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def _hashtag_config(bundle: Bundle) -> dict[str, Any] | None:
    if bundle.hashtag_head is None:
        return None
    if bundle.run is not None:
        entry: dict[str, Any] = {"kind": "hashtags", "labels": [lab.label for lab in bundle.run.vocab().labels]}
    elif isinstance(app := bundle.apps.get("hashtags"), HashtagsApp):   # an export exported again: its calibration's
        entry = {"kind": "hashtags", "labels": list(app.labels)}                  # labels
    else:
        return None
    if "hashtags" in bundle.apps:
        cal = load_calibration(bundle.root)
        entry.update(calibrator=cal["calibrator"], display=cal["display"],
                     alt_text={c["label"]: c["threshold"] for c in cal["concepts"] if c["alt_text"]})
    return entry


def _head_config(bundle: Bundle) -> dict[str, Any]:
    hashtags = _hashtag_config(bundle)
    heads: dict[str, Any] = {"hashtags": hashtags} if hashtags else {}
    for app in head_apps(bundle):
        meta = app.head.meta
        heads[app.head_name] = {
            "kind": meta["task"], "app": app.name, "classes": meta["classes"], "safe": meta["safe"],
            **({"abstain": meta["abstain"]} if "abstain" in meta else {}),
            **({"thresholds": {c: {"block": _num(t["block"]), "review": _num(t["review"])}
                               for c, t in meta["thresholds"].items()}} if "thresholds" in meta else {})}
    return heads


def _num(v: float) -> float | str:
    return "inf" if v == float("inf") else v


def timm_config(backbone: Backbone) -> dict[str, Any]:
    """config.json's timm part (Hugging Face layout): architecture, num_classes 0, model_args, pretrained_cfg."""
    dc = backbone.data_config
    model_args = dict(backbone.timm_kwargs)
    if "img_size" in inspect.signature(type(backbone.model).__init__).parameters:
        model_args.setdefault("img_size", dc.input_size)
    base = dict(getattr(backbone.model, "pretrained_cfg", {}) or {})
    pretrained_cfg = {k: v for k, v in base.items() if k in _TIMM_KEEP}
    pretrained_cfg.update(architecture=backbone.name, num_classes=0,
                          mean=list(dc.mean), std=list(dc.std), input_size=[3, dc.input_size, dc.input_size],
                          crop_pct=dc.crop_pct, interpolation=dc.interpolation, license="other",
                          description=f"tagsight feature extractor ({backbone.num_features} features)")
    return {"architecture": backbone.name, "num_classes": 0, "num_features": backbone.num_features,
            "model_args": model_args, "pretrained_cfg": pretrained_cfg}


_TIMM_KEEP = ("tag", "fixed_input_size", "pool_size", "first_conv", "classifier", "crop_mode")


def export_bundle(bundle_dir: str | Path, out_dir: str | Path, onnx: bool = False, tolerance: float = TOLERANCE,
                  opset: int = 17) -> dict[str, Any]:
    """Write the export (module docstring); returns config.json's content. Either folder may be an fsspec URL: the
    export is then written to a local staging folder and published with bundle.json last."""
    bundle = load_bundle(bundle_dir)
    with output_folder(out_dir, marker="bundle.json") as out:
        if out.resolve() == bundle.root.resolve():
            raise ReasonError("export_over_bundle", f"{out} is the bundle itself: export to another folder")
        config = _write_export(bundle, out, onnx, tolerance, opset)
    log.info("exported %s to %s (%s)", bundle_dir, out_dir, ", ".join(config["tagsight"]["outputs"]))
    return config


def _write_export(bundle: Bundle, out: Path, onnx: bool, tolerance: float, opset: int) -> dict[str, Any]:
    backbone = bundle.embedder.backbone
    atomic_write_bytes(out / WEIGHTS_FILE, _tensor_bytes(backbone.model.state_dict()))
    if bundle.hashtag_head is not None:
        atomic_write_bytes(out / HASHTAG_HEAD_FILE, _tensor_bytes(dict(bundle.hashtag_head.state_dict())))
    for name in (CALIBRATION_FILE, BANK_FILE):   # the calibration and its open-set guard's feature bank
        if (bundle.root / name).is_file():
            atomic_write_bytes(out / name, (bundle.root / name).read_bytes())
    _write_heads(bundle, out)
    model = export_model(bundle)
    config = {**timm_config(backbone), "tagsight": {
        "format": FORMAT, "tagsight_version": __version__, "fingerprint": bundle.embedder.fingerprint,
        "backbone": {"spec": bundle.backbone_spec, "arch": backbone.name, "num_features": backbone.num_features,
                     "timm_kwargs": backbone.timm_kwargs, "data_config": backbone.data_config.to_dict()},
        "heads": _head_config(bundle), "outputs": model.output_names()}}
    if onnx:
        config["tagsight"]["onnx"] = {"file": ONNX_FILE, "opset": opset, "max_abs_diff": write_onnx(
            model, out / ONNX_FILE, backbone.data_config.input_size, opset, tolerance)}
    atomic_write_text(out / "config.json", json.dumps(config, indent=1) + "\n")
    _write_bundle_json(bundle, out)
    atomic_write_text(out / "README.md", export_card(bundle, config))
    _write_export_lineage(bundle, out)
    return config


def _write_heads(bundle: Bundle, out: Path) -> None:
    for app in head_apps(bundle):
        h = app.head
        atomic_write_bytes(out / "heads" / f"{app.head_name}.safetensors", _tensor_bytes(
            {"weight": h.weight, "bias": h.bias, "mean": h.scaler.mean, "std": h.scaler.std}))
        atomic_write_text(out / "heads" / f"{app.head_name}.json", json.dumps(json_safe(h.meta), indent=1) + "\n")


def _write_bundle_json(bundle: Bundle, out: Path) -> None:
    backbone = bundle.embedder.backbone
    record = {"format": EXPORT_FORMAT, "backbone": f"file:{WEIGHTS_FILE}", "arch": backbone.name,
              "timm_kwargs": backbone.timm_kwargs, "data_config": backbone.data_config.to_dict(),
              "fingerprint": bundle.embedder.fingerprint,
              "hashtag_head": HASHTAG_HEAD_FILE if bundle.hashtag_head is not None else None,
              "exported_from": {"bundle": location(bundle.root), "backbone": bundle.backbone_spec}}
    atomic_write_text(out / "bundle.json", json.dumps(record, indent=1) + "\n")


def _write_export_lineage(bundle: Bundle, out: Path) -> None:
    parents = []
    if (bundle.root / "bundle.json").is_file():     # a bundle folder (a run folder exported directly is the run)
        parents.append(Ref("bundle", location(bundle.root), bundle_version(bundle.root)))
    if bundle.run is not None:
        parents.append(Ref("run", location(bundle.run.run_dir), read_artifact(bundle.run.run_dir).version))
    write_lineage(out, "export", bundle.embedder.fingerprint[:16], parents)


def export_card(bundle: Bundle, config: dict[str, Any]) -> str:
    """README.md of an export: Hugging Face model-card front matter, then the run's model card (or a summary)."""
    t = config["tagsight"]
    classifies = any(h["kind"] in ("hashtags", "categorize", "moderate") for h in t["heads"].values())
    tags = ["timm", "tagsight", "image-feature-extraction", *sorted({h["kind"] for h in t["heads"].values()})]
    if bundle.run is not None:
        tags.append(f"dataset-version-{bundle.run.lineage['dataset']['manifest_version']}")
    front = {"license": "other", "license_name": "see-data-card",
             "library_name": "timm", "pipeline_tag": "image-classification" if classifies else "image-feature-extraction",
             "tags": tags}
    if bundle.run is not None:
        body = model_card(bundle.run.run_dir).markdown()
    else:
        body = f"# Model card: {Path(bundle.root).name}\n\nBackbone `{config['architecture']}` ({bundle.backbone_spec}).\n"
    usage = (f"\n## How to load\n\n```python\nimport json, timm\ncfg = json.load(open('config.json'))\n"
             f"model = timm.create_model(cfg['architecture'], pretrained=True, **cfg['model_args'],\n"
             f"                          pretrained_cfg_overlay=dict(cfg['pretrained_cfg'], file='{WEIGHTS_FILE}'))\n"
             f"# or: timm.create_model('local-dir:.', pretrained=True)\n```\n\n"
             f"The folder is also a tagsight bundle: `tagsight predict . IMAGES --app APP`, "
             f"`tagsight serve .` (apps: {', '.join(sorted(_served(bundle))) or 'none'}).\n")
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body + usage


def _served(bundle: Bundle) -> list[str]:
    return [n for n in bundle.apps if n != "similar"]


def write_onnx(model: ExportModel, path: Path, size: int, opset: int = 17, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Export ``model`` to ONNX at ``path`` and check it against PyTorch; the max abs difference per output."""
    names = model.output_names()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in ["image", *names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        # the TorchScript exporter writes to a file object too; torch annotates the target as a path only
        torch.onnx.export(model, (example,), buf, dynamo=False,  # type: ignore[arg-type]
                          input_names=["image"], output_names=names,
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
