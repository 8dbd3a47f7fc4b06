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
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

PROBES = (("knn_top1", "kNN top-1"), ("linear_top1", "linear top-1"))
COLOURS = {"swav": "#d62728", "dino": "#1f77b4", "hashtags": "#2ca02c"}


Point = tuple[int, int, float, float, int]     # (backbone pixels, photos seen, kNN %, linear %, seeds)
Curves = dict[tuple[str, str], list[Point]]


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


def points(folders: list[Path], methods: list[set[str] | None] | None = None) -> Curves:
    """(method, impl) -> sorted points; random init under ("-", "random"). ``methods[i]`` limits folder i."""
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for folder, only in zip(folders, methods or [None] * len(folders)):
        for pixels, r in _bench_runs(folder, only):
            key = ("-", "random") if r["impl"] == "random" else (r["method"], r["impl"])
            seen = r["steps"] * r["batch"]
            groups[(*key, seen * pixels, seen)].append(r)
    out: Curves = defaultdict(list)
    for (method, impl, pixels, seen), rs in sorted(groups.items()):
        if impl == "random":        # the same floor whatever the budget: once per seed
            rs = list({r["seed"]: r for r in rs}.values())
        out[(method, impl)].append((pixels, seen, 100 * statistics.fmean(r["knn_top1"] for r in rs),
                                    100 * statistics.fmean(r["linear_top1"] for r in rs), len(rs)))
    return dict(out)


def hashtag_point(run: Path) -> Point:
    """A hashtag pretraining run's budget and its evaluated top-1 (kNN, linear); ValueError if one is missing."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    seen = int(cfg["loop"]["epochs"]) * int(cfg["data"]["epoch_length"])
    top1 = {}
    for path in sorted((run / "transfer").glob("*.json")):
        result = json.loads(path.read_text())
        top1[result["method"]] = 100 * float(result["metrics"]["top1"])
    if not {"knn", "linear"} <= top1.keys():
        raise ValueError(f"{run}: no kNN and linear results in {run / 'transfer'} (run tagsight eval knn|linear)")
    return (seen * int(cfg["model"]["img_size"]) ** 2, seen, top1["knn"], top1["linear"], 1)


def add_hashtag_runs(curves: Curves, runs: list[Path]) -> Curves:
    """The curves with the hashtag runs as ("hashtags", "tagsight"), sorted by budget."""
    if runs:
        curves = {**curves, ("hashtags", "tagsight"): sorted(hashtag_point(r) for r in runs)}
    return curves


def table(curves: Curves) -> str:
    lines = ["| method | implementation | photos seen | backbone pixels (M) | seeds | kNN top-1 % | linear top-1 % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (method, impl), pts in sorted(curves.items()):
        lines += [f"| {method} | {impl} | {seen:,} | {pixels / 1e6:,.0f} | {n} | {knn:.1f} | {lin:.1f} |"
                  for pixels, seen, knn, lin, n in pts]
    return "\n".join(lines) + "\n"


def plot(curves: Curves, out: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
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
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="bench/ssl/run.py --out folders (FOLDER or FOLDER:METHOD,...)")
    p.add_argument("--hashtag", type=Path, action="append", default=[], metavar="RUN",
                   help="a tagsight pretrain hashtag run evaluated with tagsight eval knn and linear (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    a = p.parse_args(argv)
    folders, methods = zip(*map(split_folder, a.folders))
    missing = [str(f) for f in folders if not (f / "results.json").is_file()]
    if missing:
        sys.stderr.write(f"no results.json in {', '.join(missing)}\n")
        return 2
    try:
        curves = add_hashtag_runs(points(list(folders), list(methods)), a.hashtag)
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"cannot read a hashtag run: {exc}\n")
        return 2
    plot(curves, a.out)
    sys.stdout.write(table(curves))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
