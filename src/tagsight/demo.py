"""The built-in demo: a synthetic social feed taken through every pipeline stage that exists.

Each stage is a library call with explicit arguments; ``run_demo`` strings them together and
returns the lines of a short human-readable summary. Later stages add themselves here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    n_posts: int = 400
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        if self.n_posts < 20:
            raise ValueError(f"the demo needs at least 20 posts, got {self.n_posts}")


def stage_feed(cfg: DemoConfig) -> tuple[Path, list[str]]:
    from tagsight.data.synthetic import FeedConfig, generate_feed

    feed_dir = cfg.out_dir / "feed"
    summary = generate_feed(feed_dir, FeedConfig(n_posts=cfg.n_posts, seed=cfg.seed))
    s = summary
    return feed_dir, [f"== 1. synthetic feed in {feed_dir}",
                      f"{s.n_posts} posts by {s.n_authors} authors ({s.n_opted_out_authors} opted out), "
                      f"{s.n_images} photos ({s.n_gps} with GPS EXIF, {s.n_exact_duplicates + s.n_near_duplicates} "
                      f"reposts, {s.n_corrupt} corrupt), {s.n_tags} hashtags: {s.tag_kinds}"]


def stage_ingest(cfg: DemoConfig, feed_dir: Path) -> tuple[Path, list[str]]:
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source
    from tagsight.privacy.policy import ConsentPolicy

    dataset = cfg.out_dir / "dataset"
    policy = ConsentPolicy(optout_files=(str(feed_dir / "optout.txt"),))
    ingest_cfg = IngestConfig(samples_per_shard=200, workers=cfg.workers, image=ImageConfig(max_side=128))
    summary = ingest(open_source(feed_dir / "posts.jsonl", "jsonl", name="demo"), dataset, policy, ingest_cfg)
    return dataset, [f"== 2. ingest into {dataset} (public posts only, consent and opt-outs honoured)",
                     summary.format()]


def stage_vocab(cfg: DemoConfig, dataset: Path) -> tuple[Path, list[str]]:
    from tagsight.data.synthetic import CONCEPTS
    from tagsight.ingest.catalog import iter_kept_hashtags, manifest_version
    from tagsight.report.vocab import write_vocab_report
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import build_vocab, format_vocab

    identity = {"kind": "dataset", "manifest_version": manifest_version(dataset)}
    vocab = build_vocab(iter_kept_hashtags(dataset), VocabConfig(min_count=3), source=identity)
    out = cfg.out_dir / "vocab"
    vocab.save(out)
    report = write_vocab_report(vocab, out / "report.html")
    found = sorted(set(CONCEPTS.values()) & {label.label for label in vocab.labels})
    return out / "vocab.json", [f"== 3. vocabulary from the kept posts' hashtags in {out} (report: {report})",
                                format_vocab(vocab, top=10),
                                f"true concepts among the labels: {len(found)} of {len(CONCEPTS)}"]


def run_demo(cfg: DemoConfig) -> list[str]:
    """Run every stage on a fresh synthetic feed; return the summary lines."""
    feed_dir, lines = stage_feed(cfg)
    dataset, more = stage_ingest(cfg, feed_dir)
    lines += more
    _, more = stage_vocab(cfg, dataset)
    lines += more
    lines.append(f"query the catalog: python3 -c \"import duckdb; duckdb.sql(\\\"select reason, count(*) "
                 f"from '{dataset}/catalog/decisions.parquet' group by all order by 2 desc\\\").show()\"")
    return lines
