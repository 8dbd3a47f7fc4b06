"""The curation section of the HTML report: counts, score histograms with thresholds, examples per reason."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tagsight.curate.chain import CURATION_INFO, read_curation
from tagsight.data.index import SampleIndex
from tagsight.report.html import Report
from tagsight.report.plots import bar_chart, histogram, image_grid

EXAMPLES = 12
_THRESHOLDS = {  # metric -> (filter, setting) whose value is drawn on the histogram
    "laplacian_var": ("blur", "min_laplacian_var"), "rms_contrast": ("contrast", "min_rms"),
    "colourfulness": ("colourfulness", "min_colourfulness"), "mean_luminance": ("exposure", "min_mean"),
    "clipped_fraction": ("exposure", "max_clipped"), "text_fraction": ("text", "max_text_fraction"),
    "aesthetic": ("aesthetic", "min_score"), "short_side": ("resolution", "min_side"),
}


def add_curation_sections(report: Report, dataset_dir: str | Path) -> None:
    """Add the curation sections for ``dataset_dir`` (which must have run ``tagsight curate filter``)."""
    dataset_dir = Path(dataset_dir)
    info = json.loads((dataset_dir / CURATION_INFO).read_text())
    rows = read_curation(dataset_dir).to_pylist()
    _summary(report, info)
    _histograms(report, info, rows)
    _examples(report, dataset_dir, rows)


def _summary(report: Report, info: dict[str, Any]) -> None:
    sec = report.section("Curation: automatic filters", "Every sample is scored by the chain in order; the first "
                         "filter it fails gives its reason. samples = passed + rejected.")
    sec.key_values({"samples": info["samples"], "passed": info["passed"],
                    "rejected": sum(info["rejected"].values()), "seconds": info["seconds"]})
    if info["rejected"]:
        names, counts = zip(*sorted(info["rejected"].items(), key=lambda kv: -kv[1]))
        sec.figure(bar_chart(list(names), list(counts), "rejections by reason", "samples"))
    sec.table(["filter", "settings", "skipped (did not apply)"],
              [[f["name"], json.dumps({k: v for k, v in f.items() if k != "name"}), info["skipped"].get(f["name"], 0)]
               for f in info["config"]["filters"]])


def _histograms(report: Report, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    settings = {f["name"]: f for f in info["config"]["filters"]}
    sec = report.section("Score distributions", "Dashed lines are the configured thresholds.")
    for metric, (flt, key) in _THRESHOLDS.items():
        values = [v for r in rows if (v := r.get(metric)) is not None]
        if values:
            mark = settings.get(flt, {}).get(key)
            sec.figure(histogram(values, metric, metric, {key: mark} if mark is not None else {}))


def _examples(report: Report, dataset_dir: Path, rows: list[dict[str, Any]]) -> None:
    index = SampleIndex.build(dataset_dir)
    row_of = {k: i for i, k in enumerate(index.keys)}

    def thumb(key: str) -> Image.Image:
        return Image.open(io.BytesIO(index.read_jpeg(row_of[key]))).convert("RGB")

    sec = report.section("Examples", f"Up to {EXAMPLES} samples per rejection reason, and the best passed samples "
                         "by aesthetic score.")
    for reason in sorted({r["reason"] for r in rows if r["reason"]}):
        picked = [r for r in rows if r["reason"] == reason][:EXAMPLES]
        sec.figure(image_grid([thumb(r["key"]) for r in picked], [_caption(r) for r in picked], f"rejected: {reason}",
                                      columns=6, cell=(1.8, 2.0)))
    best = sorted((r for r in rows if r["status"] == "passed"), key=lambda r: -(r.get("aesthetic") or 0.0))[:EXAMPLES]
    if best:
        sec.figure(image_grid([thumb(r["key"]) for r in best], [_caption(r) for r in best], "passed: best aesthetic",
                                      columns=6, cell=(1.8, 2.0)))
    index.close()


def _caption(row: dict[str, Any]) -> str:
    stage = row.get("stage")
    metric = {"blur": "laplacian_var", "text": "text_fraction", "contrast": "rms_contrast",
              "colourfulness": "colourfulness", "exposure": "mean_luminance"}.get(stage or "", "aesthetic")
    value = row.get(metric)
    return f"{metric} {value:.3g}" if value is not None else row["key"][:8]


def write_curation_report(dataset_dir: str | Path, out: str | Path) -> str | Path:
    """The curation page of ``dataset_dir`` written to ``out`` (a local file, or an fsspec URL: one object put whole);
    it names the dataset where it lives (its URL for a mirrored copy)."""
    from tagsight.storage import location, write_text

    report = Report("Curation", location(dataset_dir))
    add_curation_sections(report, dataset_dir)
    return write_text(out, report.render())
