"""Forgetting reaches the similar-image indexes: entries and vectors of forgotten posts are deleted.

A running ``SimilarApp`` already hides them at query time (it watches the tombstones); this removes
them from ``index.faiss`` and ``entries.parquet`` on disk, so a restarted server never loads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tagsight.apps.similar import ENTRIES, INDEX_FAISS, INDEX_JSON, load_faiss, save_index
from tagsight.privacy.forget import Forgotten, register_forgetter


def _find(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).rglob(INDEX_JSON) if (p.parent / ENTRIES).is_file())


def _forgotten_ids(index_dir: Path, forgotten: Forgotten) -> list[int]:
    rows = pq.read_table(index_dir / ENTRIES).to_pylist()
    return [r["id"] for r in rows if forgotten.forgets(r["post_key"], r["author_id"], r["hashtags"] or ())]


def _affected(index_dir: Path, forgotten: Forgotten) -> int:
    return len(_forgotten_ids(index_dir, forgotten))


def _purge(index_dir: Path, forgotten: Forgotten) -> str:
    ids = set(_forgotten_ids(index_dir, forgotten))
    if not ids:
        return "nothing to remove"
    faiss = load_faiss()
    index = faiss.deserialize_index(np.frombuffer((index_dir / INDEX_FAISS).read_bytes(), dtype=np.uint8))
    index.remove_ids(np.asarray(sorted(ids), dtype=np.int64))
    entries = pq.read_table(index_dir / ENTRIES)
    kept = entries.filter([i not in ids for i in entries.column("id").to_pylist()])
    info = json.loads((index_dir / INDEX_JSON).read_text())
    info["counts"]["removed"] = info["counts"].get("removed", 0) + len(ids)
    info["counts"]["indexed"] = int(index.ntotal)
    save_index(index_dir, index, kept, info)
    return f"removed {len(ids)} entries (vectors and rows)"


register_forgetter("similar_index", _find, _affected, _purge, stage=60)
