"""Artifact kinds of ``forget`` that cannot drop rows: runs (checkpoints, heads), vocabularies, other lineage records.

Their lineage is followed to the dataset versions they were made from (``tagsight.privacy.trace``);
when those held a forgotten post, ``purge`` writes ``forget_notice.json`` into the artifact's
folder (counts and the tombstone state only: no post id) and the run is listed as "retrain
needed" by ``forget``. A notice already written for the same state is left alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tagsight.fsio import atomic_write_text
from tagsight.lineage import Artifact, iter_artifacts, read_artifact
from tagsight.privacy.forget import FindFn, Forgotten, register_forgetter
from tagsight.privacy.trace import made_from

NOTICE_FILE = "forget_notice.json"
_ACTION = {"run": "retrain", "vocab": "rebuild"}


def _finder(kinds: tuple[str, ...] | None, forget_kind: str | None = None) -> FindFn:
    """Artifacts of ``kinds`` (None: every kind without its own forgetter) whose record names ``forget_kind``
    (a run's ``run.json`` may claim a more specific kind, e.g. ``generator``; plain runs name none)."""
    def find(root: Path) -> list[Path]:
        return [a.path for a in iter_artifacts(root)
                if (a.kind in kinds if kinds else a.kind not in ("dataset", "features", *_ACTION))
                and a.extra.get("forget_kind") == forget_kind and a.path.is_dir()]
    return find


def _held(path: Path, forgotten: Forgotten) -> set[str]:
    """Forgotten posts in the artifact's lineage; path-less parents are looked up under the forget roots."""
    known: list[Artifact] = [a for root in forgotten.roots for a in iter_artifacts(root)]
    return made_from(read_artifact(path), set(forgotten.post_keys), known)


def affected(path: Path, forgotten: Forgotten) -> int:
    return len(_held(path, forgotten))


def purge(path: Path, forgotten: Forgotten) -> str:
    artifact = read_artifact(path)
    held = _held(path, forgotten)
    verb = _ACTION.get(artifact.kind, "rebuild")
    notice = {"action_needed": verb, "forgotten_posts_in_lineage": len(held),
              "tombstones": forgotten.tombstones.digest, "artifact_version": artifact.version,
              "checkpoints": artifact.extra.get("checkpoints", [])}
    target = path / NOTICE_FILE
    if target.is_file():
        old = json.loads(target.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in notice} == notice:
            return f"unchanged: {NOTICE_FILE} already says {verb} needed"
    notice["noted_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(target, json.dumps(notice, indent=1, sort_keys=True))
    return f"{verb} needed: {len(held)} forgotten posts in its lineage (notice in {target})"


register_forgetter("run", _finder(("run",)), affected, purge, stage=80, retrain=True)
register_forgetter("vocab", _finder(("vocab",)), affected, purge, stage=80)
register_forgetter("derived", _finder(None), affected, purge, stage=90)
