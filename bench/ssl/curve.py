"""The budget curve: top-1 (kNN and linear) against photos seen, one line per method and implementation.

    python bench/ssl/curve.py OUT_X1 OUT_X4 [OUT_X16 ...] --out docs/img/ssl_budget_curve.png

Each OUT is a ``bench/ssl/run.py --out`` folder (its ``results.json``), trained at one budget (``--steps``).
Photos seen = steps x batch size. Every (method, implementation) is averaged over the seeds it has at that budget;
the random initialisation of each folder's seeds is drawn as the floor. Prints the points as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

PROBES = (("knn_top1", "kNN top-1"), ("linear_top1", "linear top-1"))
COLOURS = {"swav": "#d62728", "dino": "#1f77b4"}


def points(folders: list[Path]) -> dict[tuple[str, str], list[tuple[int, float, float, int]]]:
    """(method, impl) -> sorted [(photos seen, mean kNN %, mean linear %, seeds)]; random init under ("-", "random")."""
    runs: list[dict[str, Any]] = []
    for folder in folders:
        runs += json.loads((folder / "results.json").read_text())["runs"]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        key = ("-", "random") if r["impl"] == "random" else (r["method"], r["impl"])
        groups[(*key, r["steps"] * r["batch"])].append(r)
    out: dict[tuple[str, str], list[tuple[int, float, float, int]]] = defaultdict(list)
    for (method, impl, seen), rs in sorted(groups.items()):
        if impl == "random":        # the same floor whatever the budget: once per seed
            rs = list({r["seed"]: r for r in rs}.values())
        out[(method, impl)].append((seen, 100 * statistics.fmean(r["knn_top1"] for r in rs),
                                    100 * statistics.fmean(r["linear_top1"] for r in rs), len(rs)))
    return dict(out)


def table(curves: dict[tuple[str, str], list[tuple[int, float, float, int]]]) -> str:
    lines = ["| method | implementation | photos seen | seeds | kNN top-1 % | linear top-1 % |", "|---|---|---:|---:|---:|---:|"]
    for (method, impl), pts in sorted(curves.items()):
        lines += [f"| {method} | {impl} | {seen:,} | {n} | {knn:.1f} | {lin:.1f} |" for seen, knn, lin, n in pts]
    return "\n".join(lines) + "\n"


def plot(curves: dict[tuple[str, str], list[tuple[int, float, float, int]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, (i, name) in zip(axes, ((1, PROBES[0][1]), (2, PROBES[1][1]))):
        for (method, impl), pts in sorted(curves.items()):
            if impl == "random":
                ax.axhline(pts[0][i], color="grey", linestyle=":", label="random init")
                continue
            ours = impl == "tagsight"    # colour by method; tagsight filled and solid, other implementations hollow
            ax.plot([p[0] for p in pts], [p[i] for p in pts], color=COLOURS.get(method, "black"),
                    marker="o" if ours else "s", markerfacecolor=None if ours else "none",
                    linestyle="-" if ours else "--", label=f"{method} ({impl})")
        ax.set_xscale("log")
        ax.set_xlabel("photos seen in pretraining (steps x 64)")
        ax.set_title(f"imagenette-160 val, {name}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 %")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="bench/ssl/run.py --out folders, one per budget")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    a = p.parse_args(argv)
    missing = [str(f) for f in a.folders if not (f / "results.json").is_file()]
    if missing:
        sys.stderr.write(f"no results.json in {', '.join(missing)}\n")
        return 2
    curves = points(a.folders)
    plot(curves, a.out)
    sys.stdout.write(table(curves))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
