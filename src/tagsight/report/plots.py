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


def loglog_histogram(values: Sequence[float], title: str, xlabel: str, ylabel: str = "count",
                     bins: int = 20) -> "Figure":
    """Histogram with logarithmic bins on log-log axes (for Zipf-like frequencies); values must be > 0."""
    v = np.asarray([x for x in values if x > 0], dtype=np.float64)
    fig, ax = new_figure()
    if v.size:
        edges = np.geomspace(v.min(), v.max() * 1.0001, num=min(bins, max(2, v.size)) + 1)
        ax.hist(v, bins=edges, color="#4c78a8", edgecolor="white")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def rank_curves(curves: Mapping[str, Sequence[float]], title: str, ylabel: str = "share") -> "Figure":
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
