"""Dataset paths that may be fsspec URLs (``s3://bucket/ds``, ``memory://ds``), read by byte ranges.

A dataset path is either a local folder (a ``Path``, also written ``file://...``) or an fsspec URL
(``dataset_path``). Remote files are read by byte ranges through ``RemoteFiles``: ranges are fetched in
aligned blocks kept in a bounded local cache (least recently used blocks are evicted first), every fetch
is retried on a dropped or short read, and the filesystem object is opened lazily in each process (never
pickled, reopened after a fork), so DataLoader workers and ranks each hold their own connections.

Configuration is the standard one: S3 endpoint and credentials come from ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (read by botocore), further fsspec storage options from
``TAGSIGHT_STORAGE_OPTIONS`` (a JSON object); the cache from ``TAGSIGHT_CACHE_DIR``, ``TAGSIGHT_CACHE_BYTES``
and ``TAGSIGHT_CACHE_BLOCK`` (see ``CacheConfig``). The lowest layer: no tagsight imports but fsio.

Modules: ``urls`` (paths and URLs, small reads and writes, retries), ``blocks`` (the block cache of byte ranges),
``sync`` (artifact folders mirrored to read, staged and published to write); everything is importable from here.
"""

from __future__ import annotations

from tagsight.storage.urls import (
    is_url, dataset_path, join, storage_options, open_filesystem, read_bytes, exists, env_int, ReadStats, retry,
    relative_url, list_names, write_bytes, write_text,
)
from tagsight.storage.blocks import (
    CacheConfig, RemoteFiles, evict, cache_bytes,
)
from tagsight.storage.sync import (
    staging_folder, publish_folder, publish_changes, MIRROR_STATE, METADATA_SUFFIXES, is_metadata,
    mirror_folder, STAGING_TARGET, mirror_origin, location, local_folder, local_input, downloaded_input, resolve_from, output_folder, write_state,
    shared_folder,
)

__all__ = [
    "CacheConfig",
    "downloaded_input",
    "METADATA_SUFFIXES",
    "MIRROR_STATE",
    "ReadStats",
    "RemoteFiles",
    "STAGING_TARGET",
    "cache_bytes",
    "dataset_path",
    "env_int",
    "evict",
    "exists",
    "is_metadata",
    "is_url",
    "join",
    "list_names",
    "local_folder",
    "local_input",
    "location",
    "mirror_folder",
    "mirror_origin",
    "open_filesystem",
    "output_folder",
    "publish_changes",
    "publish_folder",
    "read_bytes",
    "relative_url",
    "resolve_from",
    "retry",
    "shared_folder",
    "staging_folder",
    "storage_options",
    "write_state",
    "write_bytes",
    "write_text",
]
