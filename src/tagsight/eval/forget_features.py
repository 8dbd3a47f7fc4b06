"""The cached-features artifact kind of ``forget``: feature files that hold a forgotten post are deleted.

A feature file (``tagsight.eval.features``) of an ingested dataset records the post key of every
row in its header. Deleting the whole file is the purge: it is a cache, its key includes the
dataset's tombstone state, and the next extraction leaves the forgotten posts out and writes a
new file. Files of class folders (no posts) are never affected.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tagsight.fsio import ReasonError
from tagsight.lineage import read_artifact
from tagsight.privacy.forget import Forgotten, register_forgetter

log = logging.getLogger(__name__)


def _is_feature_file(path: Path) -> bool:
    """A feature file that records its posts (checkpoints and unreadable files are not; the latter are logged)."""
    if "checkpoints" in path.parts or not path.is_file():
        return False
    try:
        return read_artifact(path).post_keys is not None
    except ReasonError as exc:
        log.warning("%s: %s (skipped)", exc.reason, exc)
        return False


def find(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.safetensors") if _is_feature_file(p))


def affected(path: Path, forgotten: Forgotten) -> int:
    keys = read_artifact(path).post_keys or frozenset()
    return sum(forgotten.forgets(k) for k in keys)


def purge(path: Path, forgotten: Forgotten) -> str:
    n = affected(path, forgotten)
    path.unlink(missing_ok=True)
    return f"deleted: the file held {n} forgotten posts (recomputed without them on next use)"


register_forgetter("features", find, affected, purge, stage=20)
