"""The generic one-file HTML report builder."""

from __future__ import annotations

import re
from pathlib import Path

from tagsight.report.html import Report
from tagsight.report.plots import bar_chart, loglog_histogram, rank_curves


def external_refs(page: str) -> list[str]:
    """src/href attributes that do not point inside the page (data: URIs or #anchors)."""
    return re.findall(r"""(?:src|href)\s*=\s*["'](?!data:|#)([^"']*)""", page, flags=re.I)


def test_page_is_self_contained_with_inline_figures(tmp_path: Path) -> None:
    report = Report("Run <1>", "subtitle & more")
    sec = report.section("Numbers", "Some <b>text</b>.")
    sec.key_values({"posts": 1234, "share": 0.5})
    sec.table(["a", "b"], [["x<y", 3], [None, 2.5]], caption="cap")
    sec.figure(bar_chart(["a", "b"], [3, 1], "bars"), "Bars")
    report.section("Tail").figure(loglog_histogram([1, 2, 3, 50, 400], "hist", "x"), "Hist")
    report.section("Curves").figure(rank_curves({"one": [0.5, 0.3, 0.2]}, "curves"), "Curves")
    path = report.write(tmp_path / "sub" / "r.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert external_refs(page) == []
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 3
    assert "Run &lt;1&gt;" in page and "Some &lt;b&gt;text&lt;/b&gt;." in page and "x&lt;y" in page
    assert '<td class="num">1,234</td>' in page
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_empty_histogram_still_renders() -> None:
    report = Report("x")
    report.section("empty").figure(loglog_histogram([], "nothing", "x"))
    assert "data:image/png;base64," in report.render()
