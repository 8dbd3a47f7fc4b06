"""``tagsight export BUNDLE --out DIR [--onnx]``: a portable bundle (timm config.json + safetensors, model card), and ONNX."""

from __future__ import annotations

import argparse

from tagsight.cli.options import add_json_option, emit, fail, format_fields
from tagsight.storage import dataset_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export a bundle's backbone and heads (safetensors + config.json, ONNX)",
                       description="OUT is itself a bundle ('tagsight predict OUT PHOTOS...', 'tagsight serve OUT'), its config.json "
                                   "and model.safetensors load in timm, README.md is a model card. With --onnx the graph (image -> features, hashtag logits, head probabilities) "
                                   "is exported and checked against PyTorch with onnxruntime (max abs diff <= "
                                   "--tolerance).")
    p.add_argument("bundle", type=dataset_path, help="a bundle or run folder (local or an fsspec URL)")
    p.add_argument("--out", type=dataset_path, required=True, help="export folder to write, local or an fsspec URL (a bundle predict and serve load)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and check it")
    p.add_argument("--tolerance", type=float, default=1e-4, help="--onnx: largest absolute difference "
                   "allowed between the ONNX and the PyTorch outputs (default 1e-4)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset of --onnx (default 17)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.apps.export import export_bundle
    from tagsight.fsio import ReasonError

    try:
        config = export_bundle(args.bundle, args.out, args.onnx, args.tolerance, args.opset)
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        return fail("export", exc)
    t = config["tagsight"]
    result = {"out": str(args.out), "architecture": config["architecture"], "outputs": t["outputs"],
              "heads": sorted(t["heads"]), **({"onnx_max_abs_diff": t["onnx"]["max_abs_diff"]} if "onnx" in t else {})}
    emit(args, result, lambda: format_fields(result))
    return 0
