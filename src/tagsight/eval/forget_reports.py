"""The decontamination reports of ``tagsight eval`` as an artifact kind of ``forget``.

A transfer result (``RUN/transfer/*.json``) and the report of ``tagsight eval decontaminate --out``
list, per split, the pool samples an evaluation image matched (``matches``: ``{"image", "pool":
"source/post_id#i", ...}``). A forgotten post's matches are removed from every list; the split's counts
keep what was found at the time, and ``forgotten_matches_removed`` says how many entries went.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tagsight.fsio import atomic_write_text
from tagsight.privacy.forget import Forgotten, register_forgetter

log = logging.getLogger(__name__)

MAX_BYTES = 64 << 20   # larger JSON files are no report of ours: not read


def match_lists(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping under ``node`` that holds a ``matches`` list of pool matches."""
    if isinstance(node, dict):
        matches = node.get("matches")
        if isinstance(matches, list) and any(isinstance(m, dict) and "pool" in m for m in matches):
            yield node
        for value in node.values():
            yield from match_lists(value)
    elif isinstance(node, list):
        for value in node:
            yield from match_lists(value)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.stat().st_size <= MAX_BYTES else None
    except (OSError, ValueError):
        return None


def _forgotten(match: Any, forgotten: Forgotten) -> bool:
    pool = match.get("pool") if isinstance(match, dict) else None
    return isinstance(pool, str) and forgotten.forgets(pool.split("#", 1)[0])


def find(root: Path) -> list[Path]:
    return [p for p in sorted(Path(root).rglob("*.json")) if any(True for _ in match_lists(_read(p)))]


def affected(path: Path, forgotten: Forgotten) -> int:
    return sum(_forgotten(m, forgotten) for node in match_lists(_read(path)) for m in node["matches"])


def purge(path: Path, forgotten: Forgotten) -> str:
    report = _read(path)
    removed = 0
    for node in match_lists(report):
        kept = [m for m in node["matches"] if not _forgotten(m, forgotten)]
        gone = len(node["matches"]) - len(kept)
        if gone:
            node["matches"] = kept
            node["forgotten_matches_removed"] = node.get("forgotten_matches_removed", 0) + gone
            removed += gone
    atomic_write_text(path, json.dumps(report, indent=1))
    log.info("%s: %d match(es) of forgotten posts removed", path, removed)
    return f"removed {removed} match(es) of forgotten posts"


register_forgetter("decontamination", find, affected, purge, stage=70)
