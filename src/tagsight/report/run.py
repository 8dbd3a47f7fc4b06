"""The report of one or more runs: one self-contained HTML page (``tagsight report RUN_DIR ... --out FILE``).

Sections are two small registries, so other stages plug in without touching this file:

* ``SUMMARY_SECTIONS``: ``fn(report, run_dirs)`` over all runs (the transfer table);
* ``REPORT_SECTIONS``: ``fn(report, run_dir)`` per run, in registration order (warnings, lineage,
  training curves, hashtag metrics, per-class accuracy and confusion of every transfer result,
  sample predictions).

Every section function adds itself only when its inputs exist in the run folder (``metrics.jsonl``,
``eval.json``, ``transfer/*.json`` or ``finetune.json``, checkpoints plus the lineage's dataset and
vocabulary), so any run folder, complete or not, gives a valid page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tagsight.registry import Registry
from tagsight.storage import dataset_path, exists, join, location
from tagsight.report.html import Report
from tagsight.report.plots import bar_chart, grouped_bars, heatmap, image_grid, small_multiples

log = logging.getLogger(__name__)

RunSection = Callable[[Report, Path], None]
SummarySection = Callable[[Report, Sequence[Path]], None]
REPORT_SECTIONS: Registry[None] = Registry("report section")
SUMMARY_SECTIONS: Registry[None] = Registry("report summary section")

HASHTAG_METRICS = ("mAP", "precision@1", "precision@5", "recall@5")
CURVE_FIRST = ("loss", "lr", "samples_per_s")
AP_BARS = 15
SAMPLES = 12


def run_report(run_dirs: Sequence[str | Path], title: str = "tagsight report") -> Report:
    """A Report with the summary sections, then every run's sections."""
    runs = [Path(r) for r in run_dirs]
    missing = [str(r) for r in runs if not r.is_dir()]
    if missing:
        from tagsight.fsio import ReasonError

        raise ReasonError("missing_run", f"not a folder: {', '.join(missing)}")
    report = Report(title, " · ".join(run_name(r) for r in runs))
    for _, section in SUMMARY_SECTIONS.items():
        section(report, runs)
    for run in runs:
        for _, section in REPORT_SECTIONS.items():
            section(report, run)
    return report


def write_run_report(run_dirs: Sequence[str | Path], out: str | Path, title: str = "tagsight report") -> str | Path:
    return run_report(run_dirs, title).write(out)


# ----------------------------------------------------------------------------------------- inputs


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` (empty when absent)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def transfer_results(run_dir: Path) -> list[dict[str, Any]]:
    """Every transfer result of a run: ``transfer/*.json`` and a fine-tuning run's ``finetune.json``."""
    paths = sorted((run_dir / "transfer").glob("*.json")) + [run_dir / "finetune.json"]
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def run_name(run_dir: Path) -> str:
    """A run's name as people know it: its folder's, or for a copy of a run on object storage the URL's last part."""
    return location(run_dir).rstrip("/").rsplit("/", 1)[-1]


def _title(run_dir: Path, name: str) -> str:
    return f"{run_name(run_dir)}: {name}"


# ----------------------------------------------------------------------------------------- summary


@SUMMARY_SECTIONS.register("transfer_table")
def transfer_table(report: Report, run_dirs: Sequence[Path]) -> None:
    """Top-1 / top-5 of every transfer result of every run, with the decontamination counts."""
    rows = []
    for run in run_dirs:
        for r in transfer_results(run):
            d = r.get("decontamination", {})
            removed = (f"{d['train']['removed']} / {d['val']['removed']}" if d.get("enabled") else "off")
            rows.append([run_name(run), r["method"], r["dataset_id"], r["model"], r["backbone"],
                         f"{r['train']['count']} / {r['val']['count']}", removed,
                         round(100 * r["metrics"]["top1"], 2), round(100 * r["metrics"]["top5"], 2)])
    if rows:
        report.section("Transfer", "Top-1 / top-5 accuracy (%) on the val split; images found in the pretraining "
                                   "pool were removed first (train / val counts).").table(
            ["run", "method", "dataset", "model", "backbone", "train / val", "removed", "top-1", "top-5"], rows)


# ----------------------------------------------------------------------------------------- per run


@REPORT_SECTIONS.register("warnings")
def warnings_section(report: Report, run_dir: Path) -> None:
    """A visible warning when the run's evaluation flags a representation collapse."""
    collapse = (read_json(run_dir / "eval.json") or {}).get("collapse")
    if not isinstance(collapse, dict):
        return
    section = report.section(_title(run_dir, "Collapse check"))
    if collapse.get("collapsed"):
        section.warning(f"Representation collapse: {collapse.get('reason', 'no reason given')}")
    else:
        section.paragraph(f"No collapse detected: {collapse.get('reason', '')}")


@REPORT_SECTIONS.register("lineage")
def lineage_section(report: Report, run_dir: Path) -> None:
    info = read_json(run_dir / "run.json")
    if not info:
        return
    flat = {}
    for key, value in info.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
        elif not isinstance(value, list):
            flat[key] = value
    report.section(_title(run_dir, "Run"), location(run_dir)).key_values(flat)


@REPORT_SECTIONS.register("training_curves")
def training_curves(report: Report, run_dir: Path) -> None:
    """Every numeric key of metrics.jsonl against the step (loss, lr, samples/s first)."""
    rows = read_metrics(run_dir)
    if not rows:
        return
    keys = [k for k in dict.fromkeys(k for r in rows for k in r)
            if k not in ("step", "epoch") and all(isinstance(r.get(k), (int, float)) for r in rows if k in r)]
    keys = [k for k in CURVE_FIRST if k in keys] + [k for k in keys if k not in CURVE_FIRST]
    series = {k: ([r["step"] for r in rows if k in r], [r[k] for r in rows if k in r]) for k in keys}
    report.section(_title(run_dir, "Training curves"), f"{len(rows)} logged rows of metrics.jsonl, "
                                                       f"last step {rows[-1]['step']}.").figure(
        small_multiples(series, "training metrics"), "Every numeric value the training loop logged, per step.")


@REPORT_SECTIONS.register("hashtag_metrics")
def hashtag_metrics_section(report: Report, run_dir: Path) -> None:
    """Held-out hashtag mAP, P@1, P@5, R@5 of the trained vs the untrained model; per-label AP extremes."""
    ev = read_json(run_dir / "eval.json")
    if not ev or "trained" not in ev:
        return
    models = [m for m in ("trained", "untrained") if m in ev]
    section = report.section(_title(run_dir, "Held-out hashtag prediction"),
                             f"{ev['trained'].get('n_samples', '?')} held-out posts, "
                             f"{ev['trained'].get('n_labels_scored', '?')} labels with a positive.")
    section.table(["model", *HASHTAG_METRICS], [[m, *[ev[m].get(k) for k in HASHTAG_METRICS]] for m in models])
    section.figure(grouped_bars(HASHTAG_METRICS, {m: [ev[m].get(k, np.nan) for k in HASHTAG_METRICS] for m in models},
                                "held-out hashtag metrics"), "Trained against untrained (same architecture).")
    ap = ev["trained"].get("per_label_ap") or {}
    if ap:
        ranked = sorted(ap.items(), key=lambda kv: -kv[1])
        top, bottom = ranked[:AP_BARS], ranked[-AP_BARS:] if len(ranked) > AP_BARS else []
        section.figure(bar_chart([k for k, _ in top], [v for _, v in top], f"best {len(top)} labels by AP", "AP"),
                       "Per-label average precision, highest.")
        if bottom:
            section.figure(bar_chart([k for k, _ in bottom], [v for _, v in bottom],
                                     f"worst {len(bottom)} labels by AP", "AP"), "Per-label average precision, lowest.")


@REPORT_SECTIONS.register("transfer_detail")
def transfer_detail(report: Report, run_dir: Path) -> None:
    """Per-class accuracy and the confusion matrix of each transfer result."""
    for r in transfer_results(run_dir):
        if "confusion" not in r:
            continue
        name = f"{r['method']} on {r['dataset_id']}"
        section = report.section(_title(run_dir, f"Transfer: {name}"),
                                 f"top-1 {100 * r['metrics']['top1']:.2f} %, top-5 {100 * r['metrics']['top5']:.2f} % "
                                 f"on {r['val']['count']} val images.")
        d = r.get("decontamination", {})
        if d.get("enabled"):
            section.paragraph(f"Decontaminated against {d['pool']['dataset']}: removed {d['train']['removed']} of "
                              f"{d['train']['images']} train and {d['val']['removed']} of {d['val']['images']} val "
                              f"images (exact {d['train']['exact']} + {d['val']['exact']}, near "
                              f"{d['train']['near']} + {d['val']['near']}).")
        classes = r["classes"]
        acc = [r["per_class"][c]["accuracy"] if r["per_class"][c]["accuracy"] is not None else np.nan for c in classes]
        section.figure(bar_chart(classes, acc, f"per-class accuracy ({name})", "top-1 accuracy"),
                       "Share of each class's val images predicted as that class.")
        section.figure(heatmap(r["confusion"], classes, f"confusion matrix ({name})"),
                       "Rows: true class; columns: predicted class (counts).")


@REPORT_SECTIONS.register("samples")
def sample_predictions(report: Report, run_dir: Path) -> None:
    """A grid of held-out images of the run's dataset with predicted vs written hashtags."""
    picked = _held_out_predictions(run_dir, SAMPLES)
    if picked is None:
        return
    images, captions, skipped = picked
    section = report.section(_title(run_dir, "Sample predictions"),
                             "Held-out posts of the training dataset (never trained on): the model's top-5 labels "
                             "against the hashtags the author wrote.")
    if skipped:
        section.paragraph(f"{skipped} samples of the dataset were left out because their author or post asked to be "
                          "forgotten.")
    if images:
        section.figure(image_grid(images, captions, "held-out posts"), "pred: predicted labels; wrote: hashtags as written.")


def _held_out_predictions(run_dir: Path, n: int) -> tuple[list[np.ndarray], list[str], int] | None:
    info = read_json(run_dir / "run.json") or {}
    dataset = dataset_path(info.get("dataset", {}).get("path", "")) if info.get("kind") == "pretrain" else None
    vocab_path = dataset_path(info.get("vocab", {}).get("path", "")) if dataset else None   # local paths or URLs
    from tagsight.train.checkpoint import latest_checkpoint

    if (dataset is None or vocab_path is None or not exists(join(dataset, "manifest.json")) or not exists(vocab_path)
            or latest_checkpoint(run_dir) is None or info.get("objective") != "hashtag"):
        return None
    return _predict_samples(run_dir, dataset, vocab_path, n)


def _predict_samples(run_dir: Path, dataset: Path | str, vocab_path: Path | str, n: int) -> tuple[list[np.ndarray], list[str], int]:
    import io

    import torch
    from PIL import Image

    from tagsight.data.index import SampleIndex
    from tagsight.data.transforms import eval_transform
    from tagsight.methods.hashtag import HashtagObjective
    from tagsight.tags.vocab import Vocabulary
    from tagsight.train.checkpoint import latest_checkpoint, load_checkpoint
    from tagsight.train.config import PretrainConfig
    from tagsight.train.pretrain import build_objective

    cfg = PretrainConfig.from_yaml(run_dir / "config.yaml")
    # SampleIndex.build leaves forgotten posts out (and counts them); what is left may be shown.
    vocab, index = Vocabulary.load(vocab_path), SampleIndex.build(dataset)
    held = np.flatnonzero(index.holdout(cfg.data.holdout_fraction, cfg.seed))
    chosen = [(int(i), index.read_meta(int(i))) for i in held[:n]]
    skipped = index.forgotten
    with torch.random.fork_rng(devices=[]):
        objective = build_objective(cfg, len(vocab))
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None or not isinstance(objective, HashtagObjective):
        raise ValueError(f"{run_dir}: no checkpoint, or not a hashtag run ({type(objective).__name__})")
    load_checkpoint(checkpoint, objective, restore_rng=False)
    objective.eval()
    transform = eval_transform(objective.backbone.data_config)
    images: list[np.ndarray] = []
    captions: list[str] = []
    for i, meta in chosen:
        with Image.open(io.BytesIO(index.read_jpeg(i))) as img:
            rgb = img.convert("RGB")
        with torch.no_grad():
            logits = objective.predict(transform(rgb).unsqueeze(0))[0]
        top = torch.topk(logits, min(5, len(vocab))).indices.tolist()
        images.append(np.asarray(rgb))
        captions.append(_caption([vocab.labels[j].label for j in top], meta.get("hashtags", [])))
    return images, captions, skipped


def _caption(predicted: list[str], written: list[str]) -> str:
    short = [p.split(".")[0] for p in predicted]
    wrote = " ".join(f"#{t}" for t in written[:6]) + (" ..." if len(written) > 6 else "")
    return f"pred: {', '.join(short[:3])}\n      {', '.join(short[3:])}\nwrote: {wrote or '(none)'}"


@REPORT_SECTIONS.register("swav")
def swav_diagnostics(report: Report, run_dir: Path) -> None:
    """SwAV runs: assignment entropy and feature spread over training, and the collapse verdict."""
    if (read_json(run_dir / "run.json") or {}).get("objective") == "swav":
        from tagsight.report.swav import add_swav_sections

        add_swav_sections(report, run_dir)


@REPORT_SECTIONS.register("model_card")
def model_card(report: Report, run_dir: Path) -> None:
    """The run's model card: training data version, recipe, evaluation results, known limits."""
    if (run_dir / "run.json").is_file():
        from tagsight.report.cards import add_card_section

        add_card_section(report, run_dir)


@REPORT_SECTIONS.register("judge")
def judge_study(report: Report, run_dir: Path) -> None:
    """A quality-tuning study kept in the run folder (RUN/judge/): sample grids, aesthetic scores, preference."""
    from tagsight.report.judge import add_judge_sections, has_study

    if has_study(run_dir / "judge"):
        add_judge_sections(report, run_dir / "judge")
