"""Grouped bar charts with one dot per value (e.g. results per arm, one dot per seed); Agg-only, as plots.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from tagsight.report.plots import DEFAULT_SIZE, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def grouped_bar_chart(groups: Sequence[str], series: Mapping[str, Sequence[Sequence[float]]], title: str,
                      ylabel: str = "") -> "Figure":
    """Vertical bars per group, one bar per series at the mean of its values, each value drawn as a dot.

    ``series[name][i]`` holds the values (e.g. one per seed) of series ``name`` in group ``groups[i]``;
    an empty list draws no bar. Bars are labelled with their mean.
    """
    for name, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"series {name!r} has {len(values)} groups of values for {len(groups)} groups")
    fig, ax = new_figure((max(DEFAULT_SIZE[0], 1.1 * len(groups) + 1.5), DEFAULT_SIZE[1] + 0.6))
    x, width = np.arange(len(groups)), 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        pos = x - 0.4 + width * (j + 0.5)
        means = np.array([np.mean(v) if len(v) else np.nan for v in values])
        bars = ax.bar(pos, np.nan_to_num(means), width * 0.92, label=name)
        ax.bar_label(bars, labels=["" if np.isnan(m) else f"{m:.1f}" for m in means], fontsize=7, padding=2)
        for p, v in zip(pos, values):
            ax.scatter(np.full(len(v), p), v, s=10, color="black", zorder=3)
    ax.set_xticks(x, labels=list(groups), fontsize=8, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return fig
