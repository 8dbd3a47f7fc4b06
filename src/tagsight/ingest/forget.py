"""The dataset artifact kind of ``forget``: filtered by the loader at once, rewritten as a new version on request.

Without ``rewrite`` nothing in the dataset changes but its tombstones (recorded by ``forget``):
``SampleIndex`` leaves the forgotten samples out when it loads, so a run started afterwards never
sees them, and ``affected`` keeps reporting them until the shards are rewritten.

With ``rewrite`` only the shards that hold a forgotten sample are rewritten, each into a new
content-named file (``shard-00012.<sha>.tar``; shards without a forgotten sample are kept as they
are). Then the catalog drops every row of the forgotten posts (posts, hashtags, media, duplicates)
and turns their decision rows into ``rejected / forget / forgotten`` with the version they were
removed from; the manifest gets the new shard list, recomputed counts, a new version, ``parent``
(the version it was made from, the tombstones applied and what was removed) and ``history``; a
derived dataset (relevance filter, curation export) keeps the parent it was derived from as
``derived_from``, so lineage still leads to that folder. The
manifest is replaced last, atomically: a reader sees the old version or the new one. Then the
stale sample-index cache and the old shard files are deleted (a process that still holds an old
shard open keeps reading it consistently until it closes it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tagsight.fsio import atomic_write_bytes, atomic_write_text
from tagsight.schema import catalog
from tagsight.ingest.summary import summarise
from tagsight.ingest.shards import ShardInfo, filter_shard
from tagsight.privacy.forget import (FORGOTTEN_REASON, Forgotten, find_datasets, join_post_keys, register_forgetter,
                                     row_post_keys)

log = logging.getLogger(__name__)

ERASED_REASON = "forgotten_record"   # a decision row of a forgotten post that the dataset never kept, erased
INDEX_CACHE = "index.parquet"   # tagsight.data.index's cache: it lists post keys and hashtags, so it goes too


def forgotten_samples(dataset_dir: Path, forgotten: Forgotten) -> dict[str, set[str]]:
    """shard name -> sample keys of forgotten posts that the current version's shards still hold."""
    media = catalog.read_table(dataset_dir, "media", ["source", "post_id", "status", "sample_key", "shard"])
    media = media.filter(pc.equal(media["status"], pa.scalar("ok")))
    gone = _kept_forgotten_posts(dataset_dir, forgotten) | set(forgotten.post_keys)
    out: dict[str, set[str]] = defaultdict(set)
    for key, sample, shard in zip(row_post_keys(media), media["sample_key"].to_pylist(), media["shard"].to_pylist()):
        if key in gone and shard is not None and sample is not None:   # an ``ok`` media row has both
            out[shard].add(sample)
    return dict(out)


def stale_decisions(decisions: pa.Table, forgotten: Forgotten) -> list[bool]:
    """Decision rows of forgotten posts that are not yet the ``forgotten`` record (e.g. rejected at ingest or
    dropped by a derivation): they still name the post and its author, so a rewrite turns them into the record."""
    keys = row_post_keys(decisions)
    authors, reasons = decisions["author_id"].to_pylist(), decisions["reason"].to_pylist()
    return [r != FORGOTTEN_REASON and forgotten.forgets(k or "", a) for k, a, r in zip(keys, authors, reasons)]


def affected(dataset_dir: Path, forgotten: Forgotten) -> int:
    samples = sum(len(v) for v in forgotten_samples(dataset_dir, forgotten).values())
    if not forgotten.rewrite:
        return samples
    return samples + sum(stale_decisions(catalog.read_table(dataset_dir, "decisions"), forgotten))


def purge(dataset_dir: Path, forgotten: Forgotten) -> str:
    n = affected(dataset_dir, forgotten)
    if not forgotten.rewrite:
        return (f"unchanged: {n} samples left out by the loader against the tombstones "
                "(shards still hold them: rewrite with --rewrite)")
    return rewrite_dataset(dataset_dir, forgotten)


# ------------------------------------------------------------------------------------------- rewriting


def _rewrite_shard(shard_dir: Path, name: str, drop: set[str], forgotten: Forgotten) -> tuple[ShardInfo | None, set[str]]:
    """Write ``name`` without the forgotten samples as a new content-named shard; (its info or None, keys dropped)."""
    def forgotten_sample(key: str, meta: dict[str, Any]) -> bool:
        post_key = f"{meta.get('source')}/{meta.get('post_id')}"
        return key in drop or forgotten.forgets(post_key, meta.get("author_id"), meta.get("hashtags") or ())

    data, kept, dropped = filter_shard(shard_dir / name, forgotten_sample)
    if not kept:
        return None, dropped
    sha = hashlib.sha256(data).hexdigest()
    final = f"{name.split('.', 1)[0]}.{sha[:12]}.tar"
    atomic_write_bytes(shard_dir / final, data)
    return ShardInfo(final, kept, len(data), sha), dropped


def _rewrite_shards(dataset_dir: Path, manifest: dict[str, Any], targets: dict[str, set[str]],
                    forgotten: Forgotten) -> tuple[list[dict[str, Any]], dict[str, str | None], int]:
    """New shard list, old name -> new name (None: emptied), samples dropped."""
    shard_dir = dataset_dir / "shards"
    shards, renamed, dropped = [], {}, 0
    for entry in manifest["shards"]:
        if entry["name"] not in targets:
            shards.append(entry)
            continue
        info, gone = _rewrite_shard(shard_dir, entry["name"], targets[entry["name"]], forgotten)
        dropped += len(gone)
        renamed[entry["name"]] = info.name if info else None
        if info:
            shards.append(info.to_dict())
    return shards, renamed, dropped


def _drop_posts(table: pa.Table, gone: pa.Array[Any]) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(join_post_keys(table), gone)))


def _forget_decisions(decisions: pa.Table, gone: pa.Array[Any], version: str, forgotten: Forgotten) -> pa.Table:
    """Decision rows of the forgotten kept posts become the record ``rejected / forget / forgotten`` (their key
    kept, so the removal can be traced); any other row of a forgotten post (``stale_decisions``: rejected at
    ingest, dropped by a derivation) is erased: ``rejected / forget / forgotten_record`` with no ref, source,
    post id or author."""
    keys = join_post_keys(decisions)
    hit = pc.and_(pc.equal(decisions["status"], pa.scalar("kept")), pc.is_in(keys, gone))
    not_hit = pc.or_kleene(pc.invert(hit), pc.is_null(hit))   # a row without a status is not a hit
    stale = pc.and_(pa.array(stale_decisions(decisions, forgotten), pa.bool_()), not_hit)
    for mask, reason, detail in ((hit, FORGOTTEN_REASON, f"removed from version {version}"),
                                 (stale, ERASED_REASON, f"record erased in version {version}")):
        values = {"status": "rejected", "stage": "forget", "reason": reason, "detail": detail}
        for column, value in values.items():
            i = decisions.schema.get_field_index(column)
            decisions = decisions.set_column(i, column, pc.if_else(mask, value, decisions[column]))
    for column in ("ref", "source", "post_id", "author_id"):
        i = decisions.schema.get_field_index(column)
        if i >= 0:
            decisions = decisions.set_column(i, column, pc.if_else(stale, pa.scalar(None, decisions.schema.field(i).type),
                                                                   decisions[column]))
    return decisions


def _rewrite_catalog(dataset_dir: Path, gone: set[str], renamed: dict[str, str | None], version: str,
                     forgotten: Forgotten) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Drop the forgotten posts' rows; returns the new (decisions, media) rows for the counts."""
    gone_arr = pa.array(sorted(gone), pa.string())
    media = _drop_posts(catalog.read_table(dataset_dir, "media"), gone_arr)
    shard = [None if s is None else renamed.get(s, s) for s in media["shard"].to_pylist()]
    media = media.set_column(media.schema.get_field_index("shard"), "shard", pa.array(shard, pa.string()))
    decisions = _forget_decisions(catalog.read_table(dataset_dir, "decisions"), gone_arr, version, forgotten)
    for table in ("posts", "hashtags", "duplicates"):
        catalog.write_table(dataset_dir, table, _drop_posts(catalog.read_table(dataset_dir, table), gone_arr))
    catalog.write_table(dataset_dir, "media", media)
    catalog.write_table(dataset_dir, "decisions", decisions)
    return (decisions.select(["status", "reason"]).to_pylist(),
            media.select(["status", "reason", "had_gps", "had_metadata", "faces_blurred"]).to_pylist())


def _kept_forgotten_posts(dataset_dir: Path, forgotten: Forgotten) -> set[str]:
    """Keys of the dataset's kept posts that ``forgotten`` forgets (a kept post always has its source and id)."""
    posts = catalog.read_table(dataset_dir, "posts", ["source", "post_id", "author_id", "hashtags"])
    return {k for k, a, t in zip(row_post_keys(posts), posts["author_id"].to_pylist(), posts["hashtags"].to_pylist())
            if k is not None and forgotten.forgets(k, a, t or ())}


def rewrite_dataset(dataset_dir: str | Path, forgotten: Forgotten) -> str:
    """Rewrite the dataset without the forgotten posts as a new version (see the module docstring)."""
    dataset_dir = Path(dataset_dir)
    manifest = catalog.load_manifest(dataset_dir)
    old = str(manifest["version"])
    targets = forgotten_samples(dataset_dir, forgotten)
    gone = _kept_forgotten_posts(dataset_dir, forgotten)
    shards, renamed, dropped = _rewrite_shards(dataset_dir, manifest, targets, forgotten)
    decisions, media = _rewrite_catalog(dataset_dir, gone, renamed, old, forgotten)
    summary = summarise(decisions, media, len(shards))
    counts = {k: v for k, v in summary.to_dict().items() if k not in ("version", "seconds")}
    tomb = forgotten.tombstones.digest
    version = hashlib.sha256(json.dumps({"parent": old, "shards": shards, "tombstones": tomb},
                                        sort_keys=True).encode()).hexdigest()[:16]
    parent = {"version": old, "tombstones": tomb, "forgotten_posts": len(gone), "forgotten_samples": dropped}
    derived = manifest.get("derived_from") or (manifest.get("parent") if (manifest.get("parent") or {}).get("path")
                                               else None)
    manifest.update(version=version, shards=shards, counts=counts, parent=parent,
                    history=[*manifest.get("history", []), parent], **({"derived_from": derived} if derived else {}))
    atomic_write_text(dataset_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    (dataset_dir / INDEX_CACHE).unlink(missing_ok=True)
    for name in renamed:
        (dataset_dir / "shards" / name).unlink(missing_ok=True)
    log.info("dataset %s rewritten as version %s: %d posts, %d samples removed, %d shards rewritten",
             old, version, len(gone), dropped, len(renamed))
    return (f"rewritten as version {version} (parent {old}): removed {len(gone)} posts, {dropped} samples; "
            f"{len(renamed)} of {len(manifest['shards']) + sum(v is None for v in renamed.values())} shards rewritten")


register_forgetter("dataset", lambda root: find_datasets([root]), affected, purge, stage=0)
