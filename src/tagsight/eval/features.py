"""Frozen-backbone features of a labelled image set, extracted once and cached.

``extract_features`` runs the backbone (eval mode, ``torch.no_grad``) on the eval transform of the
backbone's data config (short side to size / 0.875, centre crop). With ``cache_dir`` the result is
stored as ``cache_dir/<key>.safetensors``; the key hashes the backbone (name, every weight tensor,
data config), the dataset's ``identity`` and the transform settings, so a second call with the
same inputs reads the file instead of recomputing, and any change gives a new key. Features of an
ingested dataset record their lineage and per-row post keys in the file's header metadata
(``tagsight.lineage.FEATURE_META_KEY``), so ``tagsight forget`` finds and deletes the files that
hold a forgotten post; the dataset's tombstone state is part of the key, so the next extraction
(which leaves forgotten posts out) writes a new file.

Under torchrun every rank extracts the strided share ``rank::world_size``; the shares are gathered
with ``all_gather_cat`` (unequal lengths allowed) and put back in dataset order, so every rank
returns the full arrays. Only rank 0 writes the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader, Dataset

from tagsight.data.transforms import EVAL_CROP_FRACTION, eval_transform
from tagsight.eval.datasets import LabelledImages
from tagsight.fsio import atomic_write_bytes
from tagsight.lineage import FEATURE_META_KEY
from tagsight.models.backbone import Backbone, backbone_fingerprint  # noqa: F401  (re-exported)
from tagsight.train.distributed import DistEnv, all_gather_cat

log = logging.getLogger(__name__)

CACHE_FORMAT = "2"


class _Transformed(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, images: LabelledImages, positions: np.ndarray,
                 transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.images, self.positions, self.transform = images, positions, transform

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, int]:
        i = int(self.positions[j])
        return self.transform(self.images.load(i)), i


def cache_key(backbone: Backbone, images: LabelledImages) -> str:
    """The cache file stem for these features (see the module docstring)."""
    parts = {"format": CACHE_FORMAT, "backbone": backbone_fingerprint(backbone), "dataset": images.identity,
             "transform": {"kind": "eval", "crop_fraction": EVAL_CROP_FRACTION, **backbone.data_config.to_dict()}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


def extract_features(backbone: Backbone, images: LabelledImages, batch_size: int = 64, workers: int = 0,
                     env: DistEnv | None = None, cache_dir: str | Path | None = None,
                     compute: Callable[[Backbone, LabelledImages], np.ndarray] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(features float32 [N, D], labels int64 [N])`` in dataset order, from the cache when present.
    ``compute`` replaces the extraction here (an engine's, ``tagsight.relevance.score.engine_features``)."""
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    env = env or DistEnv()
    path = Path(cache_dir) / f"{cache_key(backbone, images)}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        log.info("features of %d images read from cache %s", len(images), path)
        return _read(path)
    feats = compute(backbone, images) if compute is not None else _compute(backbone, images, batch_size, workers, env)
    labels = np.asarray(images.labels, dtype=np.int64)
    if path is not None and env.is_main:
        data = {"features": torch.from_numpy(feats), "labels": torch.from_numpy(labels)}
        record = images.lineage()
        meta = {FEATURE_META_KEY: json.dumps(record, sort_keys=True)} if record else None
        atomic_write_bytes(path, _safetensors_bytes(data, meta))
        log.info("features cached in %s", path)
    return feats, labels


def _compute(backbone: Backbone, images: LabelledImages, batch_size: int, workers: int, env: DistEnv) -> np.ndarray:
    feats, idx = extract_share(backbone, images, batch_size, workers, env)
    if env.distributed:
        feats = all_gather_cat(feats.to(env.device), env).cpu()
        idx = all_gather_cat(idx.to(env.device), env).cpu()
    if not torch.equal(torch.sort(idx).values, torch.arange(len(images))):
        raise RuntimeError(f"gathered feature indices do not cover the {len(images)} images exactly once")
    out = torch.empty_like(feats)
    out[idx] = feats
    log.info("extracted %d x %d features with %s", out.shape[0], out.shape[1], backbone.name)
    return out.numpy().astype(np.float32, copy=False)


def extract_share(backbone: Backbone, images: LabelledImages, batch_size: int, workers: int,
                  env: DistEnv) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's features and dataset positions (``rank::world_size``), on the CPU."""
    positions = np.arange(env.rank, len(images), env.world_size)
    loader = DataLoader(_Transformed(images, positions, eval_transform(backbone.data_config)),
                        batch_size=batch_size, num_workers=workers, shuffle=False)
    model = backbone.to(env.device).eval()
    chunks, order = [torch.zeros(0, backbone.num_features)], [torch.zeros(0, dtype=torch.int64)]
    with torch.no_grad():
        for x, idx in loader:
            chunks.append(model(x.to(env.device)).float().cpu())
            order.append(idx.to(torch.int64))
    return torch.cat(chunks), torch.cat(order)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = load_file(str(path))
    return data["features"].numpy().astype(np.float32), data["labels"].numpy().astype(np.int64)


def _safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
