"""The SwAV report section: curves from metrics.jsonl, the held-out verdict, a collapse warning."""

import json

import pytest

from tagsight.fsio import ReasonError
from tagsight.report.html import Report
from tagsight.report.swav import add_swav_sections, training_collapse
from tagsight.methods.swav import SwavConfig


def fake_run(tmp_path, spreads, collapsed=None):
    rows = [{"step": i + 1, "loss": 5.0, "assign_entropy": 0.6, "feature_std": s, "prototypes_frozen": float(i < 2)}
            for i, s in enumerate(spreads)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "config.yaml").write_text("objective: {name: swav, swav: {collapse_std: 0.1}}\n")
    if collapsed is not None:
        reason = "feature spread 0.010 < 0.1: the embeddings are nearly identical" if collapsed else "not collapsed"
        (tmp_path / "eval.json").write_text(json.dumps({"collapse": {"collapsed": collapsed, "reason": reason,
                                                        "assignment_entropy": 0.5, "feature_std": 0.01}}))
    return tmp_path


def test_a_healthy_run_gets_curves_and_no_warning(tmp_path):
    page = add_swav_sections(Report("run"), fake_run(tmp_path, [0.05, 0.3, 0.4, 0.5], collapsed=False)).render()
    assert "Not collapsed" in page and "WARNING" not in page and page.count("data:image/png;base64,") == 1


def test_a_collapsed_run_says_so(tmp_path):
    page = add_swav_sections(Report("run"), fake_run(tmp_path, [0.3, 0.3, 0.2, 0.01], collapsed=True)).render()
    assert "COLLAPSED on held-out images" in page and "at step 4" in page


def test_the_freeze_is_not_counted_and_resumed_steps_are_not_doubled(tmp_path):
    fake_run(tmp_path, [0.01, 0.01, 0.5, 0.5])      # low spread only while the prototypes were frozen
    with open(tmp_path / "metrics.jsonl", "a") as f:  # a resumed run logs step 4 again
        f.write(json.dumps({"step": 4, "loss": 5.0, "assign_entropy": 0.6, "feature_std": 0.5,
                            "prototypes_frozen": 0.0}) + "\n")
    page = add_swav_sections(Report("run"), tmp_path).render()
    assert "WARNING" not in page and "not finished" in page
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert training_collapse(rows, SwavConfig()) is None


def test_a_run_without_swav_metrics_is_refused(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    with pytest.raises(ReasonError) as err:
        add_swav_sections(Report("run"), tmp_path)
    assert err.value.reason == "not_swav"
