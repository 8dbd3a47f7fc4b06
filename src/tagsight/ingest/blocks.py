"""Ingest's blocks: the per-block function every engine runs, and the chunk cache that makes runs resumable.

A block (a chunk of ``IngestConfig.chunk_size`` media tasks) becomes one file of result rows under
``DATASET_DIR/.work/`` (Arrow's IPC file format, uncompressed: written and read back at a fraction of
Parquet's cost, and the folder is removed once the dataset is written), named by a fingerprint of its
inputs and the image settings, written atomically. A run killed at any point and started again reuses the finished blocks and runs only
the rest, on whichever engine (``tagsight.engines``): the local engine's workers write their
block's file themselves (image bytes never cross a process boundary), the Ray engine's workers
return it and the driver writes it.

Remote media (``IngestConfig.fetch``): on the local engine the driver fetches them, one chunk ahead
of the workers, with one ``Fetcher`` for the run (per-host limits and opt-out caches for the whole
run); on the Ray engine each block fetches its own URLs where it runs (one ``Fetcher`` per block).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import shutil
from concurrent.futures import Future
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from tagsight.engines import Engine, EngineConfig, create_engine
from tagsight.ingest.fetch import FetchConfig, Fetcher, is_remote
from tagsight.fsio import atomic_write_bytes
from tagsight.ingest.images import (BATCH_SIZE, ImageConfig, ImageRejected, ProcessedImage, check_relative_path,
                                   clear_path_cache, process_batch, read_media, read_tree_media)
from tagsight.ingest.tree import FolderTree, Tree
from tagsight.progress import Progress

FORMAT_VERSION = 1

Item = tuple[str, "str | None"]  # (path or URL, declared sha256)

_RESULT_FIELDS: list[pa.Field[Any]] = [
    pa.field("status", pa.string()), pa.field("reason", pa.string()), pa.field("detail", pa.string()),
    pa.field("jpeg", pa.binary()), pa.field("width", pa.int32()), pa.field("height", pa.int32()),
    pa.field("source_width", pa.int32()), pa.field("source_height", pa.int32()), pa.field("sha256", pa.string()),
    pa.field("phash", pa.uint64()), pa.field("faces_blurred", pa.int32()), pa.field("had_gps", pa.bool_()),
    pa.field("had_metadata", pa.bool_()),
]
RESULT_SCHEMA = pa.schema(_RESULT_FIELDS)
_IMAGE_FIELDS = tuple(f.name for f in fields(ProcessedImage))


def _read(tree: Tree, path: str, sha256: str | None, cfg: ImageConfig) -> bytes:
    """A folder's files are read by ``read_media`` (tuned for folders), an archive's through the tree."""
    if isinstance(tree, FolderTree):
        return read_media(tree.root, path, cfg, expected_sha256=sha256)
    return read_tree_media(tree, path, cfg, expected_sha256=sha256)


def _fetched_bytes(path: str, sha256: str | None, fetched: bytes | tuple[str, str]) -> bytes:
    if isinstance(fetched, tuple):
        raise ImageRejected(*fetched)
    if sha256 is not None and hashlib.sha256(fetched).hexdigest() != sha256.lower():
        raise ImageRejected("sha256_mismatch", f"{path!r} has sha256 {hashlib.sha256(fetched).hexdigest()}, "
                            f"the post declares {sha256}")
    return fetched


BATCH_BYTES = 32 * 2**20
"""Input bytes read ahead for one batch of images at most (a batch also ends at ``images.BATCH_SIZE`` items)."""


def _media_bytes(tree: Tree, path: str, sha256: str | None, cfg: ImageConfig,
                 fetched: bytes | tuple[str, str] | None) -> bytes:
    """The item's fetched body when there is one, else its bytes read from ``tree``; ImageRejected otherwise."""
    return _fetched_bytes(path, sha256, fetched) if fetched is not None else _read(tree, path, sha256, cfg)


def _row(result: ProcessedImage | ImageRejected) -> dict[str, Any]:
    if isinstance(result, ImageRejected):
        return {"status": "rejected", "reason": result.reason, "detail": str(result)}
    return {"status": "ok", "reason": "", "detail": "", **{name: getattr(result, name) for name in _IMAGE_FIELDS}}


def process_items(tree: Tree, items: list[Item], cfg: ImageConfig, fetched: list[Any] | None = None,
                  order: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The result row of each of ``items`` (or of its fetched body), in item order: ``status`` ok with the
    sanitised image, or rejected with a reason. Items are read in ``order`` (default: item order) and their
    images processed a batch at a time (``images.process_batch``: up to ``BATCH_SIZE`` items or ``BATCH_BYTES``)."""
    rows: list[dict[str, Any]] = [{} for _ in items]
    pending: list[tuple[int, bytes]] = []
    held = 0
    for i in range(len(items)) if order is None else order:
        path, sha = items[i]
        try:
            data = _media_bytes(tree, path, sha, cfg, None if fetched is None else fetched[i])
        except ImageRejected as exc:
            rows[i] = _row(exc)
            continue
        pending.append((i, data))
        held += len(data)
        if len(pending) >= BATCH_SIZE or held >= BATCH_BYTES:
            _process_pending(pending, cfg, rows)
            held = 0
    _process_pending(pending, cfg, rows)
    return rows


def _process_pending(pending: list[tuple[int, bytes]], cfg: ImageConfig, rows: list[dict[str, Any]]) -> None:
    """Process the read images of ``pending`` into their ``rows`` and empty it."""
    for (i, _), result in zip(pending, process_batch([data for _, data in pending], cfg)):
        rows[i] = _row(result)
    pending.clear()


def collect(futures: list[Future[Any] | None]) -> list[Any]:
    """Fetch results in item order: bytes, a (reason, message) rejection (picklable), or None for local items."""
    out: list[Any] = []
    for future in futures:
        got = None if future is None else future.result()
        out.append((got.reason, str(got)) if isinstance(got, ImageRejected) else got)
    return out


def fetch_block(items: list[Item], fetch: FetchConfig, max_bytes: int) -> list[Any]:
    """Fetch a block's remote media where the block runs (the Ray engine's way); None for local items."""
    with Fetcher(fetch, max_bytes) as fetcher:
        return collect([fetcher.submit(path) if is_remote(path) else None for path, _ in items])


def ingest_block(tree: Tree, cfg: ImageConfig, fetch: FetchConfig | None, items: list[Item],
                 fetched: list[Any] | None = None) -> bytes:
    """The per-block function of ingest, on every engine: a block of media -> its result rows (an Arrow IPC file).

    ``fetched`` holds what the driver fetched for each item; without it, and with ``fetch`` set, the
    block fetches its own URLs. The tree arrives pickled without open handles (an archive is reopened
    here); archive members are read in the order of their data, rows are written in task order.
    """
    clear_path_cache()  # a worker may outlive a run (Ray's do): folders are resolved afresh for each block
    if fetched is None and fetch is not None and any(is_remote(path) for path, _ in items):
        fetched = fetch_block(items, fetch, cfg.max_bytes)
    order = None
    if fetched is None and not isinstance(tree, FolderTree):
        order = sorted(range(len(items)), key=lambda i: tree.position(items[i][0]))
    rows = process_items(tree, items, cfg, fetched, order)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, RESULT_SCHEMA) as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=RESULT_SCHEMA))
    return sink.getvalue().to_pybytes()


def store_block(tree: Tree, cfg: ImageConfig, fetch: FetchConfig | None, items: list[Item],
                fetched: list[Any] | None, out: Path) -> int:
    """``ingest_block``, its result written atomically to ``out`` by the worker itself (engines sharing the
    driver's disk); returns the block's size."""
    atomic_write_bytes(out, ingest_block(tree, cfg, fetch, items, fetched))
    return len(items)


def fingerprint(tree: Tree, items: list[Item], cfg: ImageConfig, fetch: FetchConfig | None = None) -> str:
    """Identity of a block's inputs: paths, declared hashes, file size and mtime (no content is read).

    Only lexically safe paths are stat'ed, with ``lstat`` (a final symlink is not followed); the
    full symlink check happens before the file is read, in the worker. An archive member's stamp is
    the archive's size and mtime and the member's size, offset and CRC. A URL, when fetching is on,
    is identified by itself and the fetch settings.
    """
    settings = [FORMAT_VERSION, asdict(cfg)] + ([fetch.content_dict()] if fetch is not None else [])
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    root = tree.root if isinstance(tree, FolderTree) else None
    for path, sha in items:
        try:
            if fetch is not None and is_remote(path):
                stamp = "remote"
            else:
                check_relative_path(path)
                stamp = tree.stamp(path) if root is None else _stat_stamp(root / path)
        except (ImageRejected, OSError) as exc:
            stamp = type(exc).__name__
        h.update(f"{path}\0{sha}\0{stamp}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def _stat_stamp(path: Path) -> str:
    st = os.lstat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


class ChunkCache:
    """Processed-media blocks for one dataset, under ``DATASET_DIR/.work``."""

    def __init__(self, out_dir: Path, tree: Tree, tasks: list[Item], chunk_size: int, image: ImageConfig,
                 fetch: FetchConfig | None = None) -> None:
        self.dir = out_dir / ".work"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tree, self.image, self.fetch = tree, image, fetch
        self.chunks = [tasks[i:i + chunk_size] for i in range(0, len(tasks), chunk_size)]
        self.paths = [self.dir / f"{fingerprint(tree, c, image, fetch)}.arrow" for c in self.chunks]

    def todo(self) -> list[int]:
        """The blocks not cached yet."""
        return [i for i, p in enumerate(self.paths) if not p.is_file()]

    def fill(self, engine: Engine, progress: Progress) -> list[int]:
        """Run every block that is not cached yet on ``engine``; returns the blocks run."""
        todo = self.todo()
        progress.update(sum(len(c) for c, p in zip(self.chunks, self.paths) if p.is_file()))
        if len(todo) == 1 and not engine.remote:
            engine = create_engine(EngineConfig(workers=1))  # one block: no worker process to start
        remote = engine.remote
        with contextlib.ExitStack() as stack:
            blocks: Iterator[tuple[int, list[Any] | None]] = ((i, None) for i in todo)
            if self.fetch is not None and not remote and any(is_remote(p) for i in todo for p, _ in self.chunks[i]):
                engine.start()  # fork the workers before any fetch thread exists
                blocks = self._fetched_ahead(stack.enter_context(Fetcher(self.fetch, self.image.max_bytes)), todo)
            args = ((self.chunks[i], fetched) + (() if remote else (self.paths[i],)) for i, fetched in blocks)
            fn = ingest_block if remote else store_block
            for k, result in engine.map(fn, args, common=(self.tree, self.image, self.fetch)):
                if remote:
                    atomic_write_bytes(self.paths[todo[k]], result)
                self._stored(todo[k], len(self.chunks[todo[k]]), progress)
        return todo

    def _fetched_ahead(self, fetcher: Fetcher, todo: list[int]) -> Iterator[tuple[int, list[Any]]]:
        """Blocks with their fetched bodies, fetched on the driver (one Fetcher: per-host limits and opt-out
        caches hold for the whole run). The next block's URLs wait in the fetch queue behind the current
        block's, so a block's slowest URL does not leave the fetch threads idle."""
        ahead = collections.deque((i, self._submit(fetcher, i)) for i in todo[:2])
        upcoming = iter(todo[2:])
        while ahead:
            i, futures = ahead.popleft()
            fetched = collect(futures)
            nxt = next(upcoming, None)
            if nxt is not None:
                ahead.append((nxt, self._submit(fetcher, nxt)))
            yield i, fetched

    def _submit(self, fetcher: Fetcher, i: int) -> list[Future[Any] | None]:
        """Queue block ``i``'s remote media for fetching: a future per URL, None for a local item."""
        return [fetcher.submit(path) if is_remote(path) else None for path, _ in self.chunks[i]]

    def _stored(self, i: int, n: int, progress: Progress) -> None:
        """Block ``i`` (``n`` media) is on disk."""
        progress.update(n)

    def rows(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Result rows in task order (only ``columns``, when given)."""
        for path in self.paths:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
                rows = (table if columns is None else table.select(columns)).to_pylist()
            yield from rows

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
