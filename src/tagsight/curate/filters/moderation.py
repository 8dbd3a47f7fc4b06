"""Offensive or harmful content: the moderation head's answer, where one is configured.

The filter asks a moderation ``App`` (``tagsight heads train --task moderate``; its answer holds
``decision`` in allow / review / block and per-category ``scores``) about every candidate and
rejects ``block`` (and ``review`` too when ``reject_review``). Without a moderation app the filter
is recorded as skipped for every sample: curation never pretends it checked what it did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tagsight.curate.filters.base import FILTERS, Candidate, Filter


@FILTERS.register("moderation")
@dataclass
class ModerationFilter(Filter):
    reject_review: bool = False
    app: Any = field(default=None, repr=False)   # a tagsight.apps.App answering {"decision", "scores"}
    name = "moderation"
    metrics = ("moderation_max_score", "moderation_level")
    cost = 20
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    LEVELS = {"allow": 0.0, "review": 1.0, "block": 2.0}

    def applies(self, c: Candidate) -> bool:
        return self.app is not None

    def prepare(self, candidates: list[Candidate]) -> None:
        todo = [c for c in candidates if self.applies(c)]
        answers = self.app.predict([c.image for c in todo]) if todo else []
        self._answers = {c.key: a for c, a in zip(todo, answers)}

    def score(self, c: Candidate) -> dict[str, float]:
        answer = self._answers[c.key]
        decision = answer.get("decision")
        if decision not in self.LEVELS:
            raise ValueError(f"moderation app answered decision {decision!r}, expected one of {sorted(self.LEVELS)}")
        scores = [float(v) for v in (answer.get("scores") or {}).values()]
        return {"moderation_max_score": max(scores, default=0.0), "moderation_level": self.LEVELS[decision]}

    def reject(self, s: dict[str, float]) -> str | None:
        if s["moderation_level"] >= 2.0 or (self.reject_review and s["moderation_level"] >= 1.0):
            return "moderation_flagged"
        return None
