"""Measure pair scores and visualness against a social-imagenette ``truth.jsonl``.

The simulation records the kind of every hashtag of every post (``true_concept``, ``wrong_concept``,
``nonvisual_noise``, ``optout``). A scored pair (sample, label) takes the kind of the hashtags that
map to its label: ``true_concept`` if any of them is, else ``wrong_concept`` if any is, else
``nonvisual_noise``. Flagging a pair = its score is below a threshold; the pairs that *should* be
flagged are the wrong-concept and non-visual ones. A label takes the majority kind of its pairs;
``visualness_ranking`` says where the simulated noise labels land among all labels.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from tagsight.metrics import average_precision
from tagsight.fsio import ReasonError
from tagsight.storage import dataset_path, read_bytes

log = logging.getLogger(__name__)

KINDS = ("true_concept", "wrong_concept", "nonvisual_noise")
BAD_KINDS = ("wrong_concept", "nonvisual_noise")
DEFAULT_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
DEFAULT_LABEL_THRESHOLDS = (0.005, 0.01, 0.02, 0.05)


def load_truth(path: str | Path) -> dict[str, dict[str, str]]:
    """post_id -> {hashtag as written: kind} from a social-imagenette ``truth.jsonl``."""
    path = dataset_path(path) if isinstance(path, str) else path   # a local Path, or an fsspec URL read through fsspec
    try:
        text = read_bytes(path).decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ReasonError("truth_missing", f"{path} does not exist (social-imagenette writes SPLIT/truth.jsonl)") from None
    out: dict[str, dict[str, str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
            out[row["post_id"]] = {t["tag"]: t["kind"] for t in row["tags"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ReasonError("truth_invalid", f"{path}:{n}: not a truth line ({exc!r})") from None
    return out


def pair_kinds(pairs: pa.Table, truth: dict[str, dict[str, str]]) -> np.ndarray:
    """The truth kind of every row of ``pairs.parquet`` (see the module docstring)."""
    cols = pairs.select(["post_key", "hashtags"]).to_pydict()
    kinds, missing = [], 0
    for post_key, tags in zip(cols["post_key"], cols["hashtags"]):
        known = truth.get(post_key.split("/", 1)[-1])
        if known is None:
            missing += 1
            kinds.append("unknown")
            continue
        found = {known.get(t, "unknown") for t in tags}
        kinds.append(next((k for k in KINDS if k in found), "unknown"))
    if missing:
        raise ReasonError("truth_mismatch", f"{missing} of {len(kinds)} scored pairs belong to posts absent "
                                            "from the truth file: is it the truth of this split?")
    return np.asarray(kinds)


def flag_metrics(scores: np.ndarray, bad: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Precision and recall of flagging pairs with ``score < threshold`` as wrong or irrelevant."""
    flagged = scores < threshold
    hits = int((flagged & bad).sum())
    return {"threshold": float(threshold), "flagged": int(flagged.sum()), "bad": int(bad.sum()), "hits": hits,
            "precision": hits / int(flagged.sum()) if flagged.any() else float("nan"),
            "recall": hits / int(bad.sum()) if bad.any() else float("nan"),
            "true_pairs_lost": int((flagged & ~bad).sum())}


def pr_curve(scores: np.ndarray, bad: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """Precision and recall of flagging at ``points`` thresholds (quantiles of the scores)."""
    thresholds = np.unique(np.quantile(scores, np.linspace(0, 1, points)))
    rows = [flag_metrics(scores, bad, t) for t in thresholds[1:]]
    return {"threshold": [r["threshold"] for r in rows], "precision": [r["precision"] for r in rows],
            "recall": [r["recall"] for r in rows]}


def visualness_ranking(labels: Sequence[dict[str, Any]], pairs: pa.Table, kinds: np.ndarray) -> list[dict[str, Any]]:
    """Labels by decreasing visualness with their rank, majority truth kind and kind counts."""
    per_label: dict[int | None, Counter[str]] = {}   # label index -> truth kind counts (the column is nullable)
    for label, kind in zip(pairs.column("label").to_pylist(), kinds):
        per_label.setdefault(label, Counter())[kind] += 1
    scored = [r for r in labels if r["visualness"] is not None]
    ranked = sorted(scored, key=lambda r: (-r["visualness"], r["index"]))
    out = []
    for rank, row in enumerate(ranked, 1):
        counts = per_label.get(row["index"], Counter())
        out.append({"rank": rank, "index": row["index"], "label": row["label"], "visualness": row["visualness"],
                    "support": row["support"], "kind": counts.most_common(1)[0][0] if counts else "unknown",
                    "kinds": dict(counts)})
    return out


def ranking_summary(ranking: list[dict[str, Any]]) -> dict[str, Any]:
    """Where noise labels land: ranks, share in the bottom half, and the AUC of concept over noise labels."""
    noise = np.array([r["rank"] for r in ranking if r["kind"] == "nonvisual_noise"])
    concept = np.array([r["rank"] for r in ranking if r["kind"] in ("true_concept", "wrong_concept")])
    n = len(ranking)
    auc = float((concept[:, None] < noise[None, :]).mean()) if len(noise) and len(concept) else float("nan")
    return {"labels": n, "noise_labels": int(len(noise)), "concept_labels": int(len(concept)),
            "noise_median_rank": float(np.median(noise)) if len(noise) else None,
            "concept_median_rank": float(np.median(concept)) if len(concept) else None,
            "noise_in_bottom_half": float((noise > n / 2).mean()) if len(noise) else None,
            "best_noise_rank": int(noise.min()) if len(noise) else None,
            "worst_concept_rank": int(concept.max()) if len(concept) else None,
            "concept_above_noise_auc": auc}


def label_policy_metrics(pairs: pa.Table, labels: Sequence[dict[str, Any]], bad: np.ndarray,
                         threshold: float) -> dict[str, float | int]:
    """Flagging as the ``labels`` policy does: every pair of a label whose visualness is below ``threshold``."""
    vis = {r["index"]: r["visualness"] for r in labels}
    low = np.array([vis.get(l) is None or vis[l] < threshold for l in pairs.column("label").to_pylist()], dtype=bool)
    # flag_metrics flags score < t: give flagged pairs score 0 and the others 1, at t = 0.5
    return {**flag_metrics(np.where(low, 0.0, 1.0), bad, 0.5), "threshold": float(threshold)}


def evaluate_truth(pairs: pa.Table, labels: Sequence[dict[str, Any]], truth: dict[str, dict[str, str]],
                   thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                   label_thresholds: Sequence[float] = DEFAULT_LABEL_THRESHOLDS) -> dict[str, Any]:
    """Everything the docs report: kind counts, flagging P/R at thresholds and PR curve, AP, visualness ranking."""
    kinds = pair_kinds(pairs, truth)
    scores = pairs.column("score").to_numpy().astype(np.float64)
    bad = np.isin(kinds, BAD_KINDS)
    ranking = visualness_ranking(labels, pairs, kinds)
    by_kind = {k: {"pairs": int((kinds == k).sum()),
                   "median_score": float(np.median(scores[kinds == k])) if (kinds == k).any() else None}
               for k in (*KINDS, "unknown")}
    result = {"pairs": len(kinds), "by_kind": by_kind,
              "flag_ap": average_precision(-scores, bad) if bad.any() else None,
              "flag_chance": float(bad.mean()),
              "at_thresholds": [flag_metrics(scores, bad, t) for t in thresholds],
              "pr_curve": pr_curve(scores, bad),
              "label_policy": [label_policy_metrics(pairs, labels, bad, t) for t in label_thresholds],
              "ranking_summary": ranking_summary(ranking), "ranking": ranking}
    log.info("flagging AP %.3f (chance %.3f) over %d pairs", result["flag_ap"] or float("nan"),
             result["flag_chance"], len(kinds))
    return result
