"""``forget``: record a person's tombstones, then remove their posts from every artifact tagsight made.

``forget(requests, roots, rewrite=False)`` does, in order:

1. finds every dataset (``manifest.json``) under ``roots`` and records the requests as tombstones
   in each one's catalog (``catalog/tombstones.parquet``). From this moment the training loader
   (``SampleIndex``), feature extraction and every server that watches the tombstones
   (``TombstoneWatcher``) leave the posts out: no restart is needed;
2. resolves the tombstones to post keys (``Forgotten``): authors, posts and hashtags are looked up
   in each dataset's catalog (``posts``), and posts removed by an earlier rewrite are read back
   from their ``forgotten`` decision rows;
3. asks every registered artifact kind (``FORGETTERS``), the dataset kind first, to find its
   artifacts under ``roots``, count what they hold of the forgotten posts and purge it.

Everything is idempotent: a second call with the same requests finds nothing new to do
(``ForgetReport.changed`` is empty). Every file is replaced atomically, so readers see the old or
the new state, never half of one: it is safe while a server runs.

The contract of an artifact kind (three functions, registered with ``register_forgetter``)::

    find(root: Path) -> list[Path]                       # the artifacts of this kind under root
    affected(artifact: Path, forgotten: Forgotten) -> int  # how many forgotten posts/rows it still holds
    purge(artifact: Path, forgotten: Forgotten) -> str     # remove them (atomically); one line saying what was done,
                                                           # starting "unchanged:" when nothing was modified

``forgotten.forgets(post_key, author_id=None, hashtags=())`` answers for one post exactly like
``Tombstones.forgets`` and also knows the post keys resolved from the catalogs; ``forgotten.rewrite``
says whether shards are being rewritten. ``purge`` is only called when ``affected`` is positive.
A kind that cannot remove data itself (a checkpoint) writes a notice and says so in its line.
The module that owns an artifact registers its kind here (registration goes up: this layer names no
module above it); the command line assembles them by importing ``tagsight.cli.forgetters``, and a
library caller does the same before calling ``forget``. With no kind registered ``forget`` refuses
(``no_forgetters``) rather than record tombstones and purge nothing.
``post_key_table_forgetter`` builds the three functions for the common case of Parquet files with a
``post_key`` column.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tagsight.fsio import ReasonError, atomic_write_bytes
from tagsight.schema import catalog
from tagsight.privacy.tombstones import Tombstone, Tombstones, add_tombstones, load_tombstones
from tagsight.registry import Registry
from tagsight.storage import dataset_path, read_bytes

log = logging.getLogger(__name__)

FORGOTTEN_REASON = "forgotten"


def join_post_keys(table: pa.Table) -> pa.ChunkedArray[Any]:
    """``source/post_id`` of every row of ``table`` (a catalog table with both columns), as a string column."""
    # pyarrow takes a plain str separator; pyarrow-stubs types the separator like the string columns
    keys = pc.binary_join_element_wise(table["source"], table["post_id"], "/")  # type: ignore[call-overload]
    joined: pa.ChunkedArray[Any] = keys
    return joined


def row_post_keys(table: pa.Table) -> list[str | None]:
    """``source/post_id`` per row of ``table``; None where either is null (a decision row whose record was erased)."""
    keys: list[str | None] = join_post_keys(table).to_pylist()
    return keys


@dataclass(frozen=True)
class Forgotten:
    """What is forgotten: the tombstones of the datasets concerned and the post keys they resolve to."""

    tombstones: Tombstones
    post_keys: frozenset[str] = frozenset()
    rewrite: bool = False
    roots: tuple[Path, ...] = ()     # where forget looks: kinds resolve path-less lineage references here

    def __bool__(self) -> bool:
        return bool(self.tombstones) or bool(self.post_keys)

    def forgets(self, post_key: str, author_id: str | None = None, hashtags: Iterable[str] = ()) -> bool:
        return post_key in self.post_keys or self.tombstones.forgets(post_key, author_id, hashtags)


FindFn = Callable[[Path], list[Path]]
AffectedFn = Callable[[Path, Forgotten], int]
PurgeFn = Callable[[Path, Forgotten], str]


@dataclass(frozen=True)
class Forgetter:
    """One artifact kind's three functions (see the module docstring); ``stage`` orders kinds (low first)."""

    find: FindFn
    affected: AffectedFn
    purge: PurgeFn
    stage: int = 50
    retrain: bool = False     # an affected artifact is a model to retrain (listed under "retrain needed")


FORGETTERS: Registry[Forgetter] = Registry("artifact kind")


def register_forgetter(name: str, find: FindFn, affected: AffectedFn, purge: PurgeFn, stage: int = 50,
                       retrain: bool = False) -> None:
    """Add an artifact kind to ``FORGETTERS`` (see the contract in the module docstring)."""
    forgetter = Forgetter(find, affected, purge, stage, retrain)
    FORGETTERS.register(name)(lambda: forgetter)


@dataclass(frozen=True)
class ArtifactResult:
    """What forgetting did to one artifact: how much it held and what was done (``changed``: anything new)."""

    kind: str
    path: str
    affected: int
    action: str
    changed: bool


@dataclass
class ForgetReport:
    tombstones_added: int = 0
    datasets: list[str] = field(default_factory=list)
    forgotten_posts: int = 0
    results: list[ArtifactResult] = field(default_factory=list)
    retrain: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> list[ArtifactResult]:
        return [r for r in self.results if r.changed]

    def format(self) -> str:
        lines = [f"tombstones added: {self.tombstones_added} (in {len(self.datasets)} dataset(s)); "
                 f"{self.forgotten_posts} post(s) forgotten in all"]
        lines += [f"  {r.kind:<10} {r.path}: {r.action}" for r in self.results]
        if self.retrain:
            lines.append("retrain needed (lineage includes forgotten posts):")
            lines += [f"  {path}" for path in self.retrain]
        if not self.changed and not self.tombstones_added:
            lines.append("nothing new: every artifact was already clean")
        lines.append(f"done in {self.seconds:.2f}s")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------- requests


def requests_from(authors: Iterable[str] = (), posts: Iterable[str] = (), hashtags: Iterable[str] = (),
                  optout_files: Iterable[str | Path] = (), reason: str = "request") -> list[Tombstone]:
    """Tombstones for the given ids and opt-out list files (lines ``author:ID``, ``post:ID``, ``hashtag:TAG``, bare author id)."""
    out = [Tombstone("author", a, reason) for a in authors]
    out += [Tombstone("post", p, reason) for p in posts]
    out += [Tombstone("hashtag", h, reason) for h in hashtags]
    for path in optout_files:
        out += _optout_file(dataset_path(path) if isinstance(path, str) else path)
    if not out:
        raise ReasonError("no_forget_request", "nothing to forget: give --author, --post, --hashtag or --optout-file")
    return out


def _optout_file(path: str | Path) -> list[Tombstone]:
    """Lines as in ingest's opt-out lists (``author:ID``, ``post:ID``, bare author id; ``#`` comments) plus ``hashtag:TAG``;
    ``path`` a local file or an fsspec URL (read through ``tagsight.storage.read_bytes``, retried)."""
    try:
        text = read_bytes(path).decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ReasonError("optout_file_missing", f"opt-out list {path} does not exist") from None
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        kind, sep, value = line.partition(":")
        if sep and kind in ("author", "post", "hashtag"):
            out.append(Tombstone(kind, value.strip(), "optout_list"))
        elif line:
            out.append(Tombstone("author", line, "optout_list"))
    return out


# ------------------------------------------------------------------------------------------- resolving


def find_datasets(roots: Iterable[str | Path]) -> list[Path]:
    """Every dataset folder (holding ``manifest.json`` and ``catalog/``) under ``roots``, sorted."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if (root / "manifest.json").is_file() and (root / "catalog").is_dir():
            found.add(root)
        found.update(p.parent for p in root.rglob("manifest.json")
                     if (p.parent / "catalog").is_dir() and not any(part.startswith(".") for part in p.parts))
    return sorted(found)


def resolve_post_keys(dataset_dir: str | Path, tombstones: Tombstones) -> set[str]:
    """``source/post_id`` of every post of the dataset the tombstones forget: kept posts and posts already removed."""
    keys: set[str] = set()
    if not tombstones:
        return keys
    posts = catalog.read_table(dataset_dir, "posts", ["source", "post_id", "author_id", "hashtags"])
    full = join_post_keys(posts)
    mask = pc.or_(pc.is_in(posts["author_id"], pa.array(sorted(tombstones.authors), pa.string())),
                  pc.or_(pc.is_in(full, pa.array(sorted(tombstones.posts), pa.string())),
                         pc.is_in(posts["post_id"], pa.array(sorted(tombstones.posts), pa.string()))))
    keys.update(k for k in pc.filter(full, mask).to_pylist() if k is not None)
    if tombstones.hashtags:
        for key, tags in zip(full.to_pylist(), posts["hashtags"].to_pylist()):
            if key is not None and tombstones.forgets(key, None, tags or ()):
                keys.add(key)
    keys.update(removed_post_keys(dataset_dir))
    return keys


def removed_post_keys(dataset_dir: str | Path) -> dict[str, str]:
    """Posts removed from the dataset by a rewrite: post key -> the version they were removed from."""
    table = catalog.read_table(dataset_dir, "decisions", ["source", "post_id", "reason", "detail"])
    rows = table.filter(pc.equal(table["reason"], pa.scalar(FORGOTTEN_REASON))).to_pydict()
    return {f"{s}/{p}": d.rsplit(" ", 1)[-1] for s, p, d in zip(rows["source"], rows["post_id"], rows["detail"])}


def forgotten_state(datasets: Iterable[str | Path], rewrite: bool = False, roots: Iterable[Path] = ()) -> Forgotten:
    """The union of the tombstones of ``datasets`` and the post keys they resolve to."""
    rows: list[Tombstone] = []
    keys: set[str] = set()
    for ds in datasets:
        t = load_tombstones(ds)
        rows.extend(t.rows)
        keys |= resolve_post_keys(ds, t)
    return Forgotten(Tombstones.of(rows), frozenset(keys), rewrite, tuple(roots))


# ------------------------------------------------------------------------------------------- forgetting


def forget(requests: Iterable[Tombstone], roots: str | Path | Sequence[str | Path], rewrite: bool = False,
           kinds: Sequence[str] | None = None) -> ForgetReport:
    """Record ``requests`` in every dataset under ``roots`` and purge every artifact kind (see module docstring)."""
    start = time.monotonic()
    paths = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    requests = list(requests)
    if not FORGETTERS.names():
        raise ReasonError("no_forgetters", "no artifact kind is registered: import tagsight.cli.forgetters "
                                           "(or the modules that own the artifacts) before calling forget")
    datasets = find_datasets(paths)
    if not datasets:
        raise ReasonError("no_dataset", f"no tagsight dataset (manifest.json + catalog/) under {', '.join(map(str, paths))}")
    report = ForgetReport(datasets=[str(d) for d in datasets])
    report.tombstones_added = sum(add_tombstones(ds, requests) for ds in datasets)
    forgotten = forgotten_state(datasets, rewrite, paths)
    report.forgotten_posts = len(forgotten.post_keys)
    names = kinds or FORGETTERS.names()
    for name in sorted(names, key=lambda n: (FORGETTERS.create(n).stage, n)):
        report.results += _purge_kind(name, FORGETTERS.create(name), paths, forgotten)
    report.retrain = [r.path for r in report.results if FORGETTERS.create(r.kind).retrain and r.affected]
    report.seconds = time.monotonic() - start
    log.info("forget: %d tombstones added, %d posts, %d artifacts changed in %.2fs", report.tombstones_added,
             report.forgotten_posts, len(report.changed), report.seconds)
    return report


def _purge_kind(name: str, forgetter: Forgetter, roots: list[Path], forgotten: Forgotten) -> list[ArtifactResult]:
    results = []
    seen: set[Path] = set()
    for root in roots:
        for artifact in forgetter.find(root):
            if artifact in seen:
                continue
            seen.add(artifact)
            n = forgetter.affected(artifact, forgotten)
            if n:
                action = forgetter.purge(artifact, forgotten)
                results.append(ArtifactResult(name, str(artifact), n, action, not action.startswith("unchanged")))
            else:
                results.append(ArtifactResult(name, str(artifact), 0, "clean", False))
    return results


# ------------------------------------------------------------------------------------------- a generic kind


def _post_key_column(table: pa.Table) -> pa.ChunkedArray[Any]:
    if "post_key" in table.column_names:
        return table["post_key"]
    if {"source", "post_id"} <= set(table.column_names):
        return join_post_keys(table)
    raise ReasonError("no_post_key", "table has neither a post_key column nor source and post_id columns")


def forgotten_mask(table: pa.Table, forgotten: Forgotten) -> list[bool]:
    """Per row of ``table``: does ``forgotten`` forget it (by post key, ``author_id`` and ``hashtags`` when present)."""
    keys = _post_key_column(table).to_pylist()
    authors = table["author_id"].to_pylist() if "author_id" in table.column_names else [None] * len(keys)
    tags = table["hashtags"].to_pylist() if "hashtags" in table.column_names else [()] * len(keys)
    return [forgotten.forgets(k or "", a, t or ()) for k, a, t in zip(keys, authors, tags)]


def post_key_table_forgetter(pattern: str) -> tuple[FindFn, AffectedFn, PurgeFn]:
    """find/affected/purge for Parquet files matching ``pattern`` (a glob under the root) with a post key per row.

    Rows are matched by ``post_key`` (or ``source`` + ``post_id``), ``author_id`` and ``hashtags`` when
    present; purge rewrites the file atomically without the forgotten rows, keeping schema and metadata.
    """
    def find(root: Path) -> list[Path]:
        return sorted(p for p in Path(root).rglob(pattern) if p.is_file())

    def affected(path: Path, forgotten: Forgotten) -> int:
        return sum(forgotten_mask(pq.read_table(path), forgotten))

    def purge(path: Path, forgotten: Forgotten) -> str:
        table = pq.read_table(path)
        mask = forgotten_mask(table, forgotten)
        kept = table.filter(pa.array([not m for m in mask]))
        buf = io.BytesIO()
        pq.write_table(kept, buf)
        atomic_write_bytes(path, buf.getvalue())
        return f"removed {sum(mask)} of {table.num_rows} rows"

    return find, affected, purge
