"""What every transfer evaluation shares: inputs, decontamination, the result record and where it is saved.

A result (``result_record``) is a JSON-ready dict: method, backbone spec and model, dataset id,
train/val paths, identities and counts (after decontamination), classes, ``metrics`` (top-1, top-5
and the method's settings), ``per_class`` accuracy, the ``confusion`` matrix (rows: true class,
columns: predicted) and ``decontamination`` (the pool and, per split, found/removed counts and
every match). When the backbone is a tagsight run, the result is also saved as
``RUN_DIR/transfer/<method>-<dataset-id>.json``, where ``tagsight report`` finds it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from tagsight.eval.datasets import LabelledImages, open_labelled
from tagsight.eval.decontaminate import Pool, find_matches, keep_subset, pool_from_lineage, pool_summary
from tagsight.metrics import classification_metrics
from tagsight.fsio import ReasonError
from tagsight.models.backbone import Backbone
from tagsight.storage import dataset_path, exists, is_url, join, local_folder, location, mirror_origin, write_text
from tagsight.train.distributed import DistEnv

log = logging.getLogger(__name__)

TRANSFER_DIR = "transfer"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class TransferInputs:
    """A backbone spec (see ``tagsight.eval.backbones``), labelled train and val sets, and how to read them."""

    backbone: str
    train: Path
    val: Path
    img_size: int | None = None
    arch: str | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    seed: int = 0
    batch_size: int = 64
    workers: int = 2
    cache_dir: Path | None = None
    decontaminate: bool | None = None   # None: on when the backbone is a run (or --pool is given)
    pool: Path | None = None
    dataset_id: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 0:
            raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {self.batch_size}, {self.workers}")
        if self.decontaminate is False and self.pool is not None:
            raise ValueError("--pool and --no-decontaminate contradict each other")

    def load_backbone(self) -> Backbone:
        from tagsight.eval.backbones import load_backbone

        return load_backbone(self.backbone, self.img_size, arch=self.arch, mean=self.mean, std=self.std,
                             seed=self.seed)

    @property
    def id(self) -> str:
        return self.dataset_id or dataset_id(location(self.train))   # a mirror: named after its URL


def named(path: str | Path) -> str:
    """How results and lineage name an input: the URL a mirror stands for, else the path as given."""
    return mirror_origin(path) or str(path)


def dataset_id(train: str | Path) -> str:
    """A short name of the evaluation dataset: ``imagenette-160`` for ``.../imagenette-160/train`` (or a URL)."""
    parts = (str(train).rstrip("/").split("/") if is_url(train) else Path(train).resolve().parts)[-2:]
    parent, name = ("", *parts)[-2:]
    name = parent if name.lower() in ("train", "training") and parent else name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "dataset"


def resolve_pool(inputs: TransferInputs) -> Path | None:
    """The pretraining pool to decontaminate against, or None (see ``TransferInputs.decontaminate``)."""
    if inputs.decontaminate is False:
        return None
    if inputs.pool is not None:
        return inputs.pool
    root = run_root(inputs.backbone)
    lineage = pool_from_lineage(root) if root is not None else None
    if lineage is None and inputs.decontaminate:
        raise ReasonError("no_pool", f"{inputs.backbone} names no pretraining dataset: give --pool DATASET_DIR")
    if isinstance(lineage, str):   # a pool on object storage: its records (manifest, media table) are enough
        return local_folder(lineage, marker="manifest.json", metadata_only=True)
    return lineage


# Only the split that is scored is decontaminated. A train-split image that is also in the pretraining pool is
# not contamination (it is labelled training data of the downstream task), and removing it would change the
# probe's training set between backbones: its overlap is reported, not removed.
DECONTAMINATE_SPLITS = ("val",)


def open_sets(inputs: TransferInputs, env: DistEnv) -> tuple[dict[str, LabelledImages], dict[str, Any]]:
    """Train and val sets (val on the train classes), decontaminated when a pool applies, and the report."""
    train = open_labelled(inputs.train)
    sets = {"train": train, "val": open_labelled(inputs.val, classes=train.classes)}
    pool_dir = resolve_pool(inputs)
    if pool_dir is None:
        return sets, {"enabled": False}
    payload = _find_all(sets, pool_dir, inputs) if env.is_main else None
    if env.distributed:  # one process hashes, everyone removes the same images
        box = [payload]
        dist.broadcast_object_list(box, src=0)
        payload = box[0]
    if payload is None:
        raise RuntimeError("the decontamination hashes did not reach this process")
    report = {"enabled": True, "pool": payload["pool"], "removed_from": list(DECONTAMINATE_SPLITS)}
    for name in SPLITS:
        keep, split_report = payload[name]
        if name in DECONTAMINATE_SPLITS:
            sets[name] = keep_subset(sets[name], keep)
        else:  # counted, not removed: the probe may learn from photos pretraining saw; it must not be scored on them
            split_report = {**split_report, "removed": 0, "kept": len(sets[name])}
        report[name] = split_report
        log.info("%s: %d of %d images found in the pool, %d removed", name, split_report["found"],
                 split_report["images"], split_report["removed"])
    return sets, report


def _find_all(sets: dict[str, LabelledImages], pool_dir: Path, inputs: TransferInputs) -> dict[str, Any]:
    pool = Pool.from_dataset(pool_dir)
    out: dict[str, Any] = {"pool": pool_summary(pool)}
    for name in SPLITS:
        out[name] = find_matches(sets[name], pool, inputs.workers, inputs.cache_dir)
        if name in DECONTAMINATE_SPLITS and out[name][1]["kept"] == 0:
            raise ReasonError("all_contaminated", f"every {name} image is in the pretraining pool {pool_dir}")
    return out


def result_record(method: str, inputs: TransferInputs, backbone: Backbone, sets: dict[str, LabelledImages],
                  decontamination: dict[str, Any], scores: np.ndarray, settings: dict[str, Any],
                  seconds: float) -> dict[str, Any]:
    """The JSON-ready result of one evaluation (see the module docstring)."""
    val = sets["val"]
    breakdown = classification_metrics(scores, val.labels, val.classes)
    metrics = {"top1": breakdown.pop("top1"), "top5": breakdown.pop("top5"), **settings}
    return {"method": method, "backbone": inputs.backbone, "model": backbone.name,
            "data_config": backbone.data_config.to_dict(), "num_features": backbone.num_features,
            "dataset_id": inputs.id,
            **{name: {"path": named(getattr(inputs, name)), "identity": sets[name].identity, "count": len(sets[name])}
               for name in SPLITS},
            "num_classes": len(val.classes), "metrics": metrics, **breakdown,
            "decontamination": decontamination, "seconds": round(seconds, 2)}


def run_root(spec: str | Path) -> str | Path | None:
    """The run folder of a backbone spec that is a tagsight run or checkpoint folder (local, or an fsspec URL: then
    the run's URL), else None."""
    where = dataset_path(spec) if isinstance(spec, str) else spec
    if isinstance(where, str):
        up = where.rstrip("/").split("/")
        candidates: list[str | Path] = ["/".join(up[:len(up) - n]) for n in range(3) if len(up) - n >= 3]
    elif where.is_dir():
        candidates = [where, where.parent, where.parent.parent]
    else:
        return None
    for candidate in candidates:
        if exists(join(candidate, "config.yaml")) and exists(join(candidate, "run.json")):
            return candidate
    return None


def save_result(result: dict[str, Any], out: str | Path | None = None) -> list[str | Path]:
    """Write ``result`` to ``out`` and, for a run backbone, to ``RUN/transfer/<method>-<dataset-id>.json``; a run on
    object storage gets it there (one object put whole: the run's records are left as they are)."""
    text = json.dumps(result, indent=1) + "\n"
    paths: list[str | Path] = [] if out is None else [out]
    root = run_root(result["backbone"])
    if root is not None:
        paths.append(join(root, TRANSFER_DIR, f"{result['method']}-{result['dataset_id']}.json"))
    for path in paths:
        write_text(path, text)     # a local path atomically, or an fsspec URL (one object put)
        log.info("transfer result written to %s", path)
    return paths


def decontamination_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Summary rows of a decontamination report for the CLI table."""
    if not report.get("enabled"):
        return [("decontam.", "off")]
    rows = [("pool", f"{report['pool']['dataset']} ({report['pool']['hashed_media']} media)")]
    for name in SPLITS:
        r = report[name]
        rows.append((f"{name} in pool", f"{r['found']} of {r['images']} ({r['exact']} exact, {r['near']} near; "
                                         f"{r['unchecked']} unchecked), {r['removed']} removed"))
    return rows
