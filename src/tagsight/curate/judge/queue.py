"""What a rater sees next in a pair study: resumable per rater, never told which side is which model.

The queue reads only the public half of the study (``pairs.json``) and the votes; the unblinding
file is never opened by the server. Images are looked up by their opaque id in the study's own
table, never by joining a requested path, so nothing outside ``STUDY/images`` can be served.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tagsight.curate.judge.pairs import IMAGES_DIR, SIDES, PairStudy
from tagsight.curate.judge.votes import UNDO, append_votes, latest_votes, read_votes


class VoteQueue:
    """The voting state of one study for a server process (votes are appended under a lock)."""

    def __init__(self, study_dir: str | Path) -> None:
        self.study = PairStudy.load(study_dir)
        self.by_id = {p["pair"]: p for p in self.study.pairs}
        self.images = {p[s]: self.study.dir / IMAGES_DIR / f"{p[s]}.png" for p in self.study.pairs for s in SIDES}
        self._lock = threading.Lock()
        self._rows = read_votes(self.study.dir)

    def _done(self, rater: str) -> set[str]:
        return {pair for (pair, who) in latest_votes(self._rows) if who == rater}

    def next_items(self, rater: str, n: int = 8) -> dict[str, Any]:
        """The rater's next ``n`` pairs (prompt and opaque image ids only) and their progress."""
        if not rater:
            raise ValueError("a rater name is needed (?rater=NAME)")
        done = self._done(rater)
        todo = [p for p in self.study.pairs if p["pair"] not in done]
        items = [{"pair": p["pair"], "prompt": p["prompt"], "left": p["left"], "right": p["right"]} for p in todo[:n]]
        return {"items": items, "remaining": len(todo), "done": len(done), "total": len(self.study.pairs)}

    def image(self, image_id: str) -> bytes:
        path = self.images.get(image_id)
        if path is None or not path.is_file():
            raise KeyError(image_id)
        return path.read_bytes()

    def record(self, vote: dict[str, Any]) -> None:
        """Validate and store one vote or undo (ValueError for an unknown pair or an undo with nothing to undo)."""
        pair, rater = vote.get("pair"), str(vote.get("rater") or "").strip()
        if pair not in self.by_id:
            raise ValueError(f"unknown pair {pair!r}")
        with self._lock:
            if vote.get("choice") == UNDO and pair not in self._done(rater):
                raise ValueError(f"{rater!r} has no vote on pair {pair} to undo")
            append_votes(self.study.dir, [{"rater": rater, "pair": pair, "choice": vote.get("choice")}])
            self._rows = read_votes(self.study.dir)

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)
