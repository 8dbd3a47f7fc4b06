"""From per-arm/seed result files to the results table, the bar chart and the docs/results.md section."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .spec import ArmSpec, Experiment

METRICS = ("linear_top1", "linear_top5", "knn_top1", "knn_top5")
HEADERS = ("arm", "linear top-1 %", "linear top-5 %", "kNN top-1 %", "kNN top-5 %", "held-out class mAP",
           "pretrain wall", "seeds")


@dataclass(frozen=True)
class ArmSummary:
    """One arm's results over its seeds (empty when it has not run)."""

    arm: ArmSpec
    records: tuple[dict[str, Any], ...]

    @property
    def seeds(self) -> list[int]:
        return sorted(r["seed"] for r in self.records)

    def values(self, metric: str) -> list[float]:
        return [r["metrics"][metric] for r in self.records if metric in r.get("metrics", {})]

    def heldout(self, key: str) -> list[float]:
        return [r["heldout"][key] for r in self.records if key in r.get("heldout", {})]

    def walls(self, key: str) -> list[float]:
        return [r["wall"][key] for r in self.records if key in r.get("wall", {})]


def load_results(work: Path, exp: Experiment) -> list[ArmSummary]:
    """Every arm of the experiment (planned ones too) with the result files found under ``work/results``."""
    out = []
    for arm in exp.arms:
        folder = work / "results" / arm.name
        files = sorted(folder.glob("seed*.json")) if folder.is_dir() else []
        records = [json.loads(f.read_text()) for f in files if f.name.count(".") == 1]  # not seedN.METHOD.json
        out.append(ArmSummary(arm, tuple(sorted(records, key=lambda r: r["seed"]))))
    return out


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation); the deviation is NaN for fewer than 2 values."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def cell(values: Sequence[float], scale: float = 100.0, digits: int = 1, unit: str = "") -> str:
    """``51.2 ± 0.4`` (mean ± sample std over seeds), ``51.2`` for one value, ``—`` for none."""
    mean, sd = mean_spread(values)
    if math.isnan(mean):
        return "—"
    text = f"{scale * mean:.{digits}f}"
    return text + unit if math.isnan(sd) else f"{text} ± {scale * sd:.{digits}f}{unit}"


def minutes(values: Sequence[float]) -> str:
    mean, _ = mean_spread(values)
    return "—" if math.isnan(mean) else f"{mean / 60:.1f} min"


def row(summary: ArmSummary) -> list[str]:
    arm = summary.arm
    if not summary.records:
        status = "planned (not run yet)" if arm.planned else "not run yet"
        return [arm.label, "—", "—", "—", "—", "—", "—", status]
    cells = [cell(summary.values(m)) for m in METRICS]
    class_map = cell(summary.heldout("class_mAP"), 1.0, 3)
    wall = minutes(summary.walls("pretrain")) if arm.kind == "pretrain" else "—"
    seeds = ", ".join(map(str, summary.seeds)) + ("" if arm.seeded else " (no seed dependence)")
    return [arm.label, *cells, class_map, wall, seeds]


def markdown_table(summaries: Sequence[ArmSummary]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * (len(HEADERS) - 2) + "---|"]
    lines += ["| " + " | ".join(row(s)) + " |" for s in summaries]
    return "\n".join(lines)


def seed_table(summaries: Sequence[ArmSummary]) -> str:
    """Every seed's figures, one row each (the table above averages them)."""
    lines = ["| arm | seed | linear top-1 % | kNN top-1 % | held-out mAP (own labels) | pretrain wall | eval wall |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        for r in s.records:
            m, w, h = r["metrics"], r["wall"], r.get("heldout", {})
            eval_wall = sum(v for k, v in w.items() if k.startswith("eval_"))
            lines.append(f"| {s.arm.name} | {r['seed']} | {100 * m.get('linear_top1', math.nan):.1f} | "
                         f"{100 * m.get('knn_top1', math.nan):.1f} | "
                         f"{h['mAP']:.3f} ({h['labels']} labels) |" if "mAP" in h else
                         f"| {s.arm.name} | {r['seed']} | {100 * m.get('linear_top1', math.nan):.1f} | "
                         f"{100 * m.get('knn_top1', math.nan):.1f} | — |")
            lines[-1] += (f" {w['pretrain'] / 60:.1f} min |" if "pretrain" in w else " — |") + f" {eval_wall:.0f} s |"
    return "\n".join(lines)


def plot(summaries: Sequence[ArmSummary], path: Path, title: str) -> Path | None:
    """Grouped bars (linear and kNN top-1 per arm, mean over seeds) with each seed as a dot; None if nothing ran."""
    from tagsight.report.plots import grouped_bars as grouped_bar_chart

    done = [s for s in summaries if s.records]
    if not done:
        return None
    series = {"linear probe top-1": [[100 * v for v in s.values("linear_top1")] for s in done],
              "kNN top-1": [[100 * v for v in s.values("knn_top1")] for s in done]}
    fig = grouped_bar_chart([s.arm.name for s in done], series, title, ylabel="imagenette-160 val top-1 (%)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def total_wall(summaries: Sequence[ArmSummary]) -> float:
    return sum(r["wall"].get("total", 0.0) for s in summaries for r in s.records)


def dataset_counts(folders: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """Consent-gate counts of every input that is an ingested dataset (has a manifest.json)."""
    out = {}
    for name, folder in folders.items():
        manifest = folder / "manifest.json"
        if manifest.is_file():
            data = json.loads(manifest.read_text())
            counts = data.get("counts", {})
            out[name] = {"version": data.get("version", ""), "in": counts.get("posts_in"),
                         "kept": counts.get("posts_kept"), "rejected": counts.get("posts_rejected"),
                         "reasons": counts.get("post_reasons", {})}
    return out


def datasets_table(counts: Mapping[str, Mapping[str, Any]]) -> str:
    """Posts in / kept / rejected (by reason) of each ingested input: the arms' consent gate, side by side."""
    if not counts:
        return ""
    lines = ["| input | version | posts in | kept | rejected | rejected by reason |", "|---|---|---:|---:|---:|---|"]
    for name, c in counts.items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["reasons"].items()))
        lines.append(f"| {name} | {c['version']} | {c['in']} | {c['kept']} | {c['rejected']} | {reasons} |")
    return "Ingested inputs (the consent gate of every arm's training data):\n\n" + "\n".join(lines)


def invocation_line(entry: Mapping[str, Any]) -> str:
    """One invocation of the runner: when, how long, how many jobs (or that it was stopped before its end)."""
    if "end" not in entry:
        return (f"- {entry['start']}: started with {entry.get('jobs_planned', '?')} job(s) planned, "
                f"{entry.get('jobs_skipped', 0)} already done; no end recorded (still running, or stopped)")
    return (f"- {entry['start']} to {entry['end']}: {entry['wall'] / 60:.1f} min wall, {entry['jobs_run']} job(s) run, "
            f"{entry['jobs_skipped']} skipped (done before)"
            + (f", {len(entry['failures'])} failed" if entry.get("failures") else ""))


def section(exp: Experiment, summaries: Sequence[ArmSummary], meta: Mapping[str, Any], plot_name: str | None) -> str:
    """The generated part of docs/results.md: command, machine, budget, the tables and the plot."""
    facts = "\n".join(f"- {k}: {v}" for k, v in meta.get("machine", {}).items())
    budget = meta.get("budget") or {}
    budget_text = ", ".join(f"{k} {v}" for k, v in budget.items()) if budget else "no pretrain arm ran"
    invocations = meta.get("invocations", [])
    inv_text = "\n".join(invocation_line(i) for i in invocations)
    partial = [s.arm.name for s in summaries if s.records and s.arm.seeded
               and len(s.records) < len(meta.get("seeds", []))]
    parts = [
        f"Produced by (the last invocation; rerunning it skips every arm/seed already done):\n\n"
        f"```\n{meta.get('command', '')}\n```",
        f"Seeds {', '.join(map(str, meta.get('seeds', [])))}; mean ± sample standard deviation over the seeds "
        f"that finished (the `seeds` column; one value has no ±). "
        f"Wall time of the jobs shown: {total_wall(summaries) / 60:.1f} min in total "
        f"(pretraining plus feature extraction and scoring; input building not included).",
        f"Shared budget of every pretrain arm: {budget_text}. Evaluation: frozen features at "
        f"{exp.eval.img_size} px, linear probe and weighted kNN (k = 20), train `{meta.get('eval_train', exp.eval.train)}`, "
        f"val `{meta.get('eval_val', exp.eval.val)}`. Held-out class mAP: mean average precision, on the 10% of "
        f"pretraining posts held out, of the labels that are the true classes (for the hashtag arms the targets are "
        f"the posts' noisy hashtags, for the clean arm the true classes).",
        markdown_table(summaries),
    ]
    if partial:
        parts.append(f"**Partial**: {', '.join(partial)} ran on fewer seeds than requested; see the seed table.")
    if plot_name:
        parts.append(f"![linear probe and kNN top-1 per arm, bars = mean, dots = seeds]({plot_name})")
    parts += ["Every seed:\n\n" + seed_table(summaries), datasets_table(meta.get("datasets", {})),
              "Machine:\n\n" + facts, "Invocations:\n\n" + inv_text if inv_text else ""]
    return "\n\n".join(p for p in parts if p)
