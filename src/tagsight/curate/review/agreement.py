"""Agreement between reviewers: how far people who judged the same photos agree.

- generalist stage: percent agreement and Cohen's kappa over every pair of reviewers, on the
  photos both judged (kappa corrects for the agreement two reviewers reach by chance given how
  often each keeps);
- specialist stage: per aspect, the mean absolute difference of two reviewers' 1-5 ratings and the
  share of photos where they differ by at most one point.
Figures are averaged over reviewer pairs, weighted by the photos each pair shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import Any

from tagsight.curate.reviews import ASPECTS, latest


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two equally long label lists (nan when chance agreement is total)."""
    n = len(a)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    chance = sum((a.count(v) / n) * (b.count(v) / n) for v in labels)
    return float("nan") if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def _by_reviewer(rows: Iterable[dict[str, Any]], stage: str) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (key, reviewer), r in latest(rows, stage).items():
        out.setdefault(reviewer, {})[key] = r
    return out


def _weighted(pairs: list[tuple[float, int]]) -> float | None:
    total = sum(n for _, n in pairs)
    return None if total == 0 else sum(v * n for v, n in pairs if v == v) / total


def generalist_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    people = _by_reviewer(rows, "generalist")
    percent, kappa, shared = [], [], 0
    for x, y in combinations(sorted(people), 2):
        common = sorted(set(people[x]) & set(people[y]))
        if not common:
            continue
        a, b = [people[x][k]["decision"] for k in common], [people[y][k]["decision"] for k in common]
        percent.append((sum(u == v for u, v in zip(a, b)) / len(common), len(common)))
        kappa.append((cohen_kappa(a, b), len(common)))
        shared += len(common)
    return {"reviewers": len(people), "judgements": sum(len(v) for v in people.values()),
            "kept": sum(r["decision"] == "keep" for v in people.values() for r in v.values()),
            "pair_overlap": shared, "percent_agreement": _weighted(percent), "cohen_kappa": _weighted(kappa)}


def specialist_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    people = _by_reviewer(rows, "specialist")
    per_aspect: dict[str, dict[str, float | None]] = {}
    for aspect in ASPECTS:
        mad, within_one = [], []
        for x, y in combinations(sorted(people), 2):
            common = sorted(set(people[x]) & set(people[y]))
            if common:
                diffs = [abs(people[x][k][aspect] - people[y][k][aspect]) for k in common]
                mad.append((sum(diffs) / len(diffs), len(diffs)))
                within_one.append((sum(d <= 1 for d in diffs) / len(diffs), len(diffs)))
        per_aspect[aspect] = {"mean_abs_diff": _weighted(mad), "within_one": _weighted(within_one)}
    return {"reviewers": len(people), "judgements": sum(len(v) for v in people.values()), "aspects": per_aspect}


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"generalist": generalist_agreement(rows), "specialist": specialist_agreement(rows)}
