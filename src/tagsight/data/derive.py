"""Derived dataset versions: a subset (or relabelling) of a parent dataset, written as a new version.

Curation exports, relevance filtering and forgetting all make a new dataset from an old one
without touching it: every parent sample is kept (image bytes copied unchanged, metadata possibly
edited) or dropped with a reason. The new folder has the usual layout (``manifest.json``,
``shards/``, ``catalog/``) so every tool reads it like an ingested dataset, and its manifest names
its parent (``parent: {path, version}``) and the derivation (``kind`` and ``settings``), so lineage
can be followed back to the source. Counts reconcile: ``samples_in = samples_kept + sum(dropped)``;
every dropped sample leaves a row in ``catalog/decisions.parquet`` (stage = the derivation kind).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tagsight import __version__
from tagsight.data.index import SampleIndex
from tagsight.fsio import atomic_write_bytes
from tagsight.schema import catalog
from tagsight.ingest.shards import ShardInfo, ShardWriter
from tagsight.schema.text import fold_hashtag
from tagsight.progress import Progress
from tagsight.storage import location

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keep:
    """Keep a sample; ``meta`` replaces its JSON metadata when given (e.g. filtered hashtags)."""

    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Drop:
    """Drop a sample for ``reason`` (a stable code); ``detail`` is free text for people."""

    reason: str
    detail: str = ""


Edit = Callable[[int, dict[str, Any]], "Keep | Drop"]


@dataclass
class DerivedSummary:
    version: str
    parent_version: str
    samples_in: int
    samples_kept: int
    dropped: Counter[str] = field(default_factory=Counter)
    posts_kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "parent_version": self.parent_version, "samples_in": self.samples_in,
                "samples_kept": self.samples_kept, "dropped": dict(sorted(self.dropped.items())),
                "posts_kept": self.posts_kept}


def derive_dataset(parent_dir: str | Path, out_dir: str | Path, edit: Edit, kind: str,
                   settings: dict[str, Any] | None = None, samples_per_shard: int = 1000) -> DerivedSummary:
    """Write ``out_dir`` as a new version of ``parent_dir`` with ``edit(i, meta)`` applied to every sample."""
    parent_dir, out_dir = Path(parent_dir), Path(out_dir)
    if out_dir.resolve() == parent_dir.resolve():
        raise ValueError(f"a derived dataset must go to a new folder, not over its parent {parent_dir}")
    index = SampleIndex.build(parent_dir)
    shard_dir = out_dir / "shards"
    if shard_dir.exists():
        shutil.rmtree(shard_dir)
    kept, dropped, shards = _write_samples(index, shard_dir, edit, samples_per_shard)
    summary = DerivedSummary("", index.version, len(index), len(kept), Counter(d["reason"] for d in dropped))
    summary.posts_kept = _write_catalog(parent_dir, out_dir, kept, dropped, kind)
    summary.version = _write_manifest(parent_dir, out_dir, index.version, kind, settings or {}, shards, summary)
    log.info("derived %s from %s (%s): %d of %d samples kept, dropped %s", summary.version, index.version, kind,
             summary.samples_kept, summary.samples_in, dict(summary.dropped) or "none")
    return summary


def _write_samples(index: SampleIndex, shard_dir: Path, edit: Edit,
                   per_shard: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[ShardInfo]]:
    """Copy kept samples into new shards; returns ({key: (meta, shard)}, dropped rows, shards)."""
    writer = ShardWriter(shard_dir, per_shard)
    kept: dict[str, Any] = {}
    dropped: list[dict[str, Any]] = []
    with Progress(len(index), "derive", unit="sample") as progress:
        for i in range(len(index)):
            meta = index.read_meta(i)
            action = edit(i, meta)
            if isinstance(action, Drop):
                dropped.append({"key": index.keys[i], "meta": meta, "reason": action.reason, "detail": action.detail})
            else:
                new_meta = meta if action.meta is None else action.meta
                kept[index.keys[i]] = (new_meta, writer.write(index.keys[i], index.read_jpeg(i), new_meta))
            progress.update()
    index.close()
    return kept, dropped, writer.close()


def _post_key(meta: dict[str, Any]) -> tuple[str, str]:
    return str(meta["source"]), str(meta["post_id"])


def _write_catalog(parent_dir: Path, out_dir: Path, kept: dict[str, Any], dropped: list[dict[str, Any]],
                   kind: str) -> int:
    """Catalog of the derived version: kept posts and media (hashtags as edited), decisions for drops."""
    post_tags = {_post_key(meta): list(meta.get("hashtags") or []) for meta, _ in kept.values()}
    posts = [dict(r, hashtags=post_tags[(r["source"], r["post_id"])])
             for r in catalog.read_table(parent_dir, "posts").to_pylist() if (r["source"], r["post_id"]) in post_tags]
    catalog.write_table(out_dir, "posts", posts)
    catalog.write_table(out_dir, "hashtags", [
        dict(source=s, post_id=p, position=j, tag=t, folded=fold_hashtag(t))
        for (s, p), tags in post_tags.items() for j, t in enumerate(tags)])
    media = catalog.read_table(parent_dir, "media")
    media = media.filter(pc.is_in(media["sample_key"], value_set=pa.array(list(kept), type=pa.string())))
    catalog.write_table(out_dir, "media", [dict(r, shard=kept[r["sample_key"]][1]) for r in media.to_pylist()])
    catalog.write_table(out_dir, "decisions", [_decision(d, kind) for d in dropped])
    dups = [r for r in catalog.read_table(parent_dir, "duplicates").to_pylist()
            if (r["of_source"], r["of_post_id"]) in post_tags]
    catalog.write_table(out_dir, "duplicates", dups)
    return len(posts)


def _decision(d: dict[str, Any], kind: str) -> dict[str, Any]:
    source, post_id = _post_key(d["meta"])
    return {"ref": d["key"], "source": source, "post_id": post_id, "author_id": d["meta"].get("author_id"),
            "status": "rejected", "stage": kind, "reason": d["reason"], "detail": d["detail"]}


def _write_manifest(parent_dir: Path, out_dir: Path, parent_version: str, kind: str, settings: dict[str, Any],
                    shards: list[ShardInfo], summary: DerivedSummary) -> str:
    content = {"parent_version": parent_version, "kind": kind, "settings": settings,
               "shards": [s.to_dict() for s in shards]}
    version = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    parent = catalog.load_manifest(parent_dir)
    manifest = {"format": "tagsight-dataset", "version": version, "tagsight_version": __version__,
                "format_version": parent.get("format_version"), "source": parent.get("source"),
                "policy": parent.get("policy"), "config": parent.get("config", {}), "parent": {"path": location(parent_dir), "version": parent_version},
                "derivation": {"kind": kind, "settings": settings},
                "shards": content["shards"], "counts": {k: v for k, v in summary.to_dict().items() if k != "version"},
                "catalog": {t: f"catalog/{t}.parquet" for t in catalog.TABLES}}
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
    return version
