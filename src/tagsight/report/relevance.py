"""The relevance sections of an HTML report: score histograms, least visual labels, dropped pairs with thumbnails.

``add_relevance_sections(report, scores_dir, truth=..., threshold=...)`` reads a scores folder made
by ``tagsight relevance score``; with a social-imagenette ``truth.jsonl`` the histograms are split
by the truth kind of each pair and a precision/recall curve of flagging is added.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from tagsight.relevance.score import load_labels, load_pairs, load_scores_meta
from tagsight.report.html import Report, Section
from tagsight.report.plots import bar_chart, new_figure

if TYPE_CHECKING:
    import pyarrow as pa
    from matplotlib.figure import Figure

    from tagsight.data.index import SampleIndex

log = logging.getLogger(__name__)

KIND_COLOURS = {"true_concept": "#4c78a8", "wrong_concept": "#e45756", "nonvisual_noise": "#f2a541",
                "unknown": "#999999", "all": "#4c78a8"}
LEAST_VISUAL = 25
MIN_SUPPORT = 5


def add_relevance_sections(report: Report, scores_dir: str | Path, truth: str | Path | None = None,
                           threshold: float = 0.05, examples: int = 16) -> Report:
    """Append the relevance sections to ``report`` (see the module docstring); returns it."""
    meta = load_scores_meta(scores_dir)
    pairs, labels = load_pairs(scores_dir), load_labels(scores_dir)
    scores = pairs.column("score").to_numpy().astype(np.float64)
    kinds, result = None, None
    if truth is not None:
        from tagsight.relevance.truth import evaluate_truth, load_truth

        truth_rows = load_truth(truth)
        result = evaluate_truth(pairs, labels, truth_rows, sorted({threshold, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5}))
        from tagsight.relevance.truth import pair_kinds

        kinds = pair_kinds(pairs, truth_rows)
    _summary(report.section("Relevance scores", "Every (image, label) pair scored by a hashtag-prediction head "
                            "that never trained on that image (K-fold cross-fitting by post)."), meta)
    _histograms(report.section("Pair scores"), scores, kinds, threshold)
    if result is not None:
        _flagging(report.section("Flagging wrong and irrelevant tags (ground truth)"), result)
    _least_visual(report.section("Least visual labels", "Visualness = out-of-fold average precision of the "
                                 "label above chance, (AP - prevalence) / (1 - prevalence); labels with at least "
                                 f"{MIN_SUPPORT} positives."), labels, result)
    _dropped(report.section(f"Examples of dropped pairs (score < {threshold:g})"), meta, pairs, kinds, threshold,
             examples)
    return report


def _summary(sec: Section, meta: dict[str, Any]) -> None:
    cfg = meta["config"]
    sec.key_values({"dataset": f"{meta['dataset']['path']} (version {meta['dataset']['version']}, "
                               f"{meta['dataset']['samples']:,} samples)",
                    "vocabulary": f"{meta['vocab']['version']} ({meta['vocab']['labels']} labels)",
                    "backbone": f"{cfg['backbone']} at {meta.get('backbone', {}).get('data_config', {}).get('input_size', '?')} px",
                    "cross-fitting": f"{cfg['folds']} folds by post, sizes {meta.get('fold_sizes')}",
                    "head": f"linear, {cfg['loss']}, {cfg['epochs']} epochs, Adam lr {cfg['lr']:g}, seed {cfg['seed']}",
                    "pairs": meta["pairs"], "out-of-fold mAP": meta["oof_mAP"], "scores version": meta["version"]})


def score_histogram(scores: np.ndarray, kinds: np.ndarray | None, threshold: float) -> "Figure":
    """Pair-score histogram (log count axis), one outline per truth kind when ``kinds`` is given."""
    fig, ax = new_figure()
    bins = np.linspace(0, 1, 41).tolist()
    groups = {"all": scores} if kinds is None else {k: scores[kinds == k] for k in KIND_COLOURS if (kinds == k).any()}
    for name, values in groups.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.6, color=KIND_COLOURS[name],
                label=f"{name} ({len(values):,})")
    ax.axvline(threshold, color="#333", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("out-of-fold pair score (probability of the label given the image)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    ax.set_title("Pair scores" + (" by truth kind" if kinds is not None else ""), fontsize=10)
    return fig


def _histograms(sec: Section, scores: np.ndarray, kinds: np.ndarray | None, threshold: float) -> None:
    sec.figure(score_histogram(scores, kinds, threshold), "Out-of-fold scores of all pairs")
    quantiles = np.quantile(scores, [0.1, 0.25, 0.5, 0.75, 0.9])
    sec.table(["pairs", "p10", "p25", "median", "p75", "p90", f"below {threshold:g}"],
              [[len(scores), *map(float, quantiles), int((scores < threshold).sum())]])


def pr_figure(curve: dict[str, list[float]], points: Sequence[dict[str, Any]], chance: float) -> "Figure":
    """Precision against recall of flagging, with the tabulated thresholds marked."""
    fig, ax = new_figure((5.2, 3.8))
    ax.plot(curve["recall"], curve["precision"], color="#4c78a8", linewidth=1.6, label="flag score < t")
    for p in points:
        ax.scatter([p["recall"]], [p["precision"]], color="#e45756", s=14, zorder=3)
        ax.annotate(f"{p['threshold']:g}", (p["recall"], p["precision"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.axhline(chance, color="#999", linestyle=":", label=f"chance {chance:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (of wrong + non-visual pairs)")
    ax.set_ylabel("precision")
    ax.legend(fontsize=8)
    ax.set_title("Flagging wrong and irrelevant pairs", fontsize=10)
    return fig


def _flagging(sec: Section, result: dict[str, Any]) -> None:
    sec.paragraph(f"{result['pairs']:,} pairs; flagging AP {result['flag_ap']:.3f} (chance "
                  f"{result['flag_chance']:.3f}). A pair should be flagged when its hashtags are a wrong concept "
                  "or simulated non-visual noise.")
    sec.figure(pr_figure(result["pr_curve"], result["at_thresholds"], result["flag_chance"]), "PR curve of flagging")
    sec.table(["threshold", "flagged", "precision", "recall", "true pairs lost"],
              [[r["threshold"], r["flagged"], r["precision"], r["recall"], r["true_pairs_lost"]]
               for r in result["at_thresholds"]])
    s = result["ranking_summary"]
    sec.key_values({"labels ranked": s["labels"], "noise labels": s["noise_labels"],
                    "noise median rank": s["noise_median_rank"], "concept median rank": s["concept_median_rank"],
                    "noise in bottom half": s["noise_in_bottom_half"],
                    "AUC (concept label above noise label)": s["concept_above_noise_auc"]})


def _least_visual(sec: Section, labels: list[dict[str, Any]], result: dict[str, Any] | None) -> None:
    kind = {r["index"]: r["kind"] for r in result["ranking"]} if result else {}
    rows = sorted((r for r in labels if r["visualness"] is not None and r["support"] >= MIN_SUPPORT),
                  key=lambda r: (r["visualness"], r["index"]))[:LEAST_VISUAL]
    if not rows:
        sec.paragraph("No label has enough positives to rank.")
        return
    sec.figure(bar_chart([r["label"] for r in rows], [r["visualness"] for r in rows],
                         "Least visual labels", "out-of-fold AP above chance"), "Lowest visualness first")
    sec.table(["label", "visualness", "AP", "chance (prevalence)", "support", "truth kind", "hashtags"],
              [[r["label"], r["visualness"], r["ap"], r["prevalence"], r["support"], kind.get(r["index"], ""),
                " ".join(f"#{t}" for t in r["members"])] for r in rows])


def _dropped(sec: Section, meta: dict[str, Any], pairs: pa.Table, kinds: np.ndarray | None, threshold: float,
             examples: int) -> None:
    cols = pairs.select(["sample", "label_name", "hashtags", "score"]).to_pydict()
    order = [i for i in np.argsort(np.asarray(cols["score"]), kind="stable") if cols["score"][i] < threshold]
    chosen = _spread(order, cols["label_name"], examples)
    sec.paragraph(f"{len(order):,} of {len(cols['score']):,} pairs score below {threshold:g}; the lowest "
                  f"{len(chosen)} are shown, at most two per label (the image and the hashtag that would be dropped).")
    if not order:
        return
    dataset = Path(meta["dataset"]["path"])
    try:
        from tagsight.data.index import SampleIndex

        index = SampleIndex.build(dataset)
    except (FileNotFoundError, ValueError) as exc:
        sec.paragraph(f"Thumbnails unavailable: {exc}")
        index = None
    items = [(cols["sample"][i], "#" + " #".join(cols["hashtags"][i]), cols["score"][i],
              None if kinds is None else kinds[i]) for i in chosen]
    if index is not None:
        sec.figure(thumbnail_grid(index, items), "Dropped pairs: hashtag, score and (when known) truth kind")
    sec.table(["sample", "hashtags", "score", "truth kind"], [[s, t, float(v), k or ""] for s, t, v, k in items])


def _spread(order: list[int], names: list[str], n: int) -> list[int]:
    """The lowest-scoring pairs, at most two per label so one label does not fill the grid."""
    seen: dict[str, int] = {}
    out = []
    for i in order:
        if seen.get(names[i], 0) < 2:
            seen[names[i]] = seen.get(names[i], 0) + 1
            out.append(int(i))
        if len(out) == n:
            break
    return out


def thumbnail_grid(index: SampleIndex, items: Sequence[tuple[int, str, float, str | None]], columns: int = 4) -> "Figure":
    """Thumbnails of samples with a caption each: (sample, hashtags, score, kind)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = max(1, -(-len(items) // columns))
    fig = Figure(figsize=(2.1 * columns, 2.3 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for j, (sample, tags, score, kind) in enumerate(items):
        ax = fig.add_subplot(rows, columns, j + 1)
        with Image.open(io.BytesIO(index.read_jpeg(int(sample)))) as img:
            ax.imshow(np.asarray(img.convert("RGB")))
        ax.set_axis_off()
        ax.set_title(f"{tags[:22]}\n{score:.3f}" + (f" {kind}" if kind else ""), fontsize=7,
                     color=KIND_COLOURS.get(kind or "all", "#333"))
    return fig
