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
    pretrain_samples: int = 4096   # 0 skips pretraining

    def __post_init__(self) -> None:
        if self.n_posts < 20:
            raise ValueError(f"the demo needs at least 20 posts, got {self.n_posts}")
        if self.pretrain_samples and self.pretrain_samples < 256:
            raise ValueError(f"pretrain_samples must be 0 (skip) or >= 256, got {self.pretrain_samples}")


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


def stage_pretrain(cfg: DemoConfig, dataset: Path, vocab: Path) -> tuple[Path, list[str]]:
    import os

    from tagsight.train.config import PretrainConfig
    from tagsight.train.distributed import DistEnv
    from tagsight.train.pretrain import pretrain

    run = cfg.out_dir / "run"
    workers = min(2, cfg.workers or os.cpu_count() or 1)
    pcfg = PretrainConfig.from_yaml(None, [
        "model.name=resnet18", "model.img_size=64", f"data.epoch_length={cfg.pretrain_samples // 4}",
        "data.batch_size=32", "data.holdout_fraction=0.25", f"data.workers={workers}", "loop.epochs=4",
        "loop.log_every=10", "optim.base_lr=0.4", f"seed={cfg.seed}"])
    result = pretrain(dataset, vocab, run, pcfg, DistEnv())
    t, u = result["trained"], result["untrained"]
    return run, [f"== 4. hashtag pretraining in {run} (resnet18, 64 px, {pcfg.data.epoch_length * 4} samples, "
                 "1/k softmax, square-root resampling)",
                 f"held-out hashtag prediction on {t['n_samples']} photos of posts never trained on:",
                 f"  mAP {t['mAP']:.3f} (untrained {u['mAP']:.3f}), precision@1 {t['precision@1']:.3f} "
                 f"(untrained {u['precision@1']:.3f}), recall@5 {t['recall@5']:.3f} (untrained {u['recall@5']:.3f})"]


def run_demo(cfg: DemoConfig) -> list[str]:
    """Run every stage on a fresh synthetic feed; return the summary lines."""
    feed_dir, lines = stage_feed(cfg)
    dataset, more = stage_ingest(cfg, feed_dir)
    lines += more
    vocab, more = stage_vocab(cfg, dataset)
    lines += more
    if cfg.pretrain_samples:
        _, more = stage_pretrain(cfg, dataset, vocab)
        lines += more
    lines.append(f"query the catalog: python3 -c \"import duckdb; duckdb.sql(\\\"select reason, count(*) "
                 f"from '{dataset}/catalog/decisions.parquet' group by all order by 2 desc\\\").show()\"")
    return lines
