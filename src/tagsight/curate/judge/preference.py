"""``tagsight judge stats``: the unblinded result of a pair study.

Each rater's standing vote on a pair (the latest, undone votes left out) is mapped through
``unblind.json`` to ``after``, ``before`` or ``tie``. Per rater and over all votes:

- ``win_rate``: after wins / (after wins + before wins), ties left out, with its Wilson 95% interval;
- ``win_rate_ties_half``: (after wins + ties / 2) / votes, with the Wilson interval of that share;
- ``sign_test_p``: two-sided exact sign test of after wins against before wins (ties left out);
- ``agreement``: for raters who judged the same pairs, percent agreement and Cohen's kappa over the
  three outcomes, weighted by the pairs each two raters share, and Fleiss' kappa over the pairs that
  every rater judged (``fleiss_pairs`` of them);
- ``pooled``: every rater's decisive votes together, after wins / decisive votes, with a 95% interval
  from a bootstrap that resamples pairs (a pair judged by several raters is one cluster: its votes
  are not independent, so the Wilson interval of ``overall`` is too narrow when raters overlap);
- ``side_bias``: the share of decisive votes that went to the LEFT side whatever the model (0.5 when
  raters have no side habit), with its Wilson interval, and the share of no-preference votes.
Votes of different raters on one pair are counted as separate votes in ``overall``.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

from tagsight.curate.judge.pairs import PairStudy, chosen_model
from tagsight.curate.judge.stats import cluster_bootstrap_ratio, fleiss_kappa, sign_test, wilson_interval
from tagsight.curate.judge.votes import latest_votes, read_votes
from tagsight.curate.review.agreement import cohen_kappa
from tagsight.fsio import ReasonError, atomic_write_text

PREFERENCE_FILE = "preference.json"


def tally(outcomes: list[str]) -> dict[str, Any]:
    """Win rates of ``after`` over ``before`` from a list of outcomes (``after``/``before``/``tie``)."""
    c = Counter(outcomes)
    after, before, ties = c["after"], c["before"], c["tie"]
    decisive, votes = after + before, after + before + ties
    return {"votes": votes, "after": after, "before": before, "ties": ties,
            "win_rate": after / decisive if decisive else None, "win_rate_ci95": list(wilson_interval(after, decisive)),
            "win_rate_ties_half": (after + ties / 2) / votes if votes else None,
            "win_rate_ties_half_ci95": list(wilson_interval(after + ties / 2, votes)),
            "sign_test_p": sign_test(after, before)}


def agreement(outcome: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Percent agreement and Cohen's kappa of every two raters on the pairs both judged (weighted by overlap)."""
    by_rater: dict[str, dict[str, str]] = {}
    for (pair, rater), o in outcome.items():
        by_rater.setdefault(rater, {})[pair] = o
    rows: list[dict[str, Any]] = []
    shared = 0
    for x, y in combinations(sorted(by_rater), 2):
        common = sorted(set(by_rater[x]) & set(by_rater[y]))
        if common:
            a, b = [by_rater[x][p] for p in common], [by_rater[y][p] for p in common]
            rows.append({"raters": [x, y], "pairs": len(common),
                         "percent_agreement": sum(u == v for u, v in zip(a, b)) / len(common),
                         "cohen_kappa": cohen_kappa(a, b)})
            shared += len(common)
    kappas = [(r["cohen_kappa"], r["pairs"]) for r in rows if r["cohen_kappa"] == r["cohen_kappa"]]
    everyone = sorted(set.intersection(*(set(v) for v in by_rater.values()))) if by_rater else []
    fleiss = fleiss_kappa([[by_rater[r][p] for r in sorted(by_rater)] for p in everyone]) \
        if len(by_rater) >= 2 and everyone else float("nan")
    return {"rater_pairs": rows, "shared_judgements": shared,
            "percent_agreement": sum(r["percent_agreement"] * r["pairs"] for r in rows) / shared if shared else None,
            "cohen_kappa": sum(k * n for k, n in kappas) / sum(n for _, n in kappas) if kappas else None,
            "fleiss_pairs": len(everyone) if len(by_rater) >= 2 else 0,
            "fleiss_kappa": None if fleiss != fleiss else fleiss}


def pooled(outcome: dict[tuple[str, str], str], seed: int = 0) -> dict[str, Any]:
    """After wins / decisive votes over all raters, with a bootstrap interval resampling pairs."""
    wins: dict[str, float] = {}
    decisive: dict[str, float] = {}
    for (pair, _), o in outcome.items():
        wins[pair] = wins.get(pair, 0.0) + (o == "after")
        decisive[pair] = decisive.get(pair, 0.0) + (o != "tie")
    pairs = sorted(wins)
    total = sum(decisive.values())
    lo, hi = cluster_bootstrap_ratio([wins[p] for p in pairs], [decisive[p] for p in pairs], seed=seed)
    return {"pairs": len(pairs), "decisive_votes": int(total),
            "win_rate": sum(wins.values()) / total if total else None, "win_rate_ci95_pairs_bootstrap": [lo, hi]}


def side_bias(choices: list[str]) -> dict[str, Any]:
    c = Counter(choices)
    decisive = c["left"] + c["right"]
    return {"left": c["left"], "right": c["right"], "none": c["none"],
            "left_share": c["left"] / decisive if decisive else None,
            "left_share_ci95": list(wilson_interval(c["left"], decisive)),
            "none_share": c["none"] / len(choices) if choices else None}


def preference_stats(study_dir: str | Path) -> dict[str, Any]:
    """The unblinded statistics of a study (also written to ``STUDY/preference.json``)."""
    study = PairStudy.load(study_dir)
    secret = study.unblind()
    rows = read_votes(study.dir)
    standing = latest_votes(rows)
    unknown = sorted({p for p, _ in standing if p not in secret["pairs"]})
    if unknown:
        raise ReasonError("unknown_pair", f"votes name pairs the unblinding does not know: {unknown[:5]}")
    outcome = {k: chosen_model(c, secret["pairs"][k[0]]["left"]) for k, c in standing.items()}
    raters = sorted({r for _, r in standing})
    result = {"pairs": len(study.pairs), "vote_rows": len(rows), "counted": len(standing),
              "history_rows": len(rows) - len(standing), "raters": raters,
              "pairs_judged": len({p for p, _ in standing}),
              "rater_count": len(raters), "overall": tally(list(outcome.values())), "pooled": pooled(outcome),
              "per_rater": {r: tally([o for (_, who), o in outcome.items() if who == r]) for r in raters},
              "agreement": agreement(outcome), "side_bias": side_bias(list(standing.values())),
              "before": secret["before"], "after": secret["after"]}
    atomic_write_text(study.dir / PREFERENCE_FILE, json.dumps(result, indent=1))
    return result


def read_preference(study_dir: str | Path) -> dict[str, Any] | None:
    path = Path(study_dir) / PREFERENCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
