"""Plot helpers returning matplotlib ``Figure`` objects, drawn with the Agg renderer.

Figures are made with ``matplotlib.figure.Figure`` directly, not ``pyplot``: no global figure
registry, no interactive backend, nothing to close, safe in worker processes and tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL import Image

DEFAULT_SIZE = (6.4, 3.6)


def new_figure(size: tuple[float, float] = DEFAULT_SIZE) -> tuple["Figure", "Axes"]:
    """A fresh (Figure, Axes) pair with an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def bar_chart(names: Sequence[str], values: Sequence[float], title: str, xlabel: str = "",
              log: bool = False) -> "Figure":
    """Horizontal bars, first item on top; ``log`` puts the values on a log axis."""
    height = max(2.0, 0.28 * len(names) + 1.0)
    fig, ax = new_figure((DEFAULT_SIZE[0], height))
    y = np.arange(len(names))
    ax.barh(y, values, color="#4c78a8")
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    return fig


def loglog_histogram(values: Sequence[float] | np.ndarray, title: str, xlabel: str, ylabel: str = "count",
                     bins: int = 20) -> "Figure":
    """Histogram with logarithmic bins on log-log axes (for Zipf-like frequencies); values must be > 0."""
    v = np.asarray([x for x in values if x > 0], dtype=np.float64)
    fig, ax = new_figure()
    if v.size:
        edges = np.geomspace(v.min(), v.max() * 1.0001, num=min(bins, max(2, v.size)) + 1)
        ax.hist(v, bins=edges.tolist(), color="#4c78a8", edgecolor="white")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def rank_curves(curves: Mapping[str, Sequence[float] | np.ndarray], title: str, ylabel: str = "share") -> "Figure":
    """One line per named series, each sorted in decreasing order, against rank, on log-log axes."""
    fig, ax = new_figure()
    for name, values in curves.items():
        v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
        v = v[v > 0]
        ax.plot(np.arange(1, v.size + 1), v, label=name, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def small_multiples(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
                    xlabel: str = "step", columns: int = 3) -> "Figure":
    """One small line plot per named (x, y) series, in a grid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(series))
    rows = -(-n // columns)
    fig = Figure(figsize=(3.3 * min(n, columns), 2.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, (x, y)) in enumerate(series.items()):
        ax = fig.add_subplot(rows, min(n, columns), i + 1)
        ax.plot(x, y, color="#4c78a8", linewidth=1.3, marker="." if len(x) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | Sequence[float]]], title: str,
                 ylabel: str = "") -> "Figure":
    """Vertical bars, one cluster per group and one bar per named series, labelled with its value.

    ``series[name][i]`` is the value of series ``name`` in group ``groups[i]``, or several values
    (e.g. one per seed) given as a list: then the bar stands at their mean and each value is drawn as
    a dot; an empty list or NaN draws no bar.
    """
    for name, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"series {name!r} has {len(values)} groups of values for {len(groups)} groups")
    fig, ax = new_figure((max(DEFAULT_SIZE[0], 1.1 * len(groups) + 1.5), DEFAULT_SIZE[1] + 0.6))
    x, width = np.arange(len(groups)), 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        lists = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]
        pos = x - 0.4 + width * (j + 0.5)
        means = np.array([np.nanmean(v) if v.size and not np.isnan(v).all() else np.nan for v in lists])
        bars = ax.bar(pos, np.nan_to_num(means), width * 0.92, label=name)
        ax.bar_label(bars, labels=["" if np.isnan(m) else f"{m:.3g}" for m in means], fontsize=7, padding=2)
        for p, raw, v in zip(pos, values, lists):
            if np.ndim(raw):   # given as several values: show each one
                ax.scatter(np.full(v.size, p), v, s=10, color="black", zorder=3)
    ax.set_xticks(x, labels=list(groups), fontsize=8, rotation=20 if len(groups) > 4 else 0,
                  ha="right" if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def heatmap(matrix: Sequence[Sequence[float]], labels: Sequence[str], title: str,
            xlabel: str = "predicted", ylabel: str = "true") -> "Figure":
    """A square matrix as a heat map with its counts written in the cells (when small enough)."""
    m = np.asarray(matrix, dtype=np.float64)
    side = max(3.6, 0.42 * len(labels) + 1.8)
    fig, ax = new_figure((side + 1.0, side))
    image = ax.imshow(m, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels=list(labels), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(ticks, labels=list(labels), fontsize=7)
    if len(labels) <= 25:
        top = m.max() if m.size else 0
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=6,
                        color="white" if v > top / 2 else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def image_grid(images: Sequence[Image.Image | np.ndarray], captions: Sequence[str], title: str, columns: int = 4,
               cell: tuple[float, float] = (2.8, 3.5)) -> "Figure":
    """Images (PIL images or H x W x 3 uint8 arrays) in a grid, each with a (multi-line) caption under it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(images))
    cols = min(n, columns)
    rows = -(-n // cols)
    fig = Figure(figsize=(cell[0] * cols, cell[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (img, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(np.asarray(img))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(caption, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=10)
    return fig


def histogram(values: Sequence[float], title: str, xlabel: str, marks: Mapping[str, float] = {},
              bins: int = 40) -> "Figure":
    """A linear histogram with vertical lines at ``marks`` (label -> value), e.g. thresholds."""
    fig, ax = new_figure()
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size:
        ax.hist(v, bins=bins, color="#4c78a8", edgecolor="white")
    for label, x in marks.items():
        ax.axvline(x, color="#e45756", linestyle="--", linewidth=1)
        ax.annotate(label, (x, 1), xycoords=("data", "axes fraction"), fontsize=7, color="#e45756",
                    ha="left", va="top", rotation=90)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    return fig


def overlaid_histograms(series: Mapping[str, Sequence[float]], title: str, xlabel: str, bins: int = 30) -> "Figure":
    """Several distributions on shared bins, semi-transparent, each with a dashed line at its mean."""
    fig, ax = new_figure()
    clean = {k: np.asarray([x for x in v if x is not None and np.isfinite(x)], dtype=np.float64)
             for k, v in series.items()}
    every = np.concatenate([v for v in clean.values() if v.size] or [np.zeros(1)])
    edges = np.histogram_bin_edges(every, bins=bins)
    for (name, v), colour in zip(clean.items(), ("#4c78a8", "#f58518", "#54a24b", "#e45756")):
        if v.size:
            ax.hist(v, bins=edges.tolist(), alpha=0.55, color=colour, label=f"{name} (mean {v.mean():.3f}, n={v.size})")
            ax.axvline(v.mean(), color=colour, linestyle="--", linewidth=1.2)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return fig


def interval_plot(names: Sequence[str], values: Sequence[float | None], intervals: Sequence[Sequence[float]],
                  title: str, xlabel: str, reference: float | None = None) -> "Figure":
    """Proportions in [0, 1], one point per row with its interval as a horizontal error bar (first row on top)
    and a dashed reference line."""
    fig, ax = new_figure((DEFAULT_SIZE[0], max(1.8, 0.35 * len(names) + 1.0)))
    y = np.arange(len(names))
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    lo = np.array([i[0] for i in intervals], dtype=np.float64)
    hi = np.array([i[1] for i in intervals], dtype=np.float64)
    ax.errorbar(v, y, xerr=[np.nan_to_num(v - lo), np.nan_to_num(hi - v)], fmt="o", color="#4c78a8", capsize=4)
    if reference is not None:
        ax.axvline(reference, color="#e45756", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    return fig
