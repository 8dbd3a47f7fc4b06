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


def stage_serve(cfg: DemoConfig, dataset: Path, run: Path, n_photos: int = 3) -> list[str]:
    """Calibrate the run into a bundle, start ``tagsight serve`` on a free port, ask it about held-out photos."""
    import base64
    import json
    import urllib.request

    from tagsight.apps import load_apps
    from tagsight.apps.calibration import calibrate_run
    from tagsight.data.index import SampleIndex
    from tagsight.serve.app import create_app
    from tagsight.serve.background import BackgroundServer

    calibration = calibrate_run(run)
    index = SampleIndex.build(dataset)
    held = [int(i) for i in index.holdout(0.25, cfg.seed).nonzero()[0][:n_photos]]
    lines = [f"== 5. the apps over HTTP (tagsight serve --bundle {run}): Platt-calibrated on held-out posts, "
             f"{calibration['summary']['alt_text_concepts']} concepts precise enough (>= 0.8) for alt text"]
    with BackgroundServer(create_app(load_apps(run))) as server:
        for i in held:
            body = json.dumps({"image": base64.b64encode(index.read_jpeg(i)).decode("ascii")}).encode()
            answers = {}
            for endpoint in ("alt-text", "hashtags"):
                request = urllib.request.Request(f"{server.url}/v1/{endpoint}", body,
                                                 {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers[endpoint] = json.loads(response.read())["result"]
            lines.append(f"  {index.post_keys[i]} (wrote {' '.join('#' + t for t in index.hashtags[i][:5])})")
            lines.append(f"    alt text: {_alt_text(answers['alt-text'])}")
            lines.append(f"    hashtags: {_hashtags(answers['hashtags'])}")
    return lines


def _alt_text(answer: dict) -> str:
    return answer["alt_text"]


def _hashtags(answer: dict) -> str:
    if answer["abstained"]:
        return f"none above the threshold {answer['threshold']} (abstained)"
    return ", ".join(f"{h['hashtag']} {h['probability']:.2f}" for h in answer["hashtags"][:5])


def run_demo(cfg: DemoConfig) -> list[str]:
    """Run every stage on a fresh synthetic feed; return the summary lines."""
    feed_dir, lines = stage_feed(cfg)
    dataset, more = stage_ingest(cfg, feed_dir)
    lines += more
    vocab, more = stage_vocab(cfg, dataset)
    lines += more
    if cfg.pretrain_samples:
        run, more = stage_pretrain(cfg, dataset, vocab)
        lines += more
        lines += stage_serve(cfg, dataset, run)
    lines.append(f"query the catalog: python3 -c \"import duckdb; duckdb.sql(\\\"select reason, count(*) "
                 f"from '{dataset}/catalog/decisions.parquet' group by all order by 2 desc\\\").show()\"")
    return lines
