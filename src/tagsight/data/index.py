"""A random-access index over a dataset's WebDataset shards: where every sample's bytes lie.

``SampleIndex.build(dataset_dir)`` scans the tar headers of every shard listed in
``manifest.json`` (no image decoding) and records, per sample, the shard, the byte offset and size
of its ``.jpg`` and ``.json`` members, its post key (``source/post_id``) and its hashtags as
written, and its author. The index is cached as ``DATASET_DIR/index.parquet`` tagged with the manifest version and
rebuilt when the dataset changes. ``read_jpeg(i)`` is one positional read (``os.pread``), safe to
share across forked DataLoader workers. A dataset may also be an fsspec URL (``s3://bucket/ds``): then
the shards are read by byte ranges through ``tagsight.storage.RemoteFiles`` (bounded local block cache,
retries, one connection per process) and the index is cached in the local storage cache folder. Samples of posts forgotten by the dataset's tombstones
(``tagsight forget``) are left out when the index is loaded, before any shard rewrite: ``forgotten``
counts them, and ``tombstones`` says which state was applied. ``holdout`` splits by post with a seeded hash, so all media
of a post fall on the same side and train and evaluation never share a post.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tagsight.fsio import ReasonError, atomic_write_bytes
from tagsight.schema.catalog import load_manifest
from tagsight.privacy.tombstones import TOMBSTONE_FILE, Tombstone, Tombstones, load_tombstones
from tagsight.storage import CacheConfig, RemoteFiles, dataset_path, exists, is_url, join, read_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")

INDEX_FILE = "index.parquet"
INDEX_FORMAT = "3"
_FIELDS: list[tuple[str, pa.DataType]] = [
    ("shard", pa.string()), ("key", pa.string()), ("jpg_offset", pa.int64()), ("jpg_size", pa.int64()),
    ("json_offset", pa.int64()), ("json_size", pa.int64()), ("post_key", pa.string()),
    ("hashtags", pa.list_(pa.string())), ("author_id", pa.string()), ("hashtag_weights", pa.list_(pa.float64())),
]
_SCHEMA = pa.schema(_FIELDS)


@dataclass
class SampleIndex:
    """Per-sample locations (column arrays, in shard order) of one dataset version."""

    dataset_dir: Path | str     # a local folder, or an fsspec URL
    version: str
    shard_names: list[str]
    shard_ids: np.ndarray
    keys: list[str]
    jpg_offset: np.ndarray
    jpg_size: np.ndarray
    json_offset: np.ndarray
    json_size: np.ndarray
    post_keys: list[str]
    hashtags: list[list[str]]
    author_ids: list[str | None] = field(default_factory=list)
    # Per-hashtag loss weights aligned with ``hashtags`` (``tagsight relevance filter --policy weights``), else None.
    hashtag_weights: list[list[float] | None] = field(default_factory=list)
    forgotten: int = 0           # samples left out because the dataset's tombstones forget their post
    tombstones: str = ""         # Tombstones.digest of the state applied ("" = none)
    _fds: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    remote: RemoteFiles | None = field(default=None, repr=False, compare=False)   # set for URL datasets

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def build(cls, dataset_dir: str | Path, rebuild: bool = False, cache: CacheConfig | None = None) -> SampleIndex:
        """The index of ``dataset_dir`` (a folder or a URL): from the cache when it matches the manifest version,
        else scanned. ``cache`` is the local storage cache of a URL dataset (default: ``CacheConfig()``)."""
        dataset_dir = dataset_path(dataset_dir)
        manifest = load_manifest(dataset_dir)
        version = str(manifest["version"])
        remote = RemoteFiles(str(join(dataset_dir, "shards")), version, cache, sizes={
            s["name"]: int(s["bytes"]) for s in manifest.get("shards", []) if "bytes" in s}) if is_url(dataset_dir) else None
        cache_file = _cache_file(dataset_dir, version, remote)
        cached = None if rebuild else _read_cache(cache_file, version)
        if cached is None and remote is not None and not rebuild:
            cached = _fetch_remote_index(dataset_dir, cache_file, version)
        if cached is None:
            names = [s["name"] for s in manifest.get("shards", [])]
            cached = _scan_remote(remote, names) if remote else _scan_shards(Path(dataset_dir) / "shards", names)
            _write_cache(cache_file, cached, version)
            log.info("indexed %d samples in %d shards of dataset %s", cached.num_rows, len(names), version)
        index = cls._from_table(dataset_dir, version, cached)
        index.remote = remote
        return index.without_forgotten()

    def without_forgotten(self) -> SampleIndex:
        """This index less the samples of posts the dataset's tombstones forget (counted and logged)."""
        tombstones = dataset_tombstones(self.dataset_dir)
        if not tombstones:
            return self
        keep = np.fromiter((not tombstones.forgets(k, a, t) for k, a, t in
                            zip(self.post_keys, self.author_ids or [None] * len(self), self.hashtags)),
                           dtype=bool, count=len(self))
        rows = np.flatnonzero(keep)

        def pick(values: list[T]) -> list[T]:
            return [values[i] for i in rows]

        out = SampleIndex(self.dataset_dir, self.version, self.shard_names, self.shard_ids[rows], pick(self.keys),
                          self.jpg_offset[rows], self.jpg_size[rows], self.json_offset[rows], self.json_size[rows],
                          pick(self.post_keys), pick(self.hashtags),
                          author_ids=pick(self.author_ids) if self.author_ids else [],
                          hashtag_weights=pick(self.hashtag_weights) if self.hashtag_weights else [],
                          forgotten=self.forgotten + int((~keep).sum()), tombstones=tombstones.digest,
                          remote=self.remote)
        log.info("dataset %s: %d of %d samples left out as forgotten (%d tombstones)", self.version,
                 out.forgotten, len(self), len(tombstones))
        return out

    @classmethod
    def _from_table(cls, dataset_dir: Path | str, version: str, table: pa.Table) -> SampleIndex:
        cols = table.to_pydict()
        shard_names = sorted(set(cols["shard"]))
        lookup = {name: i for i, name in enumerate(shard_names)}
        ints = {c: np.asarray(cols[c], dtype=np.int64) for c in ("jpg_offset", "jpg_size", "json_offset", "json_size")}
        return cls(dataset_dir, version, shard_names, np.asarray([lookup[s] for s in cols["shard"]], dtype=np.int32),
                   cols["key"], ints["jpg_offset"], ints["jpg_size"], ints["json_offset"], ints["json_size"],
                   cols["post_key"], [list(t or []) for t in cols["hashtags"]], author_ids=cols["author_id"],
                   hashtag_weights=cols.get("hashtag_weights") or [None] * len(cols["key"]))

    def shard_of(self, i: int) -> str:
        """Name of the shard holding sample ``i``."""
        return self.shard_names[int(self.shard_ids[i])]

    def read_jpeg(self, i: int) -> bytes:
        """The encoded JPEG bytes of sample ``i`` (one positional read)."""
        return self._pread(i, self.jpg_offset, self.jpg_size)

    def read_meta(self, i: int) -> dict[str, Any]:
        """The JSON metadata of sample ``i``."""
        meta: dict[str, Any] = json.loads(self._pread(i, self.json_offset, self.json_size))
        return meta

    def _pread(self, i: int, offsets: np.ndarray, sizes: np.ndarray) -> bytes:
        shard = int(self.shard_ids[i])
        if self.remote is not None:
            return self._check_size(i, self._read_remote(shard, int(offsets[i]), int(sizes[i])), int(sizes[i]))
        fd = self._fds.get(shard)
        if fd is None:
            try:
                fd = self._fds[shard] = os.open(Path(self.dataset_dir) / "shards" / self.shard_names[shard],
                                                  os.O_RDONLY)
            except FileNotFoundError:
                raise ReasonError("shard_missing", f"{self.shard_names[shard]} is gone: dataset {self.version} was "
                                                   "rewritten (tagsight forget --rewrite?) since this index was "
                                                   "built; build the index again") from None
        size = int(sizes[i])
        return self._check_size(i, os.pread(fd, size, int(offsets[i])), size)

    def _read_remote(self, shard: int, offset: int, size: int) -> bytes:
        assert self.remote is not None
        try:
            return self.remote.read(self.shard_names[shard], offset, size)
        except FileNotFoundError:
            raise ReasonError("shard_missing", f"{self.remote.url(self.shard_names[shard])} is gone: dataset "
                                               f"{self.version} was rewritten since this index was built; build the "
                                               "index again") from None

    def _check_size(self, i: int, data: bytes, size: int) -> bytes:
        if len(data) != size:
            raise ReasonError("shard_truncated", f"{self.shard_of(i)}: sample {self.keys[i]} is cut short "
                                                 f"({len(data)} of {size} bytes); re-run ingest")
        return data

    def close(self) -> None:
        """Close the open shard files (they reopen on the next read)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fds"] = {}  # descriptors do not cross process boundaries by pickling
        return state

    def holdout(self, fraction: float, seed: int) -> np.ndarray:
        """Boolean mask of held-out samples: a post is held out when its seeded hash falls below ``fraction``."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
        per_post = {key: unit_hash(key, seed) < fraction for key in dict.fromkeys(self.post_keys)}
        return np.fromiter((per_post[k] for k in self.post_keys), dtype=bool, count=len(self.post_keys))


def unit_hash(post_key: str, seed: int, purpose: str = "") -> float:
    """A uniform number in [0, 1) from the post key and seed (stable across processes and platforms).

    The one held-out hash: ``SampleIndex.holdout`` and relevance's cross-fitting folds use it without a
    ``purpose``; calibration passes ``purpose="calibration"`` so that its check half is drawn independently.
    """
    prefix = f"{purpose}\x00" if purpose else ""
    digest = hashlib.blake2b(f"{prefix}{seed}\x00{post_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def dataset_tombstones(dataset_dir: str | Path) -> Tombstones:
    """The tombstones of a dataset folder or URL (empty when it has none)."""
    dataset_dir = dataset_path(dataset_dir)
    if not is_url(dataset_dir):
        return load_tombstones(dataset_dir)
    url = join(dataset_dir, *TOMBSTONE_FILE.parts)
    if not exists(url):
        return Tombstones()
    table = pq.read_table(io.BytesIO(read_bytes(url)))
    return Tombstones.of(Tombstone(**row) for row in table.to_pylist())


def _cache_file(dataset_dir: Path | str, version: str, remote: RemoteFiles | None) -> Path:
    """DATASET_DIR/index.parquet for a folder; for a URL, a file of the local storage cache (the store is read-only)."""
    if remote is None:
        return Path(dataset_dir) / INDEX_FILE
    key = hashlib.blake2b(f"{dataset_dir}\x00{version}".encode(), digest_size=16).hexdigest()
    return remote.cache.folder / "index" / f"{key}.parquet"


def _fetch_remote_index(dataset_dir: str | Path, cache_file: Path, version: str) -> pa.Table | None:
    """The dataset's own index.parquet (uploaded with it) when it is of this version, copied into the local cache."""
    url = join(dataset_dir, INDEX_FILE)
    if not exists(url):
        return None
    atomic_write_bytes(cache_file, read_bytes(url))
    table = _read_cache(cache_file, version)
    if table is not None:
        log.info("index of %s read from the store", dataset_dir)
    return table


def _scan_remote(remote: RemoteFiles, names: list[str]) -> pa.Table:
    """``_scan_shards`` over byte ranges: tar headers and JSON members are read, JPEG bytes are skipped."""
    rows: list[dict[str, Any]] = []
    for name in names:
        try:
            with remote.open(name) as f, tarfile.open(fileobj=f, mode="r:") as tar:
                rows.extend(_rows_of(name, tar))
        except FileNotFoundError:
            raise ReasonError("shard_missing", f"{remote.url(name)} is listed in the manifest but absent; "
                                               "re-run ingest") from None
    return pa.Table.from_pylist(rows, schema=_SCHEMA) if rows else _SCHEMA.empty_table()


def _read_cache(path: Path, version: str) -> pa.Table | None:
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        log.warning("index cache %s is unreadable (%s); rebuilding", path, exc)
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"manifest_version", b"").decode() != version or meta.get(b"index_format", b"").decode() != INDEX_FORMAT:
        log.info("index cache %s is for another dataset version; rebuilding", path)
        return None
    if "hashtag_weights" not in table.column_names:  # a cache from before weights: none were stored
        table = table.append_column("hashtag_weights", pa.nulls(table.num_rows, pa.list_(pa.float64())))
    return table


def _write_cache(path: Path, table: pa.Table, version: str) -> None:
    table = table.replace_schema_metadata({"manifest_version": version, "index_format": INDEX_FORMAT})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(path, buf.getvalue())


def _scan_shards(shard_dir: Path, names: list[str]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for name in names:
        rows.extend(_scan_shard(shard_dir / name))
    return pa.Table.from_pylist(rows, schema=_SCHEMA) if rows else _SCHEMA.empty_table()


def _scan_shard(path: Path) -> list[dict[str, Any]]:
    """One row per sample of a shard, in member order, from the tar headers and the JSON members."""
    if not path.is_file():
        raise ReasonError("shard_missing", f"{path} is listed in the manifest but absent; re-run ingest")
    with tarfile.open(path, mode="r:") as tar:
        return _rows_of(path.name, tar)


def _rows_of(shard: str, tar: tarfile.TarFile) -> list[dict[str, Any]]:
    """The rows of one shard in one forward pass: JSON members are read as their headers go by (no seek back)."""
    members: dict[str, dict[str, tarfile.TarInfo]] = {}
    metas: dict[str, bytes] = {}
    for info in tar:
        if info.isfile():
            key, _, ext = info.name.partition(".")
            members.setdefault(key, {})[ext] = info
            if ext == "json":
                handle = tar.extractfile(info)
                assert handle is not None
                metas[key] = handle.read()
    return [_sample_row(shard, key, parts, metas.get(key, b"")) for key, parts in members.items()]


def _sample_row(shard: str, key: str, parts: dict[str, tarfile.TarInfo], meta_bytes: bytes) -> dict[str, Any]:
    if "jpg" not in parts or "json" not in parts:
        raise ReasonError("sample_incomplete", f"{shard}: sample {key} has {sorted(parts)} members, "
                                               "expected jpg and json; re-run ingest")
    jpg, meta_info = parts["jpg"], parts["json"]
    try:
        meta = json.loads(meta_bytes)
        post_key = f"{meta['source']}/{meta['post_id']}"
    except (ValueError, KeyError, TypeError) as exc:
        raise ReasonError("sample_meta_invalid", f"{shard}: sample {key} has unreadable metadata ({exc!r}); "
                                                 "re-run ingest") from exc
    hashtags, weights = list(meta.get("hashtags") or []), meta.get("hashtag_weights")
    if weights is not None and (len(weights) != len(hashtags) or not all(
            isinstance(w, (int, float)) and w > 0 for w in weights)):
        raise ReasonError("sample_meta_invalid", f"{shard}: sample {key} has hashtag_weights {weights!r} that are "
                                                 f"not one positive number per hashtag ({len(hashtags)})")
    return {"shard": shard, "key": key, "jpg_offset": jpg.offset_data, "jpg_size": jpg.size,
            "json_offset": meta_info.offset_data, "json_size": meta_info.size,
            "post_key": post_key, "hashtags": hashtags, "author_id": meta.get("author_id"), "hashtag_weights": weights}
