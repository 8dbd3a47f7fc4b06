"""SwAV sections of a run report: collapse verdict, assignment-entropy and feature-spread curves.

``add_swav_sections(report, run_dir)`` reads ``metrics.jsonl`` (rows with ``assign_entropy`` and
``feature_std``, logged by the SwAV objective every ``log_every`` steps), ``eval.json`` (the
held-out ``collapse`` verdict, when the run finished) and ``config.yaml`` (the thresholds), and
appends a section with a warning paragraph when the run collapsed (held out, or in training after
the prototype freeze), the figures, and the final numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tagsight.fsio import ReasonError
from tagsight.methods.swav import SwavConfig, collapse_verdict
from tagsight.report.html import Report
from tagsight.report.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES = (("assign_entropy", "prototype-assignment entropy (normalised)"),
          ("feature_std", "feature spread (per-dimension std x sqrt(dim))"))


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise ReasonError("no_metrics", f"{run_dir} has no metrics.jsonl: not a tagsight training run")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    swav = [r for r in rows if "assign_entropy" in r and "feature_std" in r]
    if not swav:
        raise ReasonError("not_swav", f"{path} has no assign_entropy/feature_std rows: not a SwAV run")
    last: dict[int, dict[str, Any]] = {}
    for r in swav:                      # a resumed run logs some steps twice: keep the later row
        last[int(r["step"])] = r
    return [last[s] for s in sorted(last)]


def _thresholds(run_dir: Path) -> SwavConfig:
    path = run_dir / "config.yaml"
    cfg = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    from tagsight.train.config import ObjectiveConfig   # reads the new and the earlier nested form alike

    params: SwavConfig = ObjectiveConfig.from_dict({**(cfg.get("objective") or {}), "name": "swav"}).params
    return params


def training_collapse(rows: list[dict[str, Any]], cfg: SwavConfig) -> dict[str, Any] | None:
    """The first logged row after the prototype freeze whose diagnostics cross a threshold, as a verdict."""
    for r in rows:
        if r.get("prototypes_frozen", 0.0) < 0.5:
            verdict = collapse_verdict(float(r["assign_entropy"]), float(r["feature_std"]), cfg)
            if verdict["collapsed"]:
                return {**verdict, "step": int(r["step"])}
    return None


def curve_figure(rows: list[dict[str, Any]], cfg: SwavConfig) -> Figure:
    """Both diagnostics against the step, with the collapse thresholds dashed."""
    fig, ax = new_figure()
    steps = [r["step"] for r in rows]
    for (key, label), colour, limit in zip(CURVES, ("#4c78a8", "#f58518"), (cfg.collapse_entropy, cfg.collapse_std)):
        ax.plot(steps, [r[key] for r in rows], color=colour, label=label)
        ax.axhline(limit, color=colour, linestyle="--", linewidth=0.8)
    frozen = [r["step"] for r in rows if r.get("prototypes_frozen", 0.0) >= 0.5]
    if frozen:
        ax.axvspan(min(steps), max(frozen), color="#dddddd", alpha=0.5, label="prototypes frozen")
    ax.set_xlabel("optimiser step")
    ax.set_ylim(bottom=0)
    ax.set_title("SwAV collapse diagnostics (dashed: collapse thresholds)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def add_swav_sections(report: Report, run_dir: str | Path) -> Report:
    """Append the SwAV section of ``run_dir`` to ``report`` (returned for chaining)."""
    run_dir = Path(run_dir)
    rows, cfg = _rows(run_dir), _thresholds(run_dir)
    eval_path = run_dir / "eval.json"
    held = json.loads(eval_path.read_text()).get("collapse") if eval_path.is_file() else None
    during = training_collapse(rows, cfg)
    sec = report.section("SwAV: collapse check", "A SwAV run collapses when every image gets the same "
                         "embedding or the same prototype; the loss can still look fine. Entropy near 1 and "
                         "spread near 1 are healthy; the run is flagged below the dashed thresholds.")
    if held is not None and held["collapsed"]:
        sec.paragraph(f"WARNING: this run COLLAPSED on held-out images: {held['reason']}.")
    if during is not None:
        sec.paragraph(f"WARNING: the training diagnostics crossed a collapse threshold at step {during['step']}: "
                      f"{during['reason']}.")
    if held is None:
        sec.paragraph("No eval.json yet (the run has not finished): the held-out check is missing.")
    elif not held["collapsed"] and during is None:
        sec.paragraph("Not collapsed: held-out and training diagnostics stay above the thresholds.")
    sec.figure(curve_figure(rows, cfg), "Assignment entropy and feature spread during training")
    last = rows[-1]
    sec.key_values({"last step": int(last["step"]), "training assignment entropy": float(last["assign_entropy"]),
                    "training feature spread": float(last["feature_std"]),
                    "held-out assignment entropy": held["assignment_entropy"] if held else "-",
                    "held-out feature spread": held["feature_std"] if held else "-",
                    "thresholds (entropy, spread)": f"{cfg.collapse_entropy}, {cfg.collapse_std}"})
    return report
