"""The budget curve: top-1 (kNN and linear) against pretraining compute, one line per method and implementation.

    python bench/ssl/curve.py OUT_X1 OUT_X4[:swav] [OUT_X16 ...] [--hashtag RUN ...] --out docs/img/ssl_budget_curve.png

Each OUT is a ``bench/ssl/run.py --out`` folder (its ``results.json``), trained at one budget (``--steps``);
``OUT:swav,dino`` takes only those methods' runs from it (and its random initialisation).
Photos seen = steps x batch size. Compute is counted as the backbone pixels the student processes: photos seen x
the pixels of one sample's crops (2 x 64 px + 2 x 32 px for the presets' multi-crop, from the preset each
results.json names), so a self-supervised sample and a hashtag sample of one 64 px crop sit on the same axis.
Every (method, implementation) is averaged over the seeds it has at that budget; the random initialisation of each
folder's seeds is drawn as the floor.

``--hashtag RUN`` adds a ``tagsight pretrain`` hashtag run as a reference point (repeat it for several budgets):
its budget from the run's ``config.yaml`` (loop.epochs x data.epoch_length samples of model.img_size), its top-1
from the ``tagsight eval knn`` and ``tagsight eval linear`` results the run holds (``RUN/transfer/*.json``), which
use the same protocol as the bench's probes. Prints the points as a Markdown table.

``--save-points FILE`` writes every point with the seeds behind it (``bench/ssl/results/curve_points.json`` is the
curve of docs/results.md); ``--points FILE`` reads such a file back and merges it with new folders, so that a curve
outlives the folders it was drawn from. Entries of one budget are averaged weighted by their seed counts; a random
floor met again for a seed is dropped (the same weights), a trained seed met twice is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

PROBES = (("knn_top1", "kNN top-1"), ("linear_top1", "linear top-1"))
COLOURS = {"swav": "#d62728", "dino": "#1f77b4", "hashtags": "#2ca02c"}


Point = tuple[int, int, float, float, tuple[int, ...]]   # (backbone pixels, photos seen, kNN %, linear %, seeds)
Curves = dict[tuple[str, str], list[Point]]
Cell = tuple[str, str, int, int]                          # (method, impl, backbone pixels, photos seen)
Entry = tuple[tuple[int, ...], float, float]              # (seeds, mean kNN %, mean linear %)
Cells = dict[Cell, list[Entry]]


def crop_pixels(preset: Path) -> int:
    """Pixels of one sample's crops through the student under a multi-crop preset (or one square crop)."""
    cfg = yaml.safe_load(preset.read_text())
    crops = cfg.get("data", {}).get("multicrop")
    if not crops:
        return int(cfg["model"]["img_size"]) ** 2
    return int(crops["n_global"]) * int(crops["global_size"]) ** 2 + int(crops["n_local"]) * int(crops["local_size"]) ** 2


def split_folder(arg: str) -> tuple[Path, set[str] | None]:
    """``FOLDER`` or ``FOLDER:METHOD[,METHOD]`` (only those methods' runs, e.g. when a preset was replaced since)."""
    folder, _, methods = arg.rpartition(":") if ":" in arg else (arg, "", "")
    return Path(folder), (set(methods.split(",")) if methods else None)


def _bench_runs(folder: Path, methods: set[str] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(pixels per sample, run) for each run of a bench/ssl results.json (random init always, else ``methods``)."""
    doc = json.loads((folder / "results.json").read_text())
    presets = doc["spec"]["presets"]
    return [(crop_pixels(REPO / presets[r["method"]]), r) for r in doc["runs"]
            if "diverged_at" not in r and (methods is None or r["impl"] == "random" or r["method"] in methods)]


def bench_cells(folders: list[Path], methods: list[set[str] | None] | None = None) -> Cells:
    """Every run of the folders as one seed's entry in its cell; random init under ("-", "random")."""
    cells: Cells = defaultdict(list)
    for folder, only in zip(folders, methods or [None] * len(folders)):
        for pixels, r in _bench_runs(folder, only):
            key = ("-", "random") if r["impl"] == "random" else (r["method"], r["impl"])
            seen = r["steps"] * r["batch"]
            cells[(*key, seen * pixels, seen)].append(((int(r["seed"]),), 100 * r["knn_top1"], 100 * r["linear_top1"]))
    return cells


def ledger_cells(path: Path) -> Cells:
    """The points a ``--save-points`` file holds (each a mean over its seeds), as entries of their cells."""
    cells: Cells = defaultdict(list)
    for row in json.loads(path.read_text())["points"]:
        cell = (row["method"], row["impl"], int(row["backbone_pixels"]), int(row["photos_seen"]))
        cells[cell].append((tuple(int(s) for s in row["seeds"]), float(row["knn_top1"]), float(row["linear_top1"])))
    return cells


def _merge(cell: Cell, entries: list[Entry]) -> Entry:
    """One cell's entries as one seed-weighted mean. A random floor met again for a seed is the same weights (it sees
    no photos), so the repeat is dropped; a trained seed met twice is the same run counted twice: ValueError."""
    kept: list[Entry] = []
    seen: set[int] = set()
    for seeds, knn, lin in entries:
        if seen & set(seeds):
            if cell[1] == "random" and set(seeds) <= seen:
                continue
            raise ValueError(f"{cell[0]} ({cell[1]}) at {cell[3]:,} photos seen: seed(s) "
                             f"{sorted(seen & set(seeds))} given twice")
        seen |= set(seeds)
        kept.append((seeds, knn, lin))
    weights = [len(seeds) for seeds, _, _ in kept]
    knn = sum(w * e[1] for w, e in zip(weights, kept)) / sum(weights)
    lin = sum(w * e[2] for w, e in zip(weights, kept)) / sum(weights)
    return tuple(sorted(seen)), knn, lin


def combine(*parts: Cells) -> Curves:
    """(method, impl) -> points sorted by budget, each cell's entries from every part merged (``_merge``)."""
    cells: Cells = defaultdict(list)
    for part in parts:
        for cell, entries in part.items():
            cells[cell].extend(entries)
    out: Curves = defaultdict(list)
    for cell, entries in sorted(cells.items()):
        seeds, knn, lin = _merge(cell, entries)
        out[cell[:2]].append((cell[2], cell[3], knn, lin, seeds))
    return dict(out)


def points(folders: list[Path], methods: list[set[str] | None] | None = None) -> Curves:
    """(method, impl) -> sorted points of bench/ssl folders; ``methods[i]`` limits folder i."""
    return combine(bench_cells(folders, methods))


def hashtag_cells(runs: list[Path]) -> Cells:
    """Hashtag pretraining runs as ("hashtags", "tagsight") entries: budget from the run's config (epochs x epoch
    length samples of one img_size crop), top-1 from its ``tagsight eval`` results; ValueError if one is missing."""
    cells: Cells = defaultdict(list)
    for run in runs:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        seen = int(cfg["loop"]["epochs"]) * int(cfg["data"]["epoch_length"])
        top1 = {}
        for path in sorted((run / "transfer").glob("*.json")):
            result = json.loads(path.read_text())
            top1[result["method"]] = 100 * float(result["metrics"]["top1"])
        if not {"knn", "linear"} <= top1.keys():
            raise ValueError(f"{run}: no kNN and linear results in {run / 'transfer'} (run tagsight eval knn|linear)")
        cell = ("hashtags", "tagsight", seen * int(cfg["model"]["img_size"]) ** 2, seen)
        cells[cell].append(((int(cfg.get("seed", 0)),), top1["knn"], top1["linear"]))
    return cells


def save_points(curves: Curves, path: Path) -> None:
    """Write the points (seed lists and means) as a file ``--points`` reads back."""
    rows = [{"method": method, "impl": impl, "photos_seen": seen, "backbone_pixels": pixels, "seeds": list(seeds),
             "knn_top1": round(knn, 2), "linear_top1": round(lin, 2)}
            for (method, impl), pts in sorted(curves.items()) for pixels, seen, knn, lin, seeds in pts]
    path.write_text(json.dumps({"units": "top-1 in percent, mean over seeds", "points": rows}, indent=1) + "\n")


def table(curves: Curves) -> str:
    lines = ["| method | implementation | photos seen | backbone pixels (M) | seeds | kNN top-1 % | linear top-1 % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (method, impl), pts in sorted(curves.items()):
        lines += [f"| {method} | {impl} | {seen:,} | {pixels / 1e6:,.0f} | {len(seeds)} | {knn:.1f} | {lin:.1f} |"
                  for pixels, seen, knn, lin, seeds in pts]
    return "\n".join(lines) + "\n"


def plot(curves: Curves, out: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, (i, name) in zip(axes, ((2, PROBES[0][1]), (3, PROBES[1][1]))):
        for (method, impl), pts in sorted(curves.items()):
            if impl == "random":
                ax.axhline(pts[0][i], color="grey", linestyle=":", label="random init")
                continue
            ours = impl == "tagsight"    # colour by method; tagsight filled and solid, other implementations hollow
            ax.plot([p[0] / 1e6 for p in pts], [p[i] for p in pts], color=COLOURS.get(method, "black"),
                    marker="o" if ours else "s", markerfacecolor=None if ours else "none",
                    linestyle="-" if ours else "--", label=f"{method} ({impl})")
        ax.set_xscale("log")
        budgets = sorted({float(f"{p[0] / 1e6:.2g}") for pts in curves.values() for p in pts})   # 100 and 101: one tick
        ax.set_xticks(budgets, [f"{b:,.0f}" for b in budgets])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("pretraining compute: backbone pixels (millions)")
        ax.set_title(f"imagenette-160 val, {name}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 %")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))   # outside: no point hidden
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", help="bench/ssl/run.py --out folders (FOLDER or FOLDER:METHOD,...)")
    p.add_argument("--hashtag", type=Path, action="append", default=[], metavar="RUN",
                   help="a tagsight pretrain hashtag run evaluated with tagsight eval knn and linear (repeatable)")
    p.add_argument("--points", type=Path, action="append", default=[], metavar="FILE",
                   help="points written before by --save-points, merged with the folders' (repeatable)")
    p.add_argument("--save-points", type=Path, metavar="FILE", help="write every point with its seeds to FILE")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    a = p.parse_args(argv)
    folders, methods = zip(*map(split_folder, a.folders)) if a.folders else ((), ())
    missing = [str(f) for f in folders if not (f / "results.json").is_file()]
    missing += [str(f) for f in a.points if not f.is_file()]
    if missing or not (folders or a.points or a.hashtag):
        sys.stderr.write(f"no results.json or points file in {', '.join(missing)}\n" if missing else "nothing to draw\n")
        return 2
    try:
        curves = combine(bench_cells(list(folders), list(methods)), hashtag_cells(a.hashtag),
                         *map(ledger_cells, a.points))
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"cannot read the results: {exc}\n")
        return 2
    plot(curves, a.out)
    if a.save_points:
        save_points(curves, a.save_points)
    sys.stdout.write(table(curves))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
