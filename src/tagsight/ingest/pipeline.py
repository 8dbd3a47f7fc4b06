"""The ingest run: source -> consent gate -> sanitised images -> de-duplication -> shards + catalog + manifest.

Resumable and idempotent. Image work is cut into fixed blocks of media tasks run by an engine
(``tagsight.engines``: the local process pool or Ray) through one per-block function
(``tagsight.ingest.blocks``), whose results are cached under ``DATASET_DIR/.work/``. A run killed at
any point and started again reuses the finished blocks, runs the rest, and then this process alone
rewrites shards, catalog and manifest in block order, deterministically, so the dataset version is
the same as for an uninterrupted run, whichever engine and however many workers.

With ``IngestConfig.fetch`` set, http(s) media are fetched (``tagsight.ingest.fetch``: per-host
limits, the sites' opt-outs) and results keep source order, so the version does not depend on
which answer came first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator, Protocol

from tagsight import __version__
from tagsight.fsio import atomic_write_bytes
from tagsight.engines import Engine, EngineConfig, create_engine
from tagsight.schema import catalog
from tagsight.ingest.blocks import FORMAT_VERSION, RESULT_SCHEMA, ChunkCache
from tagsight.ingest.dedup import DupMatch, find_duplicates
from tagsight.ingest.fetch import FetchConfig, is_remote
from tagsight.ingest.images import (ImageConfig, ImageRejected, check_relative_path, clear_path_cache,
                                   resolve_media_path, start_run)
from tagsight.schema.posts import Post
from tagsight.ingest.shards import ShardInfo, ShardWriter, sample_key
from tagsight.ingest.sources import Item, Rejected, Source
from tagsight.ingest.sources.folder import is_image_name
from tagsight.ingest.summary import IngestSummary, summarise
from tagsight.schema.text import fold_hashtag
from tagsight.ingest.tree import FolderTree, Tree
from tagsight.privacy.policy import ConsentPolicy, decide
from tagsight.privacy.tombstones import Tombstones, load_tombstones
from tagsight.progress import Progress

__all__ = ["ChunkCache", "DryRunReport", "FORMAT_VERSION", "IngestConfig", "IngestSummary", "Records", "dry_run", "ingest",
           "media_presence", "scan"]

log = logging.getLogger(__name__)


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


class Records(Protocol):
    """What ``scan`` reads: a named iterable of posts and rejected records (a ``Source``, or a view of one)."""

    name: str

    def __iter__(self) -> Iterator[Item]: ...


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


def scan(source: Records, policy: ConsentPolicy, tombstones: Tombstones = Tombstones()) -> _Scan:
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


def ingest(source: Source, out_dir: str | Path, policy: ConsentPolicy | None = None,
           cfg: IngestConfig | None = None, engine: Engine | None = None) -> IngestSummary:
    """Ingest ``source`` into ``out_dir`` (manifest.json, shards/, catalog/). Resumable; see module doc.

    ``engine`` runs the image blocks (default: the local process pool with ``cfg.workers``); the
    caller keeps ownership of an engine it passes.
    """
    start = time.monotonic()
    policy, cfg = policy or ConsentPolicy(), cfg or IngestConfig()
    cfg = replace(cfg, image=replace(cfg.image, blur_faces=cfg.image.blur_faces or policy.blur_faces))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_run()
    log.info("reading %s source %s", source.format, source.path)
    sc = scan(source, policy, load_tombstones(out_dir))
    log.info("%d records, %d eligible posts with %d media", len(sc.decisions) + len(sc.posts), len(sc.posts), len(sc.tasks))
    cache = ChunkCache(out_dir, source.tree, [(path, sha) for _, _, path, sha in sc.tasks], cfg.chunk_size,
                       cfg.image, cfg.fetch)
    with Progress(len(sc.tasks), "ingest images", "img") as progress:
        if engine is not None:
            cache.fill(engine, progress)
        else:
            with create_engine(EngineConfig(workers=cfg.workers)) as local:
                cache.fill(local, progress)
    media = _media_rows(source.name, sc, cache)
    dup_rows = _dedup(media, cfg.near_duplicate_radius)
    shards = _write_shards(out_dir / "shards", sc, cache, media, cfg.samples_per_shard)
    decisions = sc.decisions + _post_decisions(source.name, sc, media)
    summary = summarise(decisions, media, len(shards))
    _write_catalog(out_dir, sc, media, decisions, dup_rows)
    summary.version = _write_manifest(out_dir, source, policy, cfg, shards, decisions, summary)
    cache.clear()
    summary.seconds = time.monotonic() - start
    return summary


_META_COLUMNS = [c for c in RESULT_SCHEMA.names if c != "jpeg"]


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


_POST_COLUMNS = tuple(f.name for f in fields(Post) if f.name not in ("media", "extra", "hashtags"))


def _post_row(post: Post, n_media: int) -> dict[str, Any]:
    """The catalog row of a post: its fields but media and extra (``Post.to_dict`` without its deep copies)."""
    row = {name: getattr(post, name) for name in _POST_COLUMNS}
    return {**row, "hashtags": list(post.hashtags), "label": post.extra.get("label"), "n_media": n_media}


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
    refused: Counter[str] = field(default_factory=Counter)
    visibility: Counter[str] = field(default_factory=Counter)
    media_in: int = 0
    media_present: int = 0
    media_remote: int = 0
    media_not_images: int = 0
    media_problems: Counter[str] = field(default_factory=Counter)

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
        self.source, self.name = source, source.name
        self.visibility: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Item]:
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
    sc = scan(counted, policy, tombstones)
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
