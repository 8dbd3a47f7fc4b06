"""Alt-text calibration on social-imagenette: check-half precision of the concepts chosen per target precision.

    python3 bench/apps/calibration.py RUN_DIR --truth /work/exp/si/train/truth.jsonl --out docs/img

Embeds the run's held-out posts once (``tagsight.apps.calibration.load_heldout``), fits Platt
scaling on the fit half, and for each (target precision, z) chooses the alt-text concepts on the fit
half (``choose_concepts``, as ``tagsight apps calibrate`` does) and measures them on the check half:
precision against the held-out hashtags (what calibration sees) and, with ``--truth``
(social-imagenette's truth.jsonl: the photo's true ImageNet synset), against the true class of the
photo for concepts that are Imagenette classes. Prints a markdown table; writes a PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tagsight.apps.calibration import (CALIBRATORS, CalibrationConfig, presence, choose_concepts, heldout_rows,
                                       load_heldout)
from tagsight.apps.embedder import Embedder
from tagsight.apps.run import load_run, post_authors
from tagsight.privacy.tombstones import load_tombstones

TARGETS = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
ZS = (1.645, 1.0, 0.0)


def truth_synsets(path: Path) -> dict[str, str]:
    return {r["post_id"]: r["synset"] for r in map(json.loads, path.read_text().splitlines())}


def sweep(run_dir: Path, truth: Path | None) -> tuple[list[dict], dict]:
    run = load_run(run_dir)
    vocab = run.vocab()
    base = CalibrationConfig()
    held, index = load_heldout(run, Embedder(run.backbone), vocab, base)
    rows, _ = heldout_rows(run, index, vocab, load_tombstones(run.dataset_dir), post_authors(run.dataset_dir))
    true = truth_synsets(truth) if truth else {}
    syn = np.asarray([true.get(index.post_keys[i].split("/", 1)[1], "") for i in rows])
    fit = ~held.check
    probs = CALIBRATORS.create("platt", loss=run.loss).fit(held.logits[fit], held.targets[fit]).probabilities(held.logits)
    classes = set(syn.tolist())
    out = []
    for z in ZS:
        for target in TARGETS:
            cfg = CalibrationConfig(target_precision=target, z=z)
            said = [c for c in choose_concepts(probs, presence(held.targets), held.check, vocab, cfg) if c["alt_text"]]
            pred = sum(c["check"]["predicted"] for c in said)
            tp = sum(round(c["check"]["precision"] * c["check"]["predicted"]) for c in said if c["check"]["predicted"])
            visual = [c for c in said if c["label"] in classes]
            hits = [held.check & (probs[:, c["index"]] >= c["threshold"]) for c in visual]
            true_tp = sum(int((syn[h] == c["label"]).sum()) for c, h in zip(visual, hits))
            true_n = sum(int(h.sum()) for h in hits)
            out.append({"z": z, "target": target, "concepts": [c["name"] for c in said],
                        "per_concept": [(c["name"], c["check"]["precision"], c["check"]["predicted"]) for c in said],
                        "check_predictions": pred, "check_precision_hashtags": tp / pred if pred else None,
                        "check_predictions_imagenette": true_n,
                        "check_precision_true_class": true_tp / true_n if true_n else None})
    return out, held.counts


def table(rows: list[dict]) -> str:
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["| z | target | concepts said | check predictions | check precision (hashtags) | check precision (true class) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{n} {p:.2f}/{k}" if k else f"{n} -/0" for n, p, k in r["per_concept"]) or "none"
        lines.append(f"| {r['z']:g} | {r['target']:g} | {per} | {r['check_predictions']} | "
                     f"{f(r['check_precision_hashtags'])} | {f(r['check_precision_true_class'])} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    from tagsight.report.plots import new_figure

    fig, ax = new_figure((6.4, 4.0))
    for z, marker in zip(ZS, "osD"):
        sel = [r for r in rows if r["z"] == z and r["check_predictions"]]
        ax.plot([r["target"] for r in sel], [r["check_precision_hashtags"] for r in sel], marker=marker,
                label=f"z={z:g}, vs held-out hashtags")
        sel = [r for r in sel if r["check_precision_true_class"] is not None]
        ax.plot([r["target"] for r in sel], [r["check_precision_true_class"] for r in sel], marker=marker,
                linestyle=":", label=f"z={z:g}, vs true class")
    ax.plot([0.25, 0.85], [0.25, 0.85], color="black", linewidth=0.8, label="precision = target")
    ax.set_xlabel("target precision (thresholds chosen on the fit half)")
    ax.set_ylabel("pooled precision on the check half")
    ax.set_xlim(0.25, 0.85)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("alt-text concepts: precision on held-out posts not used to choose them", fontsize=9)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--truth", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("docs/img"))
    args = p.parse_args(argv)
    rows, counts = sweep(args.run, args.truth)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out / "apps_calibration_sweep.png")
    (args.out / "apps_calibration_sweep.json").write_text(json.dumps({"heldout": counts, "rows": rows}, indent=1))
    print(f"held-out posts: {counts}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
