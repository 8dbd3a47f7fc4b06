"""Score every (sample, label) pair of a dataset with a model that never trained on that sample.

Protocol (``score_dataset``):

1. Frozen features of every sample from a backbone that did not learn from this dataset's hashtags
   (default the packaged ImageNet EfficientNet-Lite0; any ``tagsight eval`` backbone spec works),
   extracted with the eval transform and cached like ``tagsight eval`` features.
2. Posts are split into ``folds`` folds by a seeded hash of the post key, so all media of a post
   share a fold. For each fold a linear multi-label head (zero-initialised, standardised inputs,
   Adam, ``bce`` per-label sigmoid or ``softmax`` over 1/k targets) is trained on the other folds
   and predicts the held-out fold: every pair gets an out-of-fold probability.
3. A label's *visualness* is how predictable the tag is from pixels: its out-of-fold average
   precision over all samples, as skill above chance, (AP - prevalence) / (1 - prevalence), so a
   random tag scores about 0 however frequent it is; AP, support and prevalence are kept beside it.

Everything is deterministic for a seed. ``save_scores`` writes a scores folder:
``pairs.parquet`` (one row per labelled pair), ``labels.json`` (visualness per label) and
``scores.json`` (config, dataset and vocabulary versions, fold sizes, timings).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch import nn

from tagsight.data.index import SampleIndex, unit_hash
from tagsight.engines import Engine
from tagsight.eval.datasets import LabelledImages
from tagsight.metrics import per_label_average_precision
from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text
from tagsight.progress import Progress
from tagsight.tags.vocab import Vocabulary
from tagsight.storage import location

log = logging.getLogger(__name__)

LOSSES = ("bce", "softmax")
PAIRS_FILE, LABELS_FILE, META_FILE = "pairs.parquet", "labels.json", "scores.json"
SCORES_FORMAT = 1
_PAIR_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("sample", pa.int64()), ("key", pa.string()), ("post_key", pa.string()), ("label", pa.int32()),
    ("label_name", pa.string()), ("hashtags", pa.list_(pa.string())), ("fold", pa.int32()),
    ("score", pa.float32()), ("rank", pa.int32()),
]
PAIR_SCHEMA = pa.schema(_PAIR_COLUMNS)


@dataclass(frozen=True)
class ScoreConfig:
    """How pairs are scored; ``img_size`` None = the backbone's default input size."""

    backbone: str = "efficientnet-lite0"
    img_size: int | None = None
    folds: int = 5
    seed: int = 0
    loss: str = "bce"
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 (cross-fitting needs a held-out fold), got {self.folds}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"epochs, batch_size, lr must be > 0 and weight_decay >= 0, got {self}")
        if self.img_size is not None and self.img_size < 8:
            raise ValueError(f"img_size must be >= 8 pixels, got {self.img_size}")


@dataclass
class Scores:
    """Out-of-fold probabilities ``[N, L]`` with what they were computed from."""

    probs: np.ndarray
    label_lists: list[list[int]]
    folds: np.ndarray
    index: SampleIndex
    vocab: Vocabulary
    config: ScoreConfig
    info: dict[str, Any] = field(default_factory=dict)


class IndexImages(LabelledImages):
    """Every sample of a dataset as an image set for feature extraction (no class labels needed).

    Its feature cache file records what it holds (``lineage``: the dataset and every row's post key),
    so ``tagsight forget`` finds and deletes it; the cache key changes with the tombstones, so a cache
    written before a forget is never read back after it.
    """

    def __init__(self, index: SampleIndex) -> None:
        self.index = index
        self.classes = ["sample"]
        self.labels = np.zeros(len(index), dtype=np.int64)
        forgotten = f"-{index.tombstones}" if index.tombstones else ""
        self.identity = f"dataset:{index.version}{forgotten}:all-samples"

    def lineage(self) -> dict[str, Any]:
        return {"parents": [{"kind": "dataset", "path": location(self.index.dataset_dir),
                             "version": self.index.version}],
                "tombstones": self.index.tombstones, "post_keys": list(self.index.post_keys)}

    def load(self, i: int) -> Image.Image:
        with Image.open(io.BytesIO(self.index.read_jpeg(i))) as img:
            return img.convert("RGB")


def post_folds(post_keys: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold id in ``[0, folds)`` of each sample, from a seeded hash of its post key (one fold per post)."""
    per_post = {key: min(int(unit_hash(key, seed) * folds), folds - 1) for key in dict.fromkeys(post_keys)}
    return np.fromiter((per_post[k] for k in post_keys), dtype=np.int64, count=len(post_keys))


def multi_hot(label_lists: list[list[int]], num_labels: int) -> np.ndarray:
    """``[N, L]`` float32 with 1 on each sample's labels."""
    out = np.zeros((len(label_lists), num_labels), dtype=np.float32)
    for i, labels in enumerate(label_lists):
        out[i, labels] = 1.0
    return out


def train_head(x: torch.Tensor, y: torch.Tensor, cfg: ScoreConfig) -> nn.Module:
    """A standardised-input linear head fitted to multi-hot ``y`` (see the module docstring)."""
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    if cfg.loss == "softmax":
        keep = y.sum(1) > 0
        x, y = x[keep], y[keep] / y[keep].sum(1, keepdim=True)
    layer = nn.Linear(x.shape[1], y.shape[1])
    nn.init.zeros_(layer.weight)
    with torch.no_grad():  # start at the label priors: Adam moves a bias only ~lr per step
        prior = y.mean(0).clamp(1e-4, 1 - 1e-4)
        layer.bias.copy_(torch.log(prior / (1 - prior)) if cfg.loss == "bce" else torch.log(prior))
    xs = (x - mean) / std
    opt = torch.optim.Adam(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(xs), generator=gen).split(cfg.batch_size):
            logits = layer(xs[idx])
            loss = (nn.functional.binary_cross_entropy_with_logits(logits, y[idx]) if cfg.loss == "bce"
                    else -(y[idx] * logits.log_softmax(1)).sum(1).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return nn.Sequential(_Standardise(mean, std), layer)


class _Standardise(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def cross_fit(features: np.ndarray, label_lists: list[list[int]], num_labels: int, folds: np.ndarray,
              cfg: ScoreConfig) -> np.ndarray:
    """Out-of-fold probabilities ``[N, L]``: fold f is predicted by a head trained on all other folds."""
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.from_numpy(multi_hot(label_lists, num_labels))
    probs = np.zeros((len(x), num_labels), dtype=np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a linear head is tiny: one thread beats contended many on a shared CPU
    try:
        _fit_folds(x, y, folds, cfg, probs)
    finally:
        torch.set_num_threads(threads)
    return probs


def _fit_folds(x: torch.Tensor, y: torch.Tensor, folds: np.ndarray, cfg: ScoreConfig, probs: np.ndarray) -> None:
    with Progress(cfg.folds, "cross-fitting heads", unit="fold", every=0.0, logger=log) as progress:
        for fold in range(cfg.folds):
            held = torch.from_numpy(folds == fold)
            if not held.any() or held.all():
                raise ReasonError("fold_empty", f"fold {fold} of {cfg.folds} holds {int(held.sum())} of {len(x)} "
                                                "samples: too few posts for this many folds")
            head = train_head(x[~held], y[~held], cfg)
            with torch.no_grad():
                logits = head(x[held])
                p = torch.sigmoid(logits) if cfg.loss == "bce" else logits.softmax(1)
            probs[held.numpy()] = p.numpy()
            progress.update()


FEATURE_BATCH = 64
FEATURE_BLOCK = 4 * FEATURE_BATCH  # a whole number of batches: an engine's blocks hold the batches of one process


def feature_block(backbone: Any, images: IndexImages, batch_size: int, positions: list[int]) -> np.ndarray:
    """The per-block function of feature extraction on an engine: features of the samples at ``positions``,
    in batches of ``batch_size`` under the eval transform, as ``extract_features`` computes them."""
    from tagsight.data.transforms import eval_transform

    transform, model = eval_transform(backbone.data_config), backbone.eval()
    out = [np.zeros((0, backbone.num_features), dtype=np.float32)]
    with torch.no_grad():
        for k in range(0, len(positions), batch_size):
            batch = torch.stack([transform(images.load(i)) for i in positions[k:k + batch_size]])
            out.append(model(batch).float().numpy())
    return np.concatenate(out)


def engine_features(backbone: Any, images: IndexImages, engine: Engine) -> np.ndarray:
    """Features of every sample, block by block on ``engine``, put together in sample order here."""
    blocks = [list(range(k, min(k + FEATURE_BLOCK, len(images)))) for k in range(0, len(images), FEATURE_BLOCK)]
    parts: dict[int, np.ndarray] = {}
    with Progress(len(images), "features", unit="img", logger=log) as progress:
        for k, feats in engine.map(feature_block, ((b,) for b in blocks), common=(backbone, images, FEATURE_BATCH)):
            parts[k] = feats
            progress.update(len(feats))
    return np.concatenate([parts[k] for k in range(len(blocks))]).astype(np.float32, copy=False)


def dataset_features(index: SampleIndex, cfg: ScoreConfig, cache_dir: str | Path | None,
                     workers: int = 0, engine: Engine | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Frozen features of every sample (cached), and a description of the backbone. ``engine`` extracts them
    block by block (default: here, with ``workers`` data loader processes)."""
    from tagsight.eval.backbones import load_backbone
    from tagsight.eval.features import extract_features
    from tagsight.models.backbone import backbone_fingerprint

    backbone = load_backbone(cfg.backbone, cfg.img_size, seed=cfg.seed)
    compute = None if engine is None else functools.partial(engine_features, engine=engine)
    feats, _ = extract_features(backbone, IndexImages(index), batch_size=FEATURE_BATCH, workers=workers,
                                cache_dir=cache_dir, compute=compute)
    return feats, {"spec": cfg.backbone, "model": backbone.name, "data_config": backbone.data_config.to_dict(),
                   "num_features": backbone.num_features, "fingerprint": backbone_fingerprint(backbone)[:16]}


def score_dataset(dataset_dir: str | Path, vocab: Vocabulary, cfg: ScoreConfig | None = None, *,
                  cache_dir: str | Path | None = None, workers: int = 0,
                  features: np.ndarray | None = None, engine: Engine | None = None) -> Scores:
    """Cross-fitted pair scores of ``dataset_dir`` under ``vocab`` (``features`` skips extraction; ``engine``
    extracts them block by block)."""
    cfg = cfg or ScoreConfig()
    start = time.perf_counter()
    index = SampleIndex.build(dataset_dir)
    label_lists = [vocab.labels_for(tags) for tags in index.hashtags]
    if not any(label_lists):
        raise ReasonError("no_labelled_samples", f"{dataset_dir}: no sample carries a label of vocabulary "
                                                 f"{vocab.version}: is it the dataset's vocabulary?")
    backbone_info: dict[str, Any] = {"spec": "given features"}
    if features is None:
        features, backbone_info = dataset_features(index, cfg, cache_dir, workers, engine)
    if len(features) != len(index):
        raise ValueError(f"{len(features)} feature rows for {len(index)} samples")
    folds = post_folds(index.post_keys, cfg.folds, cfg.seed)
    probs = cross_fit(features, label_lists, len(vocab), folds, cfg)
    info = {"backbone": backbone_info, "fold_sizes": np.bincount(folds, minlength=cfg.folds).tolist(),
            "seconds": round(time.perf_counter() - start, 2)}
    log.info("scored %d pairs of %d samples in %.1fs", sum(map(len, label_lists)), len(index), info["seconds"])
    return Scores(probs, label_lists, folds, index, vocab, cfg, info)


def label_table(scores: Scores) -> list[dict[str, Any]]:
    """Visualness per label: out-of-fold AP, support (positive samples), prevalence (chance AP), mean pair score."""
    targets = multi_hot(scores.label_lists, len(scores.vocab))
    ap = per_label_average_precision(scores.probs, targets)
    support = targets.sum(0)
    rows = []
    for label in scores.vocab.labels:
        i, n = label.index, int(support[label.index])
        mean_score = float(scores.probs[targets[:, i] > 0, i].mean()) if n else None
        prevalence = n / len(targets)
        rows.append({"index": i, "label": label.label, "lexname": label.lexname, "support": n,
                     "prevalence": prevalence, "ap": None if np.isnan(ap[i]) else float(ap[i]),
                     "visualness": visualness(float(ap[i]), prevalence), "mean_pair_score": mean_score,
                     "members": list(label.members)[:8]})
    return rows


def visualness(ap: float, prevalence: float) -> float | None:
    """Out-of-fold AP above chance, scaled to [.., 1]: (AP - prevalence) / (1 - prevalence); ~0 for a random tag.

    Raw AP rises with a label's frequency even when pixels say nothing (chance AP = prevalence), so a
    frequent random tag would look more visual than a rare real one; the skill score removes that.
    """
    if np.isnan(ap) or prevalence >= 1.0:
        return None
    return (ap - prevalence) / (1.0 - prevalence)


def pair_rows(scores: Scores) -> dict[str, list[Any]]:
    """Column lists of ``pairs.parquet``: one row per (sample, label) the sample's hashtags carry."""
    vocab, index = scores.vocab, scores.index
    ranks = (-scores.probs).argsort(1, kind="stable").argsort(1, kind="stable") + 1
    cols: dict[str, list[Any]] = {name: [] for name in PAIR_SCHEMA.names}
    for i, labels in enumerate(scores.label_lists):
        for label in labels:
            tags = [t for t in index.hashtags[i] if vocab.labels_for([t]) == [label]]
            row = (i, index.keys[i], index.post_keys[i], label, vocab.labels[label].label, tags,
                   int(scores.folds[i]), float(scores.probs[i, label]), int(ranks[i, label]))
            for name, value in zip(PAIR_SCHEMA.names, row):
                cols[name].append(value)
    return cols


def save_scores(scores: Scores, out_dir: str | Path, *, dataset_dir: str | Path, vocab_path: str | Path) -> Path:
    """Write ``pairs.parquet``, ``labels.json`` and ``scores.json`` into ``out_dir``; returns it."""
    out = Path(out_dir)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(pair_rows(scores), schema=PAIR_SCHEMA), buf, compression="zstd")
    atomic_write_bytes(out / PAIRS_FILE, buf.getvalue())
    labels = label_table(scores)
    atomic_write_text(out / LABELS_FILE, json.dumps(labels, indent=1, ensure_ascii=False) + "\n")
    scored = [r["ap"] for r in labels if r["ap"] is not None]
    meta = {"format": SCORES_FORMAT, "version": _scores_version(scores),
            "dataset": {"path": location(dataset_dir), "version": scores.index.version,
                        "samples": len(scores.index)},
            "vocab": {"path": location(vocab_path), "version": scores.vocab.version,
                      "labels": len(scores.vocab)},
            "config": asdict(scores.config), "pairs": int(sum(map(len, scores.label_lists))),
            "oof_mAP": float(np.mean(scored)) if scored else None, **scores.info}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=1) + "\n")
    log.info("scores %s written to %s", meta["version"], out)
    return out


def _scores_version(scores: Scores) -> str:
    h = hashlib.sha256(json.dumps([scores.index.version, scores.vocab.version, asdict(scores.config)]).encode())
    h.update(np.ascontiguousarray(scores.probs).tobytes())
    return h.hexdigest()[:16]


def load_scores_meta(scores_dir: str | Path) -> dict[str, Any]:
    """``scores.json`` of a scores folder, with a clear error when it is not one."""
    path = Path(scores_dir) / META_FILE
    if not path.is_file():
        raise ReasonError("not_a_scores_folder", f"{scores_dir} has no {META_FILE}: make it with "
                                                 "'tagsight relevance score DATASET_DIR --vocab VOCAB --out DIR'")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != SCORES_FORMAT:
        raise ReasonError("scores_format", f"{path}: format {meta.get('format')!r}, expected {SCORES_FORMAT}")
    return meta


def load_pairs(scores_dir: str | Path) -> pa.Table:
    return pq.read_table(Path(scores_dir) / PAIRS_FILE)


def load_labels(scores_dir: str | Path) -> list[dict[str, Any]]:
    labels: list[dict[str, Any]] = json.loads((Path(scores_dir) / LABELS_FILE).read_text(encoding="utf-8"))
    return labels
