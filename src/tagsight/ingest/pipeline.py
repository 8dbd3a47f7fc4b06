"""The ingest run: source -> consent gate -> sanitised images -> de-duplication -> shards + catalog + manifest.

Resumable and idempotent. Image work is cut into fixed chunks of media tasks whose results are
cached under ``DATASET_DIR/.work/`` (each chunk written atomically, keyed by a fingerprint of
its inputs and the image settings). A run killed at any point and started again reuses the
finished chunks, redoes the rest, and then rewrites shards, catalog and manifest
deterministically, so the dataset version is the same as for an uninterrupted run.

With ``IngestConfig.fetch`` set, http(s) media are fetched in this process (``tagsight.ingest.fetch``:
one thread pool, per-host limits, the sites' opt-outs) and handed to the workers with their chunk;
results keep source order, so the version does not depend on which answer came first.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from tagsight import __version__
from tagsight.schema import catalog
from tagsight.ingest.dedup import DupMatch, find_duplicates
from tagsight.ingest.fetch import FetchConfig, Fetcher, is_remote
from tagsight.ingest.images import (ImageConfig, ImageRejected, ProcessedImage, check_relative_path, clear_path_cache,
                                   process_image, read_media, read_tree_media, resolve_media_path, start_run)
from tagsight.schema.posts import Post
from tagsight.ingest.shards import ShardInfo, ShardWriter, atomic_write_bytes, sample_key
from tagsight.ingest.sources import Rejected, Source
from tagsight.ingest.sources.folder import is_image_name
from tagsight.schema.text import fold_hashtag
from tagsight.ingest.tree import FolderTree, Tree
from tagsight.privacy.policy import ConsentPolicy, decide
from tagsight.privacy.tombstones import Tombstones, load_tombstones
from tagsight.progress import Progress

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class IngestConfig:
    """How ingest stores what it keeps. Validated at construction."""

    samples_per_shard: int = 1000
    near_duplicate_radius: int | None = 3
    workers: int = 0
    chunk_size: int = 256
    image: ImageConfig = field(default_factory=ImageConfig)
    fetch: FetchConfig | None = None  # None: http(s) media are rejected as remote_media_unsupported

    def __post_init__(self) -> None:
        if self.samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {self.samples_per_shard}")
        if self.near_duplicate_radius is not None and not 0 <= self.near_duplicate_radius < 32:
            raise ValueError(f"near_duplicate_radius must be in [0, 32) or None, got {self.near_duplicate_radius}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0 = one per core), got {self.workers}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.fetch is not None and not isinstance(self.fetch, FetchConfig):
            raise ValueError(f"fetch must be a FetchConfig or None, got {type(self.fetch).__name__}")

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def content_dict(self) -> dict[str, Any]:
        """The settings that change the output (worker and chunk counts do not)."""
        d = {"samples_per_shard": self.samples_per_shard, "near_duplicate_radius": self.near_duplicate_radius,
             "image": asdict(self.image)}
        if self.fetch is not None:
            d["fetch"] = self.fetch.content_dict()
        return d


@dataclass
class IngestSummary:
    """What happened, with counts that reconcile: in = kept + rejected, for posts and for media."""

    version: str
    posts_in: int = 0
    posts_kept: int = 0
    post_reasons: Counter = field(default_factory=Counter)
    media_in: int = 0
    media_kept: int = 0
    media_reasons: Counter = field(default_factory=Counter)
    gps_removed: int = 0
    metadata_removed: int = 0
    faces_blurred: int = 0
    shards: int = 0
    seconds: float = 0.0

    @property
    def posts_rejected(self) -> int:
        return sum(self.post_reasons.values())

    @property
    def media_rejected(self) -> int:
        return sum(self.media_reasons.values())

    def reconciles(self) -> bool:
        return (self.posts_in == self.posts_kept + self.posts_rejected
                and self.media_in == self.media_kept + self.media_rejected)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(post_reasons=dict(sorted(self.post_reasons.items())),
                 media_reasons=dict(sorted(self.media_reasons.items())),
                 posts_rejected=self.posts_rejected, media_rejected=self.media_rejected)
        return d

    def format(self) -> str:
        lines = [f"posts: {self.posts_in} in = {self.posts_kept} kept + {self.posts_rejected} rejected"]
        lines += [f"  rejected {n:>6}  {reason}" for reason, n in self.post_reasons.most_common()]
        lines.append(f"media of eligible posts: {self.media_in} in = {self.media_kept} kept + {self.media_rejected} rejected")
        lines += [f"  rejected {n:>6}  {reason}" for reason, n in self.media_reasons.most_common()]
        lines.append(f"metadata stripped from {self.metadata_removed} images ({self.gps_removed} carried GPS); "
                     f"faces blurred: {self.faces_blurred}")
        lines.append(f"{self.shards} shard(s); dataset version {self.version}; {self.seconds:.1f}s")
        return "\n".join(lines)


@dataclass
class _Scan:
    """The consent-gated view of a source: decisions for rejected records, eligible posts, media tasks."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    tasks: list[tuple[int, int, str, str | None]] = field(default_factory=list)  # (post#, media#, path, sha)


def _decision(ref: str, source: str, post_id: str | None, author_id: str | None,
              status: str, stage: str, reason: str = "", detail: str = "") -> dict[str, Any]:
    return dict(ref=ref, source=source, post_id=post_id, author_id=author_id,
                status=status, stage=stage, reason=reason, detail=detail)


def scan(source: Source, policy: ConsentPolicy, tombstones: Tombstones = Tombstones()) -> _Scan:
    """Read every record once and apply the schema and consent gates and the tombstones (no image is opened here)."""
    out, seen = _Scan(), set()
    for item in source:
        if isinstance(item, Rejected):
            out.decisions.append(_decision(item.ref, source.name, item.post_id, item.author_id,
                                           "rejected", "source", item.reason, item.detail))
            continue
        reasons = ["duplicate_post_id"] if item.key in seen else decide(item, policy)
        if not reasons and tombstones.forgets(item.key, item.author_id, item.hashtags):
            reasons = ["forgotten"]  # a re-ingest into a folder with tombstones never brings a forgotten post back
        seen.add(item.key)
        if not reasons and not item.media:
            reasons = ["no_media"]
        if reasons:
            out.decisions.append(_decision(item.key, source.name, item.post_id, item.author_id, "rejected",
                                           "policy" if reasons[0] != "duplicate_post_id" else "source",
                                           reasons[0], ",".join(reasons)))
            continue
        for m_index, media in enumerate(item.media):
            out.tasks.append((len(out.posts), m_index, media.path or media.url or "", media.sha256))
        out.posts.append(item)
    return out


_RESULT_SCHEMA = pa.schema([
    ("status", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("jpeg", pa.binary()),
    ("width", pa.int32()), ("height", pa.int32()), ("source_width", pa.int32()), ("source_height", pa.int32()),
    ("sha256", pa.string()), ("phash", pa.uint64()), ("faces_blurred", pa.int32()),
    ("had_gps", pa.bool_()), ("had_metadata", pa.bool_()),
])


_IMAGE_FIELDS = tuple(f.name for f in fields(ProcessedImage))


def _read(tree: Tree, path: str, sha256: str | None, cfg: ImageConfig) -> bytes:
    """A folder's files are read by ``read_media`` (tuned for folders), an archive's through the tree."""
    if isinstance(tree, FolderTree):
        return read_media(tree.root, path, cfg, expected_sha256=sha256)
    return read_tree_media(tree, path, cfg, expected_sha256=sha256)


def _collect(futures: list[Future | None]) -> list[Any]:
    """Fetch results in item order: bytes, a (reason, message) rejection (picklable), or None for local items."""
    out: list[Any] = []
    for future in futures:
        got = None if future is None else future.result()
        out.append((got.reason, str(got)) if isinstance(got, ImageRejected) else got)
    return out


def _fetched_bytes(path: str, sha256: str | None, fetched: bytes | tuple[str, str]) -> bytes:
    if isinstance(fetched, tuple):
        raise ImageRejected(*fetched)
    if sha256 is not None and hashlib.sha256(fetched).hexdigest() != sha256.lower():
        raise ImageRejected("sha256_mismatch", f"{path!r} has sha256 {hashlib.sha256(fetched).hexdigest()}, "
                            f"the post declares {sha256}")
    return fetched


def process_media(tree: Tree, path: str, sha256: str | None, cfg: ImageConfig,
                  fetched: bytes | tuple[str, str] | None = None) -> dict[str, Any]:
    """One media item of ``tree`` (or its fetched body) -> a result row: ``status`` ok with the sanitised image,
    or rejected with a reason."""
    try:
        data = _fetched_bytes(path, sha256, fetched) if fetched is not None else _read(tree, path, sha256, cfg)
        image = process_image(data, cfg)
    except ImageRejected as exc:
        return {"status": "rejected", "reason": exc.reason, "detail": str(exc)}
    return {"status": "ok", "reason": "", "detail": "", **{name: getattr(image, name) for name in _IMAGE_FIELDS}}


def _process_chunk(tree: Tree, items: list[tuple[str, str | None]], cfg: ImageConfig, out: Path,
                   fetched: list[Any] | None = None) -> int:
    """Worker entry point: process a chunk and write it atomically to ``out`` as Parquet; returns its size.

    The worker writes the file itself so that stored image bytes never cross the process boundary
    (fetched bodies do: ``fetched`` holds, when given, what was fetched for each item). The
    tree arrives pickled without open handles (an archive is reopened here); archive members are
    read in the order of their data, rows are written in task order.
    """
    if fetched is not None:
        rows = [process_media(tree, path, sha, cfg, got) for (path, sha), got in zip(items, fetched)]
    elif isinstance(tree, FolderTree):
        rows = [process_media(tree, path, sha, cfg) for path, sha in items]
    else:
        order = sorted(range(len(items)), key=lambda i: tree.position(items[i][0]))
        done = {i: process_media(tree, items[i][0], items[i][1], cfg) for i in order}
        rows = [done[i] for i in range(len(items))]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=_RESULT_SCHEMA), buf, compression="none")
    atomic_write_bytes(out, buf.getvalue())
    return len(rows)


def _fingerprint(tree: Tree, items: list[tuple[str, str | None]], cfg: ImageConfig,
                 fetch: FetchConfig | None = None) -> str:
    """Identity of a chunk's inputs: paths, declared hashes, file size and mtime (no content is read).

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
                h.update(f"{path}\0{sha}\0{stamp}\n".encode("utf-8", "surrogatepass"))
                continue
            check_relative_path(path)
            if root is None:
                stamp = tree.stamp(path)
            else:
                st = os.lstat(root / path)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except (ImageRejected, OSError) as exc:
            stamp = type(exc).__name__
        h.update(f"{path}\0{sha}\0{stamp}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


class ChunkCache:
    """Processed-media chunks for one dataset, under ``DATASET_DIR/.work``."""

    def __init__(self, out_dir: Path, tree: Tree, tasks: list[tuple[str, str | None]], cfg: IngestConfig) -> None:
        self.dir = out_dir / ".work"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tree, self.cfg = tree, cfg
        size = cfg.chunk_size
        self.chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
        self.paths = [self.dir / f"{_fingerprint(tree, c, cfg.image, cfg.fetch)}.parquet" for c in self.chunks]

    def fill(self, progress: Progress) -> None:
        """Process every chunk that is not cached yet, in parallel when there are several workers."""
        todo = [i for i, p in enumerate(self.paths) if not p.is_file()]
        progress.update(sum(len(c) for c, p in zip(self.chunks, self.paths) if p.is_file()))
        if self.cfg.fetch is not None and any(is_remote(path) for i in todo for path, _ in self.chunks[i]):
            self._fill_fetching(todo, progress)
            return
        if self.cfg.n_workers == 1 or len(todo) <= 1:
            for i in todo:
                self._stored(i, _process_chunk(self.tree, self.chunks[i], self.cfg.image, self.paths[i]), progress)
            return
        with ProcessPoolExecutor(max_workers=self.cfg.n_workers) as pool:
            futures = {pool.submit(_process_chunk, self.tree, self.chunks[i], self.cfg.image, self.paths[i]): i
                       for i in todo}
            for future in as_completed(futures):
                self._stored(futures[future], future.result(), progress)

    def _fill_fetching(self, todo: list[int], progress: Progress) -> None:
        """Fetch remote media here, with one Fetcher (per-host limits and opt-out caches hold for the whole run),
        while worker processes decode the chunks fetched before. The next chunk's URLs wait in the fetch queue
        behind the current chunk's, so a chunk's slowest URL does not leave the fetch threads idle; at most
        ``n_workers`` fetched chunks wait for a worker."""
        assert self.cfg.fetch is not None
        with contextlib.ExitStack() as stack:
            pool = None
            if self.cfg.n_workers > 1:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=self.cfg.n_workers))
                pool.submit(int).result()  # fork every worker now, before any fetch thread exists
            fetcher = stack.enter_context(Fetcher(self.cfg.fetch, self.cfg.image.max_bytes))
            ahead = collections.deque((i, self._submit(fetcher, i)) for i in todo[:2])
            upcoming = iter(todo[2:])
            decoding: collections.deque = collections.deque()
            while ahead:
                i, futures = ahead.popleft()
                fetched = _collect(futures)
                nxt = next(upcoming, None)
                if nxt is not None:
                    ahead.append((nxt, self._submit(fetcher, nxt)))
                if pool is None:
                    self._stored(i, _process_chunk(self.tree, self.chunks[i], self.cfg.image, self.paths[i], fetched),
                                 progress)
                    continue
                decoding.append((i, pool.submit(_process_chunk, self.tree, self.chunks[i], self.cfg.image,
                                                self.paths[i], fetched)))
                while len(decoding) > self.cfg.n_workers:
                    j, future = decoding.popleft()
                    self._stored(j, future.result(), progress)
            for j, future in decoding:
                self._stored(j, future.result(), progress)

    def _submit(self, fetcher: Fetcher, i: int) -> list[Future | None]:
        """Queue chunk ``i``'s remote media for fetching: a future per URL, None for a local item."""
        return [fetcher.submit(path) if is_remote(path) else None for path, _ in self.chunks[i]]

    def _stored(self, i: int, n: int, progress: Progress) -> None:
        """Chunk ``i`` (``n`` media) is on disk."""
        progress.update(n)

    def rows(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Result rows in task order."""
        for path in self.paths:
            yield from pq.read_table(path, columns=columns).to_pylist()

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def ingest(source: Source, out_dir: str | Path, policy: ConsentPolicy | None = None,
           cfg: IngestConfig | None = None) -> IngestSummary:
    """Ingest ``source`` into ``out_dir`` (manifest.json, shards/, catalog/). Resumable; see module doc."""
    start = time.monotonic()
    policy, cfg = policy or ConsentPolicy(), cfg or IngestConfig()
    cfg = replace(cfg, image=replace(cfg.image, blur_faces=cfg.image.blur_faces or policy.blur_faces))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_run()
    log.info("reading %s source %s", source.format, source.path)
    sc = scan(source, policy, load_tombstones(out_dir))
    log.info("%d records, %d eligible posts with %d media", len(sc.decisions) + len(sc.posts), len(sc.posts), len(sc.tasks))
    cache = ChunkCache(out_dir, source.tree, [(path, sha) for _, _, path, sha in sc.tasks], cfg)
    with Progress(len(sc.tasks), "ingest images", "img") as progress:
        cache.fill(progress)
    media = _media_rows(source.name, sc, cache)
    dup_rows = _dedup(media, cfg.near_duplicate_radius)
    shards = _write_shards(out_dir / "shards", sc, cache, media, cfg.samples_per_shard)
    decisions = sc.decisions + _post_decisions(source.name, sc, media)
    summary = _summarise(decisions, media, len(shards))
    _write_catalog(out_dir, sc, media, decisions, dup_rows)
    summary.version = _write_manifest(out_dir, source, policy, cfg, shards, decisions, summary)
    cache.clear()
    summary.seconds = time.monotonic() - start
    return summary


_META_COLUMNS = [c for c in _RESULT_SCHEMA.names if c != "jpeg"]


def _media_rows(source_name: str, sc: _Scan, cache: ChunkCache) -> list[dict[str, Any]]:
    rows = []
    for (post_i, m_index, path, _), result in zip(sc.tasks, cache.rows(_META_COLUMNS)):
        post = sc.posts[post_i]
        phash = result.pop("phash")
        rows.append({**result, "source": source_name, "post_id": post.post_id, "media_index": m_index,
                     "path": path, "phash": f"{phash:016x}" if phash is not None else None,
                     "alt_text": post.media[m_index].alt_text, "sample_key": None, "shard": None,
                     "_post": post_i, "_phash": phash})
        if result["reason"].startswith("optout_"):  # a site's refusal: keep the fact, not the URL or its alt text
            rows[-1].update(path=None, alt_text=None)
    return rows


def _dedup(media: list[dict[str, Any]], radius: int | None) -> list[dict[str, Any]]:
    """Mark duplicate media rejected in place; return the duplicates table rows."""
    ok = [i for i, m in enumerate(media) if m["status"] == "ok"]
    matches: dict[int, DupMatch] = find_duplicates([media[i]["sha256"] for i in ok],
                                                   [media[i]["_phash"] for i in ok], radius)
    rows = []
    for local, match in sorted(matches.items()):
        row, of = media[ok[local]], media[ok[match.of]]
        row.update(status="rejected", reason=f"{match.kind}_duplicate",
                   detail=f"{match.kind} duplicate of {of['source']}/{of['post_id']}#{of['media_index']} (distance {match.distance})")
        rows.append(dict(source=row["source"], post_id=row["post_id"], media_index=row["media_index"],
                         kind=match.kind, distance=match.distance, of_source=of["source"],
                         of_post_id=of["post_id"], of_media_index=of["media_index"]))
    return rows


def _sample_meta(post: Post, m: dict[str, Any]) -> dict[str, Any]:
    return {"post_id": post.post_id, "author_id": post.author_id, "source": post.source,
            "media_index": m["media_index"], "hashtags": list(post.hashtags), "caption": post.caption,
            "created_at": post.created_at, "license": post.license, "label": post.extra.get("label"),
            "width": m["width"], "height": m["height"], "phash": m["phash"], **_warnings(post)}


def _warnings(post: Post) -> dict[str, Any]:
    """A sensitive post's flag and content warning (kept only where a policy lets such posts in)."""
    return {"sensitive": True, "content_warning": post.content_warning} if post.sensitive or post.content_warning \
        else {}


def _write_shards(shard_dir: Path, sc: _Scan, cache: ChunkCache, media: list[dict[str, Any]],
                  per_shard: int) -> list[ShardInfo]:
    writer = ShardWriter(shard_dir, per_shard)
    for m, result in zip(media, cache.rows(["jpeg"])):
        if m["status"] != "ok":
            continue
        post = sc.posts[m["_post"]]
        m["sample_key"] = sample_key(post.source, post.post_id, m["media_index"])
        m["shard"] = writer.write(m["sample_key"], result["jpeg"], _sample_meta(post, m))
    shards = writer.close()
    keep = {s.name for s in shards}
    for path in shard_dir.iterdir():
        if path.name not in keep:
            path.unlink()
    return shards


def _post_decisions(source_name: str, sc: _Scan, media: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reasons: dict[int, list[str]] = {i: [] for i in range(len(sc.posts))}
    kept: set[int] = set()
    for m in media:
        (kept.add(m["_post"]) if m["status"] == "ok" else reasons[m["_post"]].append(m["reason"]))
    rows = []
    for i, post in enumerate(sc.posts):
        if i in kept:
            rows.append(_decision(post.key, source_name, post.post_id, post.author_id, "kept", "media"))
            continue
        why = reasons[i]
        reason = "duplicate_media" if all(r.endswith("_duplicate") for r in why) else _optout_reason(why)
        rows.append(_decision(post.key, source_name, post.post_id, post.author_id, "rejected", "media",
                              reason, ",".join(why)))
    return rows


def _optout_reason(why: list[str]) -> str:
    """A post whose every media item was opted out by its site carries the opt-out as its reason."""
    if not all(r.startswith("optout_") for r in why):
        return "no_usable_media"
    return why[0] if len(set(why)) == 1 else "media_opted_out"


def _summarise(decisions: list[dict[str, Any]], media: list[dict[str, Any]], n_shards: int) -> IngestSummary:
    kept_media = [m for m in media if m["status"] == "ok"]
    return IngestSummary(
        version="", posts_in=len(decisions), posts_kept=sum(d["status"] == "kept" for d in decisions),
        post_reasons=Counter(d["reason"] for d in decisions if d["status"] == "rejected"),
        media_in=len(media), media_kept=len(kept_media),
        media_reasons=Counter(m["reason"] for m in media if m["status"] != "ok"),
        gps_removed=sum(bool(m["had_gps"]) for m in kept_media),
        metadata_removed=sum(bool(m["had_metadata"]) for m in kept_media),
        faces_blurred=sum(m["faces_blurred"] or 0 for m in kept_media), shards=n_shards)


def _post_row(post: Post, n_media: int) -> dict[str, Any]:
    d = post.to_dict()
    d.pop("media")
    d["consent_ai_training"] = d.pop("consent")["ai_training"]
    return {**d, "label": post.extra.get("label"), "n_media": n_media}


def _write_catalog(out_dir: Path, sc: _Scan, media: list[dict[str, Any]], decisions: list[dict[str, Any]],
                   dup_rows: list[dict[str, Any]]) -> None:
    kept_counts = Counter(m["_post"] for m in media if m["status"] == "ok")
    kept = sorted(kept_counts)
    posts = [sc.posts[i] for i in kept]
    catalog.write_table(out_dir, "posts", [_post_row(sc.posts[i], kept_counts[i]) for i in kept])
    catalog.write_table(out_dir, "hashtags", [
        dict(source=p.source, post_id=p.post_id, position=j, tag=t, folded=fold_hashtag(t))
        for p in posts for j, t in enumerate(p.hashtags)])
    catalog.write_table(out_dir, "media", [{k: v for k, v in m.items() if not k.startswith("_")} for m in media])
    catalog.write_table(out_dir, "decisions", decisions)
    catalog.write_table(out_dir, "duplicates", dup_rows)


def _write_manifest(out_dir: Path, source: Source, policy: ConsentPolicy, cfg: IngestConfig,
                    shards: list[ShardInfo], decisions: list[dict[str, Any]], summary: IngestSummary) -> str:
    content = {"format_version": FORMAT_VERSION, "source": {"format": source.format, "name": source.name},
               "policy": policy.to_dict(), "config": cfg.content_dict(),
               "shards": [s.to_dict() for s in shards], "decisions": decisions}
    version = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    counts = {k: v for k, v in summary.to_dict().items() if k not in ("version", "seconds")}
    manifest = {"format": "tagsight-dataset", "version": version, "tagsight_version": __version__,
                **{k: v for k, v in content.items() if k != "decisions"}, "counts": counts,
                "catalog": {t: f"catalog/{t}.parquet" for t in catalog.TABLES}}
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return version


# --------------------------------------------------------------------------------------- dry run


@dataclass
class DryRunReport:
    """What ``ingest`` would find, without writing anything or decoding any image. Counts reconcile:
    posts in = eligible + refused (by reason); media of eligible posts = present + not usable (by reason)."""

    source: dict[str, str]
    posts_in: int = 0
    eligible: int = 0
    refused: Counter = field(default_factory=Counter)
    visibility: Counter = field(default_factory=Counter)
    media_in: int = 0
    media_present: int = 0
    media_remote: int = 0
    media_not_images: int = 0
    media_problems: Counter = field(default_factory=Counter)

    def reconciles(self) -> bool:
        return (self.posts_in == self.eligible + sum(self.refused.values())
                and self.media_in == self.media_present + sum(self.media_problems.values()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("refused", "visibility", "media_problems"):
            d[name] = dict(sorted(getattr(self, name).items()))
        return d

    def format(self) -> str:
        lines = ["dry run: nothing was written"]
        lines += [f"{key}: {value}" for key, value in self.source.items()]
        mix = ", ".join(f"{n} {v}" for v, n in sorted(self.visibility.items(), key=lambda kv: -kv[1])) or "none"
        lines.append(f"posts: {self.posts_in} found = {self.eligible} eligible + {sum(self.refused.values())} "
                     f"refused; visibility: {mix}")
        lines += [f"  refused {n:>6}  {reason}" for reason, n in self.refused.most_common()]
        lines.append(f"media of eligible posts: {self.media_in} = {self.media_present} present + "
                     f"{sum(self.media_problems.values())} not usable")
        lines += [f"  not usable {n:>6}  {reason}" for reason, n in self.media_problems.most_common()]
        if self.media_remote:
            lines.append(f"  of those present, {self.media_remote} are URLs, fetched (and checked against the "
                         "sites' opt-outs) only by a real run")
        if self.media_not_images:
            lines.append(f"  of those present, {self.media_not_images} are not images by their extension (videos?) "
                         "and will be rejected when decoded")
        lines.append("images are not decoded in a dry run: decoding and de-duplication may still reject present media")
        return "\n".join(lines)


class _Counted:
    """A source seen through ``scan``, counting the visibility of every post it yields."""

    def __init__(self, source: Source) -> None:
        self.source, self.name, self.visibility = source, source.name, Counter()

    def __iter__(self) -> Iterator[Any]:
        for item in self.source:
            if isinstance(item, Post):
                self.visibility[item.visibility] += 1
            yield item


def media_presence(tree: Tree, path: str, fetch: bool = False) -> str:
    """``"present"``, ``"remote"`` (a URL, when fetching is on) or the reason code ingest would give before
    decoding (no file is read, no URL fetched)."""
    if fetch and is_remote(path):
        return "remote"
    try:
        check_relative_path(path)
        if isinstance(tree, FolderTree):
            real = resolve_media_path(tree.root, path)
            return "present" if real.is_file() else "media_not_a_file" if real.exists() else "media_missing"
    except ImageRejected as exc:
        return exc.reason
    return "present" if tree.is_file(path) else "media_not_a_file" if tree.is_dir(path) else "media_missing"


def dry_run(source: Source, policy: ConsentPolicy | None = None, out_dir: str | Path | None = None,
            fetch: bool = False) -> DryRunReport:
    """Read ``source`` through the schema and consent gates and check its media exist; writes nothing.

    ``out_dir``, when it is an existing dataset, contributes its tombstones (as a real run would).
    ``fetch``: http(s) media count as present (``media_remote``) instead of ``remote_media_unsupported``;
    nothing is fetched.
    """
    policy = policy or ConsentPolicy()
    clear_path_cache()
    counted = _Counted(source)
    tombstones = load_tombstones(out_dir) if out_dir is not None else Tombstones()
    sc = scan(counted, policy, tombstones)  # type: ignore[arg-type]
    report = DryRunReport(source.describe(), posts_in=len(sc.decisions) + len(sc.posts), eligible=len(sc.posts),
                          refused=Counter(d["reason"] for d in sc.decisions), visibility=counted.visibility,
                          media_in=len(sc.tasks))
    for _, _, path, _ in sc.tasks:
        state = media_presence(source.tree, path, fetch)
        if state == "remote":
            report.media_present += 1
            report.media_remote += 1
            continue
        if state != "present":
            report.media_problems[state] += 1
            continue
        report.media_present += 1
        report.media_not_images += not is_image_name(path)
    return report
