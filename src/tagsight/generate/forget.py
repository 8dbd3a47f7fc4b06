"""The ``generator`` kind of ``tagsight forget``: generator runs (pretrain and tune) trained on forgotten posts.

A generator cannot unlearn in place, so it is handled like other models (``privacy.forget_derived``):
its lineage is followed to the datasets it was trained on (a pretrain run: its dataset; a tuned
run: the curated dataset AND, through its base run, the base dataset), and when they held a
forgotten post, ``forget_notice.json`` (counts only, no post id, every checkpoint listed, ``best``
included) goes into the run folder and the run is listed as "retrain needed". Images sampled from
such a run (``tagsight generate`` writes ``lineage.json`` naming the run) are reported by the
``derived`` kind with a "rebuild needed" notice.
"""

from __future__ import annotations

from pathlib import Path

from tagsight.generate.config import FORGET_KIND
from tagsight.lineage import iter_artifacts
from tagsight.privacy.forget import register_forgetter
from tagsight.privacy.forget_derived import affected, purge


def find(root: Path) -> list[Path]:
    """Run folders whose ``run.json`` names ``forget_kind: generator``."""
    return [a.path for a in iter_artifacts(root)
            if a.kind == "run" and a.extra.get("forget_kind") == FORGET_KIND and a.path.is_dir()]


register_forgetter(FORGET_KIND, find, affected, purge, stage=80, retrain=True)
