"""The built-in demo: a synthetic social feed taken through every pipeline stage that exists.

Each stage is a library call with explicit arguments; ``run_demo`` strings them together and
returns the lines of a short human-readable summary. Later stages add themselves here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tagsight.data.index import SampleIndex

log = logging.getLogger(__name__)

DEMO_IMAGE_SIZE = 128
DEMO_RENDERED_UNSEEN = 120
# the cheap filters of configs/curate_default.yaml (the OCR and aesthetic filters take minutes on a laptop)
DEMO_CURATION = ("resolution", "exposure", "contrast", "colourfulness", "blur", "near_duplicates")


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    n_posts: int = 400
    seed: int = 0
    workers: int = 0
    pretrain_samples: int = 4096   # 0 skips pretraining
    calibration_posts: int = 600   # the second feed the apps are calibrated on

    def __post_init__(self) -> None:
        if self.n_posts < 20:
            raise ValueError(f"the demo needs at least 20 posts, got {self.n_posts}")
        if self.pretrain_samples and self.pretrain_samples < 256:
            raise ValueError(f"pretrain_samples must be 0 (skip) or >= 256, got {self.pretrain_samples}")
        if self.calibration_posts < 20:
            raise ValueError(f"the calibration feed needs at least 20 posts, got {self.calibration_posts}")


def stage_feed(cfg: DemoConfig) -> tuple[Path, list[str]]:
    from tagsight.datasets.synthetic import FeedConfig, generate_feed

    feed_dir = cfg.out_dir / "feed"
    # drawn at 128 px: the size the default curation chain asks of a photo's short side
    summary = generate_feed(feed_dir, FeedConfig(n_posts=cfg.n_posts, seed=cfg.seed, image_size=DEMO_IMAGE_SIZE))
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
    from tagsight.datasets.synthetic import CONCEPTS
    from tagsight.schema.catalog import iter_kept_hashtags, manifest_version
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


def stage_curate(cfg: DemoConfig, dataset: Path) -> list[str]:
    """The cheap automatic curation filters at their default settings (as configs/curate_default.yaml); the
    counts reconcile and some photos pass."""
    from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters

    chain = CurateConfig(tuple(FilterSpec(name) for name in DEMO_CURATION))
    info = run_filters(dataset, chain)
    rejected = sum(info["rejected"].values())
    if info["passed"] + rejected != info["samples"]:
        raise RuntimeError(f"curation counts do not reconcile: {info}")
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(info["rejected"].items(), key=lambda kv: -kv[1]))
    return [f"== 4. automatic curation ({', '.join(DEMO_CURATION)}; tagsight curate filter adds OCR and aesthetics)",
            f"photos: {info['samples']} in = {info['passed']} kept + {rejected} rejected ({why or 'none'})"]


def stage_pretrain(cfg: DemoConfig, dataset: Path, vocab: Path) -> tuple[Path, list[str]]:
    import os

    from tagsight.train.config import PretrainConfig
    from tagsight.train.distributed import DistEnv
    from tagsight.train.pretrain import pretrain

    run = cfg.out_dir / "run"
    workers = min(2, cfg.workers or os.cpu_count() or 1)
    # started from the packaged ImageNet EfficientNet-Lite0: from scratch, a minute of training gives a model too
    # weak for any concept to reach the alt-text precision target (docs/apps.md)
    pcfg = PretrainConfig.from_yaml(None, [
        "model.name=efficientnet_lite0", "model.init=efficientnet-lite0", "model.img_size=64",
        f"data.epoch_length={cfg.pretrain_samples // 4}", "data.batch_size=32", "data.holdout_fraction=0.25",
        f"data.workers={workers}", "loop.epochs=4", "loop.log_every=10", "optim.base_lr=0.1", f"seed={cfg.seed}"])
    result = pretrain(dataset, vocab, run, pcfg, DistEnv())
    t, u = result["trained"], result["untrained"]
    return run, [f"== 5. hashtag pretraining in {run} (EfficientNet-Lite0 from its ImageNet weights, 64 px, "
                 f"{pcfg.data.epoch_length * 4} samples, 1/k softmax, square-root resampling)",
                 f"held-out hashtag prediction on {t['n_samples']} photos of posts never trained on:",
                 f"  mAP {t['mAP']:.3f} (untrained {u['mAP']:.3f}), precision@1 {t['precision@1']:.3f} "
                 f"(untrained {u['precision@1']:.3f}), recall@5 {t['recall@5']:.3f} (untrained {u['recall@5']:.3f})"]


def write_verified(feed_dir: Path, vocab_path: Path, out: Path, source: str = "demo") -> Path:
    """The feed's ground truth as a verified-labels file (``tagsight.apps.verified``): what each post shows."""
    import json

    from tagsight.tags.vocab import Vocabulary

    labels = {label.label for label in Vocabulary.load(vocab_path).labels}
    rows = []
    for line in (feed_dir / "truth.jsonl").read_text().splitlines():
        truth = json.loads(line)
        shown = [s for s in truth["synsets"] if s in labels]
        rows.append({"post_key": f"{source}/{truth['post_id']}", "labels": shown})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _said_photos(run: Path, index: SampleIndex, rows: list[int], n: int) -> list[int]:
    """Up to ``n`` of ``rows`` whose alt text names a concept (asked of the bundle directly), a different first
    concept each where the photos allow."""
    import io

    from PIL import Image

    from tagsight.apps import load_apps

    app = load_apps(run)["alt-text"]
    found: dict[str, list[int]] = {}
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        answers = app.predict([Image.open(io.BytesIO(index.read_jpeg(i))) for i in chunk], count_people=False)
        for i, a in zip(chunk, answers):
            if a["concepts"]:
                found.setdefault(a["concepts"][0]["name"], []).append(i)
    by_concept = list(found.values())
    picked = [photos[0] for photos in by_concept][:n]
    rest = sorted(i for photos in by_concept for i in photos[1:])
    return sorted(picked + rest[: n - len(picked)])


def stage_calibration_set(cfg: DemoConfig, vocab: Path) -> tuple[Path, Path, list[str]]:
    """Photos kept back for calibration: a second drawn feed, ingested apart, with its ground truth as verified
    labels (the run's own held-out split is too small for a precision target to be measured on)."""
    from tagsight.datasets.synthetic import FeedConfig, generate_feed
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source
    from tagsight.privacy.policy import ConsentPolicy

    root = cfg.out_dir / "calibration"
    feed = FeedConfig(n_posts=cfg.calibration_posts, seed=cfg.seed + 1000, image_size=DEMO_IMAGE_SIZE, n_corrupt=0,
                      n_large=0, n_png=0, p_duplicate=0.0)
    generate_feed(root / "feed", feed)
    summary = ingest(open_source(root / "feed" / "posts.jsonl", "jsonl", name="demo-calibration"), root / "dataset",
                     ConsentPolicy(), IngestConfig(samples_per_shard=500, workers=cfg.workers,
                                                   image=ImageConfig(max_side=DEMO_IMAGE_SIZE)))
    verified = write_verified(root / "feed", vocab, root / "verified.jsonl", source="demo-calibration")
    return root / "dataset", verified, [f"calibration photos: a second feed of {cfg.calibration_posts} posts in "
                                        f"{root} ({summary.format().splitlines()[0]}), what each shows as verified "
                                        "labels"]


def stage_serve(cfg: DemoConfig, dataset: Path, vocab: Path, run: Path, n_photos: int = 3) -> list[str]:
    """Calibrate the run into a bundle (on the calibration feed, against its ground truth, with pictures of
    nothing), start ``tagsight serve`` on a free port, and ask it about the run's held-out photos."""
    import io

    from tagsight.apps.calibration import CalibrationConfig, calibrate_run
    from tagsight.data.index import SampleIndex
    from tagsight.datasets.synthetic import render_unseen

    cal_dataset, verified, lines = stage_calibration_set(cfg, vocab)
    cal_cfg = CalibrationConfig(verified=str(verified), heldout_dataset=str(cal_dataset), seed=cfg.seed,
                                rendered_unseen=DEMO_RENDERED_UNSEEN)
    calibration = calibrate_run(run, None, cal_cfg)
    index = SampleIndex.build(dataset)
    held = [int(i) for i in np.flatnonzero(index.holdout(0.25, cfg.seed))]
    said = _said_photos(run, index, held, n_photos)
    photos = [(index.post_keys[i], index.read_jpeg(i), index.hashtags[i]) for i in (said or held[:n_photos])]
    wallpaper = io.BytesIO()
    render_unseen("wallpaper", (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE), np.random.default_rng(cfg.seed)).save(wallpaper,
                                                                                                          "JPEG")
    photos.append(("a tiled wallpaper (shows nothing of the vocabulary)", wallpaper.getvalue(), []))
    s, guard = calibration["summary"], calibration.get("open_set") or {}
    check = guard.get("check", {})
    lines = [f"== 6. the apps over HTTP (tagsight serve {run})"] + lines + [
        f"alt text may name {s['alt_text_concepts']} of {s['labels']} concepts (precision >= {s['target_precision']} "
        f"against the ground truth; check half: {s['check_pooled_precision']} over {s['check_predictions']} "
        f"predictions); pictures of nothing given a concept: {_rate(check.get('unseen_with_a_concept'))}",
        f"  held-out photos the run never trained on ({len(held)}): the first {len(said)} it describes, then a "
        "picture of nothing:"]
    return lines + _ask_server(run, photos)


def _rate(r: dict[str, Any] | None) -> str:
    return "-" if not r else f"{r['passing']} of {r['photos']}"


def _ask_server(run: Path, photos: list[tuple[str, bytes, list[str]]]) -> list[str]:
    import base64
    import json
    import urllib.request

    from tagsight.apps import load_apps
    from tagsight.serve.app import create_app
    from tagsight.serve.background import BackgroundServer

    lines = []
    with BackgroundServer(create_app(load_apps(run))) as server:
        for name, jpeg, tags in photos:
            body = json.dumps({"image": base64.b64encode(jpeg).decode("ascii")}).encode()
            answers = {}
            for endpoint in ("alt-text", "hashtags"):
                request = urllib.request.Request(f"{server.url}/v1/{endpoint}", body,
                                                 {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers[endpoint] = json.loads(response.read())["result"]
            wrote = f" (wrote {' '.join('#' + t for t in tags[:5])})" if tags else ""
            lines.append(f"  {name}{wrote}")
            lines.append(f"    alt text: {_alt_text(answers['alt-text'])}")
            lines.append(f"    hashtags: {_hashtags(answers['hashtags'])}")
    return lines


def _alt_text(answer: dict[str, Any]) -> str:
    if answer["concepts"]:
        return str(answer["alt_text"])
    why, closest = answer["why"], answer["why"]["closest"]
    return (f"{answer['alt_text']} ({why['detail']}; closest: {closest['name']} {closest['probability']:.2f}"
            + (f", its threshold {closest['threshold']:.2f})" if closest["threshold"] is not None else ")"))


def _hashtags(answer: dict[str, Any]) -> str:
    if answer["abstained"]:
        why = "the photo looks like nothing the model knows" if answer.get("reason") == "unfamiliar" else \
            f"none above the threshold {answer['threshold']}"
        return f"{why} (abstained)"
    return ", ".join(f"{h['hashtag']} {h['probability']:.2f}" for h in answer["hashtags"][:5])


def run_demo(cfg: DemoConfig) -> list[str]:
    """Run every stage on a fresh synthetic feed; return the summary lines."""
    feed_dir, lines = stage_feed(cfg)
    dataset, more = stage_ingest(cfg, feed_dir)
    lines += more
    vocab, more = stage_vocab(cfg, dataset)
    lines += more
    lines += stage_curate(cfg, dataset)
    if cfg.pretrain_samples:
        run, more = stage_pretrain(cfg, dataset, vocab)
        lines += more
        lines += stage_serve(cfg, dataset, vocab, run)
    lines.append(f"query the catalog: python3 -c \"import duckdb; duckdb.sql(\\\"select reason, count(*) "
                 f"from '{dataset}/catalog/decisions.parquet' group by all order by 2 desc\\\").show()\"")
    return lines
