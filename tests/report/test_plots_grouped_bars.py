"""Plot helpers: grouped bars with one dot per value."""

from __future__ import annotations

import numpy as np
import pytest

from tagsight.report.plots import grouped_bars as grouped_bar_chart


def test_grouped_bars_are_drawn_at_the_mean_with_a_dot_per_value():
    fig = grouped_bar_chart(["a", "b", "c"], {"lin": [[50.0, 52.0], [30.0], []], "knn": [[40.0], [20.0, 22.0], [10.0]]},
                            "t", ylabel="top-1")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([51.0, 30.0, 0.0, 40.0, 21.0, 10.0])   # no values: no bar
    dots = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    assert sorted(dots.tolist()) == [10.0, 20.0, 22.0, 30.0, 40.0, 50.0, 52.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_grouped_bars_refuse_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 groups of values for 3 groups"):
        grouped_bar_chart(["a", "b", "c"], {"lin": [[1.0], [2.0]]}, "t")
