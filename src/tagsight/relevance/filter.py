"""A new dataset version from a scores folder: the hashtags the pictures show, or weights for all of them.

Policies (``FilterConfig.policy``), applied per (post, label) — a post's score for a label is the
highest over its media, so a hashtag stays when any of the post's images shows it:

* ``pairs``: drop a pair (every hashtag of the post that maps to that label) whose out-of-fold
  score is below ``threshold``;
* ``labels``: drop every pair of a label whose visualness (out-of-fold AP above chance) is below
  ``threshold``;
* ``weights``: keep everything and store per-hashtag weights (the pair score, at least
  ``min_weight``) in each sample's JSON as ``hashtag_weights``, aligned with ``hashtags``; the
  training stream then uses targets proportional to the weights instead of 1/k.

Hashtags that map to no label are not scored and are kept. A post whose labelled hashtags are all
dropped is dropped (``all_labels_dropped``) unless ``keep_empty``; posts the parent's tombstones
forget are dropped (``forgotten``) and the tombstones are carried over. The parent is never
modified: new shards, a catalog with the changed hashtags and a manifest whose ``parent`` names
the parent's path and version; every count reconciles (in = kept + dropped, by reason).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagsight import __version__
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.schema import catalog
from tagsight.ingest.shards import ShardWriter
from tagsight.privacy.tombstones import Tombstones, load_tombstones, tombstone_path
from tagsight.progress import Progress
from tagsight.relevance.score import load_labels, load_pairs, load_scores_meta
from tagsight.storage import local_folder, location

log = logging.getLogger(__name__)

POLICIES = ("pairs", "labels", "weights")
WEIGHTS_FIELD = "hashtag_weights"


@dataclass(frozen=True)
class FilterConfig:
    policy: str
    threshold: float | None = None
    min_weight: float = 0.01
    keep_empty: bool = False

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ReasonError("unknown_policy", f"policy {self.policy!r} is not one of {POLICIES}")
        if self.policy != "weights" and self.threshold is None:
            raise ReasonError("missing_threshold", f"policy {self.policy!r} needs a threshold")
        if self.policy == "weights" and self.threshold is not None:
            raise ReasonError("unused_threshold", "the weights policy drops nothing: use --min-weight, not --threshold")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ReasonError("bad_threshold", f"threshold must be in [0, 1] (a probability or an AP), "
                                               f"got {self.threshold}")
        if not 0.0 < self.min_weight <= 1.0:
            raise ReasonError("bad_min_weight", f"min_weight must be in (0, 1], got {self.min_weight}")


@dataclass
class Decisions:
    """Per post: kept hashtags (with weights) or the reason it was dropped; counts by reason."""

    hashtags: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, list[float]] = field(default_factory=dict)
    dropped_posts: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


def post_label_scores(pairs: pa.Table) -> dict[str, dict[int, tuple[float, list[str]]]]:
    """post key -> label -> (highest score over the post's media, the hashtags mapping to the label)."""
    cols = pairs.select(["post_key", "label", "score", "hashtags"]).to_pydict()
    out: dict[str, dict[int, tuple[float, list[str]]]] = defaultdict(dict)
    for post, label, score, tags in zip(cols["post_key"], cols["label"], cols["score"], cols["hashtags"]):
        previous = out[post].get(label)
        if previous is None or score > previous[0]:
            out[post][label] = (float(score), sorted(set(tags) | set(previous[1] if previous else [])))
    return out


def pair_drop_reason(cfg: FilterConfig, score: float, visualness: float | None) -> str | None:
    """Why a pair is dropped under ``cfg``, or None when it is kept."""
    threshold = cfg.threshold
    if threshold is None:   # the weights policy drops nothing (FilterConfig gives every other policy a threshold)
        return None
    if cfg.policy == "pairs" and score < threshold:
        return "pair_below_threshold"
    if cfg.policy == "labels" and (visualness is None or visualness < threshold):
        return "label_below_visualness"
    return None


def decide(posts: dict[str, list[str]], scores: dict[str, dict[int, tuple[float, list[str]]]],
           visualness: dict[int, float | None], cfg: FilterConfig, forgotten: set[str]) -> Decisions:
    """The filter's decision for every post of the parent (``posts``: post key -> hashtags as written)."""
    d = Decisions()
    pair_reasons: Counter[str] = Counter()
    post_reasons: Counter[str] = Counter()
    tag_reasons: Counter[str] = Counter()
    pairs_in = tags_in = unscored = 0
    for post, tags in posts.items():
        labels = scores.get(post, {})
        pairs_in += len(labels)
        tags_in += len(tags)
        if post in forgotten:
            post_reasons["forgotten"] += 1
            d.dropped_posts[post] = "forgotten"
            pair_reasons["forgotten"] += len(labels)
            tag_reasons["forgotten"] += len(tags)
            continue
        drop_tags, weight_of = {}, {}
        for label, (score, label_tags) in labels.items():
            reason = pair_drop_reason(cfg, score, visualness.get(label))
            pair_reasons[reason or "kept"] += 1
            for tag in label_tags:
                weight_of[tag] = max(score, cfg.min_weight)
                if reason:
                    drop_tags[tag] = reason
        labelled = [t for t in tags if t in weight_of]
        unscored += len(tags) - len(labelled)
        kept = [t for t in tags if t not in drop_tags]
        if labelled and all(t in drop_tags for t in labelled) and not cfg.keep_empty:
            post_reasons["all_labels_dropped"] += 1
            d.dropped_posts[post] = "all_labels_dropped"
            tag_reasons.update(drop_tags.get(t, "post_dropped") for t in tags)
            continue
        tag_reasons.update(drop_tags[t] for t in tags if t in drop_tags)
        d.hashtags[post] = kept
        d.weights[post] = [weight_of.get(t, 1.0) for t in kept]
    kept_pairs = pair_reasons.pop("kept", 0)
    d.counts = {
        "posts_in": len(posts), "posts_kept": len(d.hashtags), "posts_dropped": len(d.dropped_posts),
        "post_reasons": dict(post_reasons),
        "pairs_in": pairs_in, "pairs_kept": kept_pairs, "pairs_dropped": sum(pair_reasons.values()),
        "pair_reasons": dict(pair_reasons),
        "hashtags_in": tags_in, "hashtags_kept": sum(map(len, d.hashtags.values())),
        "hashtags_dropped": sum(tag_reasons.values()), "hashtag_reasons": dict(tag_reasons),
        "hashtags_unscored": unscored,
    }
    _check_counts(d.counts)
    return d


def _check_counts(c: dict[str, Any]) -> None:
    for unit in ("posts", "pairs", "hashtags"):
        if c[f"{unit}_in"] != c[f"{unit}_kept"] + c[f"{unit}_dropped"]:
            raise AssertionError(f"{unit} do not reconcile: {c}")


def filter_dataset(scores_dir: str | Path, out_dir: str | Path, cfg: FilterConfig,
                   dataset_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the filtered dataset version into ``out_dir`` (new, or empty); returns its manifest."""
    meta = load_scores_meta(scores_dir)
    parent = Path(dataset_dir) if dataset_dir else local_folder(meta["dataset"]["path"], marker="manifest.json")
    parent_manifest = catalog.load_manifest(parent)
    if parent_manifest["version"] != meta["dataset"]["version"]:
        raise ReasonError("dataset_changed", f"{parent} is version {parent_manifest['version']}, the scores were "
                                             f"made for {meta['dataset']['version']}: score it again")
    out = Path(out_dir)
    finished = _finished(out, parent, parent_manifest["version"], meta["version"], cfg)
    if finished is not None:
        log.info("%s already holds this filtered version %s: kept as it is", out, finished["version"])
        return finished
    _check_out(out, parent)
    posts = {key: tags for key, tags in catalog.iter_kept_hashtags(parent)}
    labels = {row["index"]: row["visualness"] for row in load_labels(scores_dir)}
    tombstones = load_tombstones(parent)
    forgotten = _forgotten(parent, tombstones) if tombstones else set()
    decisions = decide(posts, post_label_scores(load_pairs(scores_dir)), labels, cfg, forgotten)
    if not decisions.hashtags:
        reasons = Counter(decisions.dropped_posts.values())
        raise ReasonError("empty_result", f"no post of {parent} is kept under {cfg.policy} at threshold "
                                          f"{cfg.threshold} ({', '.join(f'{r}: {n}' for r, n in reasons.items())}"
                                          " posts dropped); lower the threshold or use --keep-empty")
    shards, sample_shards = _write_shards(parent, out, decisions, cfg, parent_manifest)
    _write_catalog(parent, out, decisions, sample_shards)
    if tombstone_path(parent).is_file():
        shutil.copyfile(tombstone_path(parent), tombstone_path(out))
    return _write_manifest(out, parent, parent_manifest, meta, cfg, decisions, shards)


def _finished(out: Path, parent: Path, parent_version: str, scores_version: str,
              cfg: FilterConfig) -> dict[str, Any] | None:
    """The manifest of a filtered version ``out`` already holds, complete, from the same parent version, scores and
    settings, with the parent's tombstones as they are now (the rerun of a command whose publish to a URL was cut
    off); None otherwise. A tombstone added since means the version must be made again, so it is not reused."""
    path = out / "manifest.json"
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    relevance = manifest.get("relevance", {})
    same = (manifest.get("parent", {}).get("version") == parent_version and relevance.get("filter") == asdict(cfg)
            and relevance.get("scores", {}).get("version") == scores_version
            and _file_bytes(tombstone_path(out)) == _file_bytes(tombstone_path(parent)))
    return manifest if same else None


def _file_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _check_out(out: Path, parent: Path) -> None:
    if out.resolve() == parent.resolve():
        raise ReasonError("out_is_parent", f"--out {out} is the parent dataset: a filter writes a new version")
    if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):   # a staging folder's own state aside
        raise ReasonError("out_exists", f"{out} exists and is not empty: choose a new folder")


def _forgotten(parent: Path, tombstones: Tombstones) -> set[str]:
    table = catalog.read_table(parent, "posts", ["source", "post_id", "author_id", "hashtags"]).to_pydict()
    return {f"{s}/{p}" for s, p, a, h in zip(table["source"], table["post_id"], table["author_id"],
                                             table["hashtags"]) if tombstones.forgets(f"{s}/{p}", a, h or [])}


def _write_shards(parent: Path, out: Path, d: Decisions, cfg: FilterConfig,
                  manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    index = SampleIndex.build(parent)
    per_shard = int(manifest.get("config", {}).get("samples_per_shard", 1000))
    writer, sample_shards = ShardWriter(out / "shards", per_shard), {}
    with Progress(len(index), "writing filtered shards", unit="sample", logger=log) as progress:
        for i in range(len(index)):
            post = index.post_keys[i]
            progress.update()
            if post not in d.hashtags:
                continue
            sample = index.read_meta(i)
            sample["hashtags"] = d.hashtags[post]
            if cfg.policy == "weights":
                sample[WEIGHTS_FIELD] = [round(w, 6) for w in d.weights[post]]
            sample_shards[index.keys[i]] = writer.write(index.keys[i], index.read_jpeg(i), sample)
    index.close()
    return [s.to_dict() for s in writer.close()], sample_shards


def _write_catalog(parent: Path, out: Path, d: Decisions, sample_shards: dict[str, str]) -> None:
    def key(row: dict[str, Any]) -> str:
        return f"{row['source']}/{row['post_id']}"

    posts = [dict(r, hashtags=d.hashtags[key(r)]) for r in _rows(parent, "posts") if key(r) in d.hashtags]
    catalog.write_table(out, "posts", posts)
    tags = [r for r in _rows(parent, "hashtags") if key(r) in d.hashtags and r["tag"] in d.hashtags[key(r)]]
    catalog.write_table(out, "hashtags", tags)
    media = [_media_row(r, d, sample_shards, key(r)) for r in _rows(parent, "media")]
    catalog.write_table(out, "media", media)
    decisions = [_decision_row(r, d, key(r)) for r in _rows(parent, "decisions")]
    catalog.write_table(out, "decisions", decisions)
    catalog.write_table(out, "duplicates", _rows(parent, "duplicates"))


def _rows(parent: Path, table: str) -> list[dict[str, Any]]:
    return catalog.read_table(parent, table).to_pylist()


def _media_row(row: dict[str, Any], d: Decisions, sample_shards: dict[str, str], post: str) -> dict[str, Any]:
    if post in d.dropped_posts and row["status"] == "ok":
        return dict(row, status="rejected", reason=d.dropped_posts[post], detail="relevance filter", shard=None)
    if row.get("sample_key") in sample_shards:
        return dict(row, shard=sample_shards[row["sample_key"]])
    return row


def _decision_row(row: dict[str, Any], d: Decisions, post: str) -> dict[str, Any]:
    if row["status"] == "kept" and post in d.dropped_posts:
        return dict(row, status="rejected", stage="relevance", reason=d.dropped_posts[post])
    return row


def _write_manifest(out: Path, parent: Path, parent_manifest: dict[str, Any], meta: dict[str, Any],
                    cfg: FilterConfig, d: Decisions, shards: list[dict[str, Any]]) -> dict[str, Any]:
    relevance = {"filter": asdict(cfg), "scores": {"version": meta["version"], "config": meta["config"],
                                                   "vocab": meta["vocab"]}}
    content = {"parent": parent_manifest["version"], "relevance": relevance,
               "shards": [s["sha256"] for s in shards]}
    version = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    counts = {**d.counts, "media_kept": sum(s["samples"] for s in shards), "shards": len(shards)}
    manifest = {"format": "tagsight-dataset", "format_version": parent_manifest.get("format_version", 1),
                "version": version, "tagsight_version": __version__,
                "parent": {"path": location(parent), "version": parent_manifest["version"]},
                "relevance": relevance, "counts": counts, "catalog": parent_manifest.get("catalog", {}),
                "config": parent_manifest.get("config", {}), "policy": parent_manifest.get("policy", {}),
                "source": {"format": "relevance-filter", "name": parent_manifest.get("source", {}).get("name", "")},
                "shards": shards}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info("dataset %s (parent %s): %d of %d posts kept, %d of %d pairs", version, parent_manifest["version"],
             counts["posts_kept"], counts["posts_in"], counts["pairs_kept"], counts["pairs_in"])
    return manifest
