"""Similar-image search: a faiss nearest-neighbour index over a dataset's embeddings, queried by image.

``build_index`` embeds every sample of a dataset with the bundle's backbone, L2-normalises the
features and stores them in a ``faiss.IndexIDMap2(IndexFlatIP)`` (cosine similarity, exact search).
Posts the dataset's tombstones forget are left out at build time. An index folder holds
``index.faiss``, ``entries.parquet`` (id -> post key, author id, hashtags, sample key) and
``index.json`` (dataset path and version, backbone fingerprint, counts).

``SimilarApp`` answers a query image with its ``k`` nearest samples. Every answer is filtered at
query time through ``TombstoneWatcher(dataset_dir).current().forgets(post_key, author_id,
hashtags)``, so a forget request takes effect on the next query without a restart; ``remove``
deletes entries from the index and its files (persisted atomically). Answers carry the post key,
the sample key and the similarity; never the author id.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tagsight import __version__
from tagsight.apps.base import APPS
from tagsight.apps.embedder import Embedder, FeatureApp, check_features, embed_samples
from tagsight.apps.run import post_authors
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text
from tagsight.privacy.tombstones import TombstoneWatcher, load_tombstones
from tagsight.storage import location

if TYPE_CHECKING:
    from tagsight.engines import Engine

log = logging.getLogger(__name__)

INDEX_JSON, INDEX_FAISS, ENTRIES = "index.json", "index.faiss", "entries.parquet"
FORMAT = 1
_COLUMNS: list[tuple[str, pa.DataType]] = [("id", pa.int64()), ("post_key", pa.string()), ("author_id", pa.string()),
                                           ("hashtags", pa.list_(pa.string())), ("sample_key", pa.string())]
_SCHEMA = pa.schema(_COLUMNS)


def load_faiss() -> Any:  # the faiss module: it ships no type information
    """The ``faiss`` module, or a ``missing_package`` refusal saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ReasonError("missing_package", "similar-image search needs faiss: pip install 'tagsight[serve]'") from None
    return faiss


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def build_index(dataset_dir: str | Path, embedder: Embedder, out_dir: str | Path, backbone_spec: str = "",
                engine: Engine | None = None) -> dict[str, Any]:
    """Embed the dataset's samples (tombstoned posts excluded) into a faiss index at ``out_dir``; index.json.
    ``engine`` embeds them by blocks (``tagsight.apps.embedder.embed_block``), with the same bits."""
    faiss = load_faiss()
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    samples = SampleIndex.build(dataset_dir)
    tombstones, authors = load_tombstones(dataset_dir), post_authors(dataset_dir)
    keep = [i for i, (key, tags) in enumerate(zip(samples.post_keys, samples.hashtags))
            if not tombstones.forgets(key, authors.get(key), tags)]
    rows = np.asarray(keep, dtype=np.int64)
    feats = normalise(embed_samples(samples, rows, embedder, "index embeddings", engine))
    ids = np.arange(len(rows), dtype=np.int64)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.num_features))
    index.add_with_ids(feats, ids)
    entries = pa.Table.from_pylist([{"id": int(j), "post_key": samples.post_keys[i], "author_id": authors.get(samples.post_keys[i]),
                                     "hashtags": samples.hashtags[i], "sample_key": samples.keys[i]}
                                    for j, i in zip(ids, rows)], schema=_SCHEMA)
    counts = {"samples": len(samples) + samples.forgotten, "indexed": len(rows),
              "excluded_tombstoned": samples.forgotten + len(samples) - len(rows), "removed": 0}
    info = {"format": FORMAT, "tagsight_version": __version__, "dataset": location(dataset_dir),
            "manifest_version": samples.version, "backbone": backbone_spec, "backbone_fingerprint": embedder.fingerprint,
            "metric": "cosine", "counts": counts}
    save_index(out_dir, index, entries, info)
    log.info("indexed %d of %d samples of %s (%d tombstoned left out) in %s", len(rows), counts["samples"],
             dataset_dir, counts["excluded_tombstoned"], out_dir)
    return info


def save_index(out_dir: Path, index: Any, entries: pa.Table, info: dict[str, Any]) -> None:
    """Write an index folder atomically (also used when forget removes entries). Index first, then entries, then index.json: a crash in between leaves entries that are never returned."""
    faiss = load_faiss()
    atomic_write_bytes(out_dir / INDEX_FAISS, faiss.serialize_index(index).tobytes())
    buf = io.BytesIO()
    pq.write_table(entries, buf)
    atomic_write_bytes(out_dir / ENTRIES, buf.getvalue())
    atomic_write_text(out_dir / INDEX_JSON, json.dumps(info, indent=1) + "\n")


@APPS.register("similar")
class SimilarApp(FeatureApp):
    """The ``k`` most similar indexed samples of a query image, never a forgotten or removed post."""

    name = "similar"
    options = {"k": int}

    def __init__(self, embedder: Embedder, index_dir: str | Path, k: int = 10) -> None:
        super().__init__(embedder)
        faiss = load_faiss()
        self.index_dir = Path(index_dir)
        if not (self.index_dir / INDEX_JSON).is_file():
            raise ReasonError("not_an_index", f"{self.index_dir} has no {INDEX_JSON}: build one with "
                                              "'tagsight index build'")
        self.info = json.loads((self.index_dir / INDEX_JSON).read_text())
        if self.info["backbone_fingerprint"] != embedder.fingerprint:
            raise ReasonError("index_mismatch", f"{self.index_dir} was built with another backbone "
                                                f"({self.info['backbone']}); rebuild it")
        self.index = faiss.deserialize_index(np.frombuffer((self.index_dir / INDEX_FAISS).read_bytes(), dtype=np.uint8))
        live = set(faiss.vector_to_array(self.index.id_map).tolist())
        rows = pq.read_table(self.index_dir / ENTRIES).to_pylist()
        self.entries = {r["id"]: r for r in rows if r["id"] in live}
        self.watcher = TombstoneWatcher(self.info["dataset"])
        self.k = k
        self._lock = threading.Lock()

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder) -> SimilarApp:
        return cls(embedder, index_dir)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def predict_features(self, features: np.ndarray, images: Sequence[Image.Image] | None = None,
                         **options: Any) -> list[dict[str, Any]]:
        k = int(self.check_options(options).get("k", self.k))
        if k < 1:
            raise ReasonError("bad_option", f"k must be >= 1, got {k}")
        x = normalise(check_features(features, images, self.embedder.num_features))
        return [{"neighbours": self._query(row, k)} for row in x]

    def _query(self, q: np.ndarray, k: int) -> list[dict[str, Any]]:
        tombstones = self.watcher.current()
        with self._lock:
            total = int(self.index.ntotal)
            ask = min(total, k + 16)
            while True:
                sims, ids = self.index.search(q[None, :], ask) if ask else (np.zeros((1, 0)), np.zeros((1, 0), int))
                found = []
                for sim, i in zip(sims[0], ids[0]):
                    entry = self.entries.get(int(i))
                    if i < 0 or entry is None or tombstones.forgets(entry["post_key"], entry["author_id"], entry["hashtags"]):
                        continue
                    found.append({"post_key": entry["post_key"], "sample_key": entry["sample_key"],
                                  "similarity": round(float(sim), 5)})
                if len(found) >= k or ask >= total:
                    return found[:k]
                ask = min(total, ask * 4)

    def add(self, images: Sequence[Image.Image], posts: Sequence[dict[str, Any]]) -> int:
        """Index new photos; ``posts[i]`` holds ``post_key``, ``author_id``, ``hashtags`` (and optionally
        ``sample_key``). A post its dataset's tombstones forget is refused (ReasonError), never indexed."""
        if len(images) != len(posts):
            raise ReasonError("bad_request", f"{len(images)} images but {len(posts)} post records")
        tombstones = self.watcher.current()
        for p in posts:
            if tombstones.forgets(p["post_key"], p.get("author_id"), p.get("hashtags") or ()):
                raise ReasonError("forgotten_post", f"{p['post_key']} has been forgotten and cannot be indexed")
        feats = normalise(self.embedder.embed(list(images)))
        with self._lock:
            start = max(self.entries, default=-1) + 1
            ids = np.arange(start, start + len(posts), dtype=np.int64)
            self.index.add_with_ids(feats, ids)
            for i, p in zip(ids.tolist(), posts):
                self.entries[i] = {"id": i, "post_key": p["post_key"], "author_id": p.get("author_id"),
                                   "hashtags": list(p.get("hashtags") or []), "sample_key": p.get("sample_key")}
            self.info["counts"]["added"] = self.info["counts"].get("added", 0) + len(posts)
            self._persist()
        return len(posts)

    def _persist(self) -> None:
        self.info["counts"]["indexed"] = int(self.index.ntotal)
        table = pa.Table.from_pylist(sorted(self.entries.values(), key=lambda e: e["id"]), schema=_SCHEMA)
        save_index(self.index_dir, self.index, table, self.info)

    def remove(self, post_keys: Iterable[str]) -> int:
        """Delete every entry of ``post_keys`` from the index and its files; returns how many samples went."""
        wanted = set(post_keys)
        with self._lock:
            ids = np.asarray([i for i, e in self.entries.items() if e["post_key"] in wanted], dtype=np.int64)
            if not len(ids):
                return 0
            self.index.remove_ids(ids)
            for i in ids.tolist():
                del self.entries[i]
            self.info["counts"]["removed"] += int(len(ids))
            self._persist()
        log.info("removed %d samples of %d posts from %s", len(ids), len(wanted), self.index_dir)
        return int(len(ids))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.info["dataset"], "manifest_version": self.info["manifest_version"],
                "indexed": len(self), "k": self.k}
