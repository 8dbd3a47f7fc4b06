"""Decontamination: drop evaluation images that are in (or nearly in) the pretraining pool.

The pool is a dataset made by ``tagsight ingest``: every media row of its ``catalog/media.parquet``
that decoded (it has a perceptual hash; kept items and the duplicates ingest rejected alike). Each
evaluation image is hashed exactly as ingest hashes a media file (``tagsight.ingest.images.
process_image`` with the pool's image settings, so the pHash is taken after the same resize): the
SHA-256 of its bytes and the 64-bit DCT pHash. An image is a match when its SHA-256 equals a pool
item's (``exact``) or its pHash lies within ingest's default near-duplicate Hamming radius of one
(``near``, via ``NearIndex``). Matches are removed from the evaluation set; images ingest itself
would reject (``ImageRejected``) cannot be hashed: they are kept and counted as ``unchecked`` with
their reasons. Every count is reported: ``checked + unchecked = images``, ``exact + near = found =
removed``, ``kept = images - removed``. Hashes are cached per dataset identity in ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tagsight.data.index import SampleIndex
from tagsight.eval.datasets import LabelledImages, SubsetImages
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.schema.catalog import load_manifest, read_table
from tagsight.ingest.dedup import NearIndex
from tagsight.ingest.images import ImageConfig, ImageRejected, process_image
from tagsight.ingest.pipeline import IngestConfig
from tagsight.progress import Progress
from tagsight.storage import dataset_path, is_url, join, location, read_bytes
from tagsight.storage import exists as storage_exists

log = logging.getLogger(__name__)

_INGEST_RADIUS = IngestConfig().near_duplicate_radius   # ingest's default (None there: near-duplicates not looked for)
DEFAULT_RADIUS: int = 3 if _INGEST_RADIUS is None else _INGEST_RADIUS
HASH_FORMAT = "1"
_CHUNK = 64


@dataclass
class Pool:
    """The pretraining pool's hashes: exact SHA-256 lookup and a pHash ``NearIndex``."""

    dataset: str
    version: str
    image_config: ImageConfig
    radius: int
    keys: list[str]
    by_sha: dict[str, int]
    near: NearIndex

    @classmethod
    def from_dataset(cls, dataset_dir: str | Path, radius: int | None = DEFAULT_RADIUS) -> "Pool":
        dataset_dir = Path(dataset_dir)
        try:
            manifest = load_manifest(dataset_dir)
            table = read_table(dataset_dir, "media", ["source", "post_id", "media_index", "sha256", "phash"])
        except FileNotFoundError as exc:
            raise ReasonError("missing_pool", f"pretraining pool {dataset_dir}: {exc}") from None
        image_config = ImageConfig(**manifest.get("config", {}).get("image", {}))
        near = DEFAULT_RADIUS if radius is None else int(radius)
        rows = [r for r in table.to_pylist() if r["phash"] is not None]
        pool = cls(location(dataset_dir), manifest["version"], image_config, near,
                   [f"{r['source']}/{r['post_id']}#{r['media_index']}" for r in rows], {}, NearIndex(near))
        for i, r in enumerate(rows):
            pool.by_sha.setdefault(r["sha256"], i)
            pool.near.add(i, int(r["phash"], 16))
        log.info("pretraining pool %s: %d hashed media (near radius %d)", dataset_dir, len(rows), radius)
        return pool

    def match(self, sha256: str, phash: int) -> dict[str, Any] | None:
        """``{"kind", "distance", "pool"}`` of the pool item this image duplicates, or None."""
        if sha256 in self.by_sha:
            return {"kind": "exact", "distance": 0, "pool": self.keys[self.by_sha[sha256]]}
        hit = self.near.closest(phash)
        return None if hit is None else {"kind": "near", "distance": hit[1], "pool": self.keys[hit[0]]}


def dataset_matches(index: SampleIndex, pool: Pool) -> dict[str, dict[str, Any]]:
    """Post key -> pool match, for the posts of another ingested dataset (its ``index``) whose stored photo
    duplicates a pool item.

    Each stored JPEG is hashed with the pool's image settings (so its pHash is comparable whatever settings
    that dataset was ingested with); one that those settings reject cannot be checked and is returned as a
    match of kind ``unchecked`` with the reason, so that callers leave it out rather than trust it.
    """
    matches: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(index.post_keys):
        if key in matches:
            continue
        try:
            hit = pool.match(*hash_bytes(index.read_jpeg(i), pool.image_config))
        except ImageRejected as exc:
            hit = {"kind": "unchecked", "reason": exc.reason}
        if hit is not None:
            matches[key] = hit
    return matches


def hash_bytes(data: bytes, image_config: ImageConfig) -> tuple[str, int]:
    """(SHA-256 of the bytes, pHash after ingest's processing); raises ``ImageRejected`` as ingest would."""
    processed = process_image(data, image_config)
    return processed.sha256, processed.phash


def _hash_chunk(images: LabelledImages, indices: list[int], image_config: ImageConfig) -> list[list[Any]]:
    out: list[list[Any]] = []
    for i in indices:
        try:
            sha, ph = hash_bytes(images.read_bytes(i), image_config)
            out.append([sha, f"{ph:016x}", None])
        except ImageRejected as exc:
            out.append([None, None, exc.reason])
    return out


def image_hashes(images: LabelledImages, image_config: ImageConfig, workers: int = 0,
                 cache_dir: str | Path | None = None) -> list[list[Any]]:
    """``[sha256, phash hex, reject reason]`` per image (cached by dataset identity and image settings)."""
    key = hashlib.sha256(json.dumps([HASH_FORMAT, images.identity, asdict(image_config)],
                                    sort_keys=True, default=str).encode()).hexdigest()[:40]
    path = Path(cache_dir) / "hashes" / f"{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        cached = json.loads(path.read_text())
        if isinstance(cached, list):
            return cached
        log.warning("%s is not a list of image hashes: hashing again", path)
    chunks = [list(range(s, min(s + _CHUNK, len(images)))) for s in range(0, len(images), _CHUNK)]
    rows: list[list[Any]] = []
    with Progress(len(images), "decontamination hashes", "img") as progress:
        if workers > 0:
            with ProcessPoolExecutor(workers) as ex:
                for part in ex.map(_hash_chunk, [images] * len(chunks), chunks, [image_config] * len(chunks)):
                    rows.extend(part)
                    progress.update(len(part))
        else:
            for chunk in chunks:
                rows.extend(_hash_chunk(images, chunk, image_config))
                progress.update(len(chunk))
    if path is not None:
        atomic_write_text(path, json.dumps(rows))
    return rows


def find_matches(images: LabelledImages, pool: Pool, workers: int = 0,
                 cache_dir: str | Path | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices of the images to keep (no pool match) and the counts (see the module docstring)."""
    rows = image_hashes(images, pool.image_config, workers, cache_dir)
    matches, keep = [], []
    for i, (sha, ph, _) in enumerate(rows):
        hit = None if sha is None else pool.match(sha, int(ph, 16))
        if hit is None:
            keep.append(i)
        else:
            matches.append({"image": images.name(i), "class": images.classes[int(images.labels[i])], **hit})
    kinds = Counter(m["kind"] for m in matches)
    unchecked = Counter(r[2] for r in rows if r[0] is None)
    report = {"images": len(images), "checked": len(images) - sum(unchecked.values()),
              "unchecked": sum(unchecked.values()), "unchecked_reasons": dict(unchecked),
              "found": len(matches), "exact": kinds.get("exact", 0), "near": kinds.get("near", 0),
              "removed": len(matches), "kept": len(keep), "matches": matches}
    log.info("decontamination against %s: %d of %d images found in the pool (%d exact, %d near)",
             pool.dataset, report["found"], report["images"], report["exact"], report["near"])
    return np.asarray(keep, dtype=np.int64), report


def keep_subset(images: LabelledImages, keep: np.ndarray) -> LabelledImages:
    """``images`` itself when nothing is removed, else the ``SubsetImages`` of ``keep``."""
    return images if len(keep) == len(images) else SubsetImages(images, keep)


def decontaminate(images: LabelledImages, pool: Pool, workers: int = 0,
                  cache_dir: str | Path | None = None) -> tuple[LabelledImages, dict[str, Any]]:
    """The images with every pool match removed, and the counts (see the module docstring)."""
    keep, report = find_matches(images, pool, workers, cache_dir)
    return keep_subset(images, keep), report


def pool_from_lineage(run_dir: str | Path) -> Path | str | None:
    """The dataset a tagsight run was trained on (its ``run.json`` lineage: a local ``Path`` or an fsspec URL), or
    None when it names none. ``run_dir`` may be a checkpoint folder of the run, or a run at a URL."""
    if is_url(run_dir):
        candidates: list[str | Path] = [join(run_dir, "run.json")]
    else:
        run_dir = Path(run_dir)
        candidates = [run_dir / "run.json", run_dir.parent / "run.json", run_dir.parent.parent / "run.json"]
    for candidate in candidates:
        if storage_exists(candidate):
            dataset = json.loads(read_bytes(candidate)).get("dataset", {}).get("path")
            return dataset_path(dataset) if dataset else None
    return None


def pool_summary(pool: Pool) -> dict[str, Any]:
    """What the eval result records about the pool."""
    return {"dataset": pool.dataset, "version": pool.version, "hashed_media": len(pool.keys),
            "near_radius": pool.radius, "max_side": pool.image_config.max_side}
