"""Artifact folders on object storage: mirrored to read (``local_folder``), staged to write (``output_folder``) and
published record files last (``publish_folder``, ``publish_changes``), so a reader never takes a partial upload for an
artifact."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Iterator

from tagsight.fsio import ReasonError, atomic_write_bytes, atomic_write_text, private_temp
from tagsight.storage.blocks import CacheConfig
from tagsight.storage.urls import dataset_path, is_url, open_filesystem, read_bytes, retry

log = logging.getLogger(__name__)



def staging_folder(url: str, cache: CacheConfig | None = None) -> Path:
    """The local folder where a dataset bound for ``url`` is built before upload (stable, so a rerun resumes)."""
    key = hashlib.blake2b(url.rstrip("/").encode(), digest_size=12).hexdigest()
    return (cache or CacheConfig()).folder / "staging" / key


def publish_folder(folder: Path, url: str, last: str | tuple[str, ...] = "manifest.json", prune: bool = False) -> int:
    """Upload ``folder`` to ``url`` so that readers never take a partial upload for an artifact.

    ``last`` names the record files (``manifest.json``, ``run.json``, ``bundle.json``...; a single name must exist at
    the top of ``folder``; a tuple syncs a tree of artifacts). Every record about to change is deleted on the store
    first (its artifact is invisible from then on), the other files go up, then the records. Files unchanged since
    ``folder`` was mirrored from ``url`` are not sent again. ``prune``: also delete what the store holds under ``url``
    and ``folder`` no longer does (a rewritten artifact), before the records. Returns the number of files sent; after an
    interruption the same call completes the upload."""
    folder = Path(folder)
    records = (last,) if isinstance(last, str) else tuple(last)
    if isinstance(last, str) and not (folder / last).is_file():
        raise ReasonError("dataset_incomplete", f"{folder} has no {last}: nothing to publish")
    files = {name: folder / name for name in sorted(_local_stats(folder))}   # hidden files and folders left out
    unchanged = _unchanged_since_mirror(folder, url)
    send = [name for name in files if name not in unchanged]
    fs, inner = open_filesystem(url)
    inner = inner.rstrip("/")
    late = [name for name in send if posixpath.basename(name) in records]
    for name in late:
        target = f"{inner}/{name}"
        if retry(lambda: fs.exists(target), target):  # noqa: B023 - called at once
            retry(lambda: fs.rm_file(target), target)   # noqa: B023 - the old version is invisible from now
    for name in [n for n in send if n not in late] + ([] if prune else late):
        _put(fs, files[name], f"{inner}/{name}")
    if prune:
        _prune(fs, inner, url, set(files))
        for name in late:
            _put(fs, files[name], f"{inner}/{name}")
    log.info("published %d of %d files of %s to %s (%s last)", len(send), len(files), folder, url, ", ".join(records))
    return len(send)


def publish_changes(folder: Path, url: str, last: tuple[str, ...] = (), prune_under: str | None = None) -> int:
    """Upload what changed in ``folder`` since it was mirrored from, or last published to, ``url``, never taking a
    record away (for a folder that is published again and again while it is written, such as a run's checkpoints).

    Changed files other than ``last`` go up first, then the ``last`` files that changed, in the order given (each
    put replaces its object whole, so a reader finds the old record or the new one, never none). Then the files
    under ``prune_under`` (a folder inside ``url``) that the store holds and ``folder`` no longer does are deleted.
    What was sent is recorded in ``folder``'s mirror state, so the next call and ``publish_folder`` skip it; after an
    interruption the next call sends what is missing. Returns the number of files sent."""
    folder, url = Path(folder), url.rstrip("/")
    stats = _local_stats(folder)
    unchanged = _unchanged_since_mirror(folder, url)
    changed = [name for name in sorted(stats) if name not in unchanged]
    order = [name for name in changed if name not in last] + [name for name in last if name in changed]
    fs, inner = open_filesystem(url)
    inner = inner.rstrip("/")
    state = _mirror_state(folder, url)
    for name in order:
        _put(fs, folder / name, f"{inner}/{name}")
        state["local"][name] = stats[name]   # as it was before the put: a file changed meanwhile goes up next time
    if prune_under is not None:
        under = prune_under.strip("/")
        for name in sorted(_listing(fs, f"{inner}/{under}", url)):
            relative = f"{under}/{name}"
            if relative not in stats:
                retry(lambda: fs.rm_file(f"{inner}/{relative}"), f"{url}/{relative}")  # noqa: B023 - called at once
                state["local"].pop(relative, None)
                log.debug("removed %s/%s (gone from %s)", url, relative, folder)
    write_state(folder / MIRROR_STATE, state)
    log.info("published %d changed files of %s to %s (%s last)", len(order), folder, url, ", ".join(last) or "none")
    return len(order)


def _mirror_state(folder: Path, url: str) -> dict[str, Any]:
    """``folder``'s mirror state for ``url`` (an empty one when it has none, or one of another URL)."""
    path = folder / MIRROR_STATE
    state = json.loads(path.read_text()) if path.is_file() else {}
    if state.get("url") != url:
        state = {"url": url, "files": {}, "local": {}}
    state.setdefault("local", {})
    return state


def _put(fs: Any, path: Path, target: str) -> None:
    retry(lambda: fs.put_file(str(path), target), target)
    log.debug("uploaded %s", target)


def _local_stats(folder: Path) -> dict[str, list[int]]:
    """(size, mtime in ns) of every file of ``folder`` but hidden ones (``.mirror.json``, ``.tmp-*`` folders)."""
    return {p.relative_to(folder).as_posix(): [p.stat().st_size, p.stat().st_mtime_ns]
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _unchanged_since_mirror(folder: Path, url: str) -> set[str]:
    """Files of ``folder`` that are still as ``mirror_folder`` fetched them from ``url`` (same size and time)."""
    state_path = folder / MIRROR_STATE
    if not state_path.is_file():
        return set()
    state = json.loads(state_path.read_text())
    if state.get("url") != url.rstrip("/"):
        return set()
    fetched = state.get("local", {})
    return {name for name, stat in _local_stats(folder).items() if fetched.get(name) == stat}


def _prune(fs: Any, inner: str, url: str, keep: set[str]) -> None:
    for name in sorted(set(_listing(fs, inner, url)) - keep):
        retry(lambda: fs.rm_file(f"{inner}/{name}"), f"{url}/{name}")  # noqa: B023 - called at once
        log.info("removed %s/%s (no longer part of the artifact)", url, name)


MIRROR_STATE = ".mirror.json"   # in a mirror: the URL it copies and the signature of every file it holds


def _signature(info: dict[str, Any]) -> str:
    """What identifies a remote file's content without reading it: its ETag (S3, GCS) or size and mtime."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or info.get("created")
    return f"{info.get('size')}:{tag}"


def _listing(fs: Any, inner: str, url: str) -> dict[str, dict[str, Any]]:
    """Every file under ``inner`` (relative POSIX name -> fsspec info); {} when nothing is there."""
    found = retry(lambda: fs.find(inner, detail=True), url)
    return {posixpath.relpath(name, inner): info for name, info in found.items()
            if info.get("type", "file") == "file"}


METADATA_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml", ".parquet", ".md", ".txt")


def is_metadata(name: str) -> bool:
    """Whether a file of an artifact is one of its records (manifests, configs, catalogs, lineage), not its bulk
    (shards, checkpoints, weights, feature banks)."""
    return name.endswith(METADATA_SUFFIXES)


def mirror_folder(url: str, target: Path | None = None, marker: str | None = None,
                  cache: CacheConfig | None = None, metadata_only: bool = False) -> Path:
    """A local copy of the artifact folder at ``url`` (only its records with ``metadata_only``), kept in the cache (``TAGSIGHT_CACHE_DIR``/mirror) and brought up
    to date on every call: files whose ETag (or size and time) changed are fetched again, files gone are removed.
    ``marker``: the file an artifact writes last (``manifest.json``, ``run.json``, ``bundle.json``); a folder without
    it is refused (``artifact_incomplete``), as is a URL with nothing under it (``artifact_missing``)."""
    url = url.rstrip("/")
    kind = "meta" if metadata_only else "mirror"
    target = Path(target) if target is not None else _cache_key_folder(url, kind, cache)
    fs, inner = open_filesystem(url)
    remote = _listing(fs, inner.rstrip("/"), url)
    if metadata_only:
        remote = {name: info for name, info in remote.items() if is_metadata(name)}
    if not remote:
        raise ReasonError("artifact_missing", f"{url}: nothing there")
    if marker is not None and marker not in remote:
        raise ReasonError("artifact_incomplete", f"{url} has no {marker}: not a finished artifact (an upload or a "
                                                 "run in progress, or another kind of folder)")
    with _locked(target):
        fetched = _fetch_changed(fs, inner.rstrip("/"), url, remote, target)
    log.info("%s: %d of %d files fetched into %s", url, fetched, len(remote), target)
    return target


def _fetch_changed(fs: Any, inner: str, url: str, remote: dict[str, dict[str, Any]], target: Path) -> int:
    """Bring ``target`` to what ``remote`` lists: changed files fetched, files gone removed, the state rewritten."""
    state_path = target / MIRROR_STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    held: dict[str, str] = state.get("files", {}) if state.get("url") == url else {}
    fetched = 0
    for name, info in sorted(remote.items()):
        local = target / name
        if held.get(name) == _signature(info) and local.is_file():
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = private_temp(local)
        source = f"{inner}/{name}"
        retry(lambda: fs.get_file(source, str(tmp)), f"{url}/{name}")  # noqa: B023 - called at once
        os.replace(tmp, local)
        fetched += 1
    for path in sorted(p for p in target.rglob("*") if p.is_file() and p.name != MIRROR_STATE):
        if path.relative_to(target).as_posix() not in remote:
            path.unlink()
    write_state(state_path, {"url": url, "files": {n: _signature(i) for n, i in remote.items()},
                             "local": _local_stats(target)})
    return fetched


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold the lock of the local copy ``target``: one process at a time brings it up to date (torchrun ranks that
    mirror one URL at argument-parse time, two verbs sharing a cache); the others wait, then find it current."""
    lock = target.parent / f".{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_state(path: Path, data: dict[str, Any]) -> None:
    """A small JSON state file (``.mirror.json``, ``.target.json``) replaced whole (``atomic_write_text``), so a
    reader or a process killed meanwhile never finds half of it."""
    atomic_write_text(path, json.dumps(data))


def _cache_key_folder(url: str, kind: str, cache: CacheConfig | None) -> Path:
    key = hashlib.blake2b(url.rstrip("/").encode(), digest_size=12).hexdigest()
    return (cache or CacheConfig()).folder / kind / key


STAGING_TARGET = ".target.json"   # in a staging folder: the URL it will be published to


def mirror_origin(folder: str | Path) -> str | None:
    """The URL a local folder stands for: the one a mirror (``mirror_folder``) copies or a staging folder
    (``output_folder``) is published to; None for a plain local folder."""
    folder = Path(folder).absolute()
    for above in (folder, *folder.parents):     # a folder inside a mirror stands for the URL below the mirror's
        for name in (MIRROR_STATE, STAGING_TARGET):
            state = above / name
            if state.is_file():
                url = json.loads(state.read_text()).get("url")
                inner = folder.relative_to(above).as_posix()
                return (str(url) if inner == "." else f"{url}/{inner}") if url else None
    return None


def location(folder: str | Path) -> str:
    """Where an artifact lives, as lineage records it: the URL a mirror or staging folder stands for, else the
    absolute local path."""
    if is_url(folder):
        return str(folder)
    return mirror_origin(folder) or str(Path(folder).resolve())


def local_folder(path: str | Path, marker: str | None = None, metadata_only: bool = False) -> Path:
    """An artifact folder to read: a local path as it is (``file://`` too), a URL mirrored into the cache."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        return resolved
    return mirror_folder(resolved, marker=marker, metadata_only=metadata_only)


def local_input(path: str | Path) -> Path:
    """A file or a folder of files to read (photos, a list): a local path as it is, a URL copied into the cache and
    kept up to date like a mirror: a folder by ``mirror_folder``, a single file into a folder of its own
    (``location`` of the copy names the URL). A URL with nothing there is refused (``artifact_missing``)."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        return resolved
    fs, inner = open_filesystem(resolved)
    inner = inner.rstrip("/")
    if not retry(lambda: fs.isfile(inner), resolved):
        return mirror_folder(resolved)
    parent, name = resolved.rsplit("/", 1)
    folder = _cache_key_folder(resolved, "files", None)
    with _locked(folder):
        _fetch_changed(fs, posixpath.dirname(inner), parent, {name: retry(lambda: fs.info(inner), resolved)}, folder)
    return folder / name


@contextlib.contextmanager
def downloaded_input(path: str | Path) -> Iterator[Path]:
    """A source read once and not kept (an export, a post list, a photo folder): a local path as it is; a URL
    downloaded into a temporary folder, under the URL's own file or folder name, that is removed when the block
    ends. Unlike ``local_input`` nothing goes into the cache: a raw export holds posts that may not be used, and
    no copy of them outlives the read. A URL with nothing there is refused (``artifact_missing``)."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        yield resolved
        return
    fs, inner = open_filesystem(resolved)
    inner = inner.rstrip("/")
    if not retry(lambda: fs.exists(inner), resolved):
        raise ReasonError("artifact_missing", f"{resolved}: nothing there")
    with tempfile.TemporaryDirectory(prefix="tagsight-input-") as tmp:
        target = Path(tmp) / (posixpath.basename(inner) or "input")
        if retry(lambda: fs.isdir(inner), resolved):
            for name in sorted(_listing(fs, inner, resolved)):
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                retry(lambda: fs.get_file(f"{inner}/{name}", str(target / name)), resolved)  # noqa: B023 - at once
        else:
            retry(lambda: fs.get_file(inner, str(target)), resolved)
        yield target


def resolve_from(base: str | Path, relative: str) -> str | Path:
    """``relative`` (a path written inside an artifact) resolved against the artifact ``base``: for a mirror of a URL
    against that URL (so that a bundle on object storage finds the run beside it), else against the folder."""
    origin = mirror_origin(base) if not is_url(base) else str(base)
    if origin is None:
        return (Path(base) / relative).resolve()
    scheme, _, rest = origin.partition("://")
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, relative))}"


@contextlib.contextmanager
def output_folder(path: str | Path, marker: str | tuple[str, ...]) -> Iterator[Path]:
    """Where a verb writes an artifact bound for ``path``: a local path is used as it is; for a URL a stable local
    staging folder, first filled from the URL when something is already there (so that a run is resumed wherever it
    was interrupted), then published when the verb succeeds, ``marker`` last (``publish_folder``; a tuple of record
    names for a tree of artifacts, such as the root ``forget --rewrite`` works on). On an error nothing is published
    and the staging folder stays for the rerun."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        yield resolved
        return
    staging = staging_folder(resolved)
    with _locked(staging):   # ranks or verbs starting at once: one fills the folder, the others find it filled
        if not staging.exists():
            fs, inner = open_filesystem(resolved)
            remote = _listing(fs, inner.rstrip("/"), resolved)
            if remote:   # its mirror state lets the publish skip what did not change
                _fetch_changed(fs, inner.rstrip("/"), resolved, remote, staging)
        staging.mkdir(parents=True, exist_ok=True)
        write_state(staging / STAGING_TARGET, {"url": resolved})
    yield staging
    publish_folder(staging, resolved, last=marker, prune=True)


@contextlib.contextmanager
def shared_folder(path: str | Path, marker: str, tables: tuple[str, ...]) -> Iterator[Path]:
    """Where a verb that appends rows to ``tables`` of an artifact while it runs (a review or rating server, a merge of
    votes) works: a local path as it is; for a URL the staging folder, brought up to date with the store first
    (``marker`` required: an unfinished artifact is refused), rows of ``tables`` it held that the store lacks kept
    (a server killed before it published loses nothing); when the verb ends, the rows others published to the store
    meanwhile are merged in and the folder is published (``publish_folder``, ``marker`` last, each table one object
    put whole). On an error nothing is published and the staging folder keeps every row for the next run.

    ``tables`` are append-only Parquet tables (``catalog/reviews.parquet``, ``votes.parquet``): merging appends the
    rows of one that the other lacks, so two servers on one URL both keep their rows (unless both publish in the same
    instant: the later put wins, and the earlier server's rows stay in its staging folder for its next run)."""
    resolved = dataset_path(path) if isinstance(path, str) else Path(path)
    if isinstance(resolved, Path):
        yield resolved
        return
    staging = staging_folder(resolved)
    held = {name: _read_table(staging / name) for name in tables if (staging / name).is_file()}
    mirror_folder(resolved, target=staging, marker=marker)
    for name, table in held.items():
        _merge_rows(staging / name, table)
    write_state(staging / STAGING_TARGET, {"url": resolved})
    yield staging
    for name in tables:
        try:
            _merge_rows(staging / name, _read_table(read_bytes(f"{resolved}/{name}")))
        except FileNotFoundError:
            continue   # not on the store (yet)
    publish_folder(staging, resolved, last=marker, prune=True)


def _read_table(source: Path | bytes) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(source) if isinstance(source, bytes) else source)


def _merge_rows(path: Path, other: Any) -> int:
    """Append to the Parquet table ``path`` the rows of the table ``other`` it does not hold (all of them when there is
    no ``path``); returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    mine = _read_table(path) if path.is_file() else other.slice(0, 0)

    def key(row: dict[str, Any]) -> str:
        return json.dumps(row, sort_keys=True, default=str)

    have = {key(r) for r in mine.to_pylist()}
    fresh = [r for r in other.select(mine.schema.names).to_pylist() if key(r) not in have]
    if fresh:
        buf = io.BytesIO()
        pq.write_table(pa.concat_tables([mine, pa.Table.from_pylist(fresh, schema=mine.schema)]), buf)
        atomic_write_bytes(path, buf.getvalue())
        log.info("%s: %d rows published by others merged in", path, len(fresh))
    return len(fresh)
