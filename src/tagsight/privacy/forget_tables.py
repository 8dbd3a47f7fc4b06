"""The catch-all artifact kind of ``forget``: any other Parquet file that lists posts loses their rows.

Relevance scores (``pairs.parquet``), lineage contents files, exported tables: every Parquet file
under the root with a post key column (``post_key``, or ``source`` + ``post_id``) that no other
kind owns is rewritten without the forgotten rows. It runs last (stage 90), after the kinds that
know their files better (the similar-image index drops vectors and rows together; the curation
table and reviews). Files inside a dataset folder (``manifest.json``: its catalog and index
cache) belong to the dataset kind, and the ``contents`` list of a lineage record belongs to its
artifact: neither is touched here (``forget --audit`` still reports what they hold).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq

from tagsight.lineage import LINEAGE_FILE
from tagsight.privacy.forget import Forgotten, post_key_table_forgetter, register_forgetter

log = logging.getLogger(__name__)

_find_all, _affected, _purge = post_key_table_forgetter("*.parquet")


def in_dataset(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside a dataset folder at or under ``root`` (a folder holding manifest.json)."""
    for folder in path.parents:
        if (folder / "manifest.json").is_file():
            return True
        if folder == root or root not in folder.parents:
            return False
    return False


def lists_posts(path: Path) -> bool:
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError) as exc:
        log.warning("%s: not readable as Parquet (%s); skipped", path, exc)
        return False
    return "post_key" in names or {"source", "post_id"} <= names


def is_lineage_contents(path: Path) -> bool:
    """The ``contents`` file of a lineage record: the list of what its artifact holds, which only the artifact's
    own kind may change (purging the list alone would make it lie about data still held elsewhere)."""
    record = path.parent / LINEAGE_FILE
    if not record.is_file():
        return False
    try:
        contents: object = json.loads(record.read_text()).get("contents")
    except ValueError:
        return True
    return contents == path.name


def find(root: Path) -> list[Path]:
    root = Path(root)
    return [p for p in _find_all(root) if not in_dataset(p, root) and not (p.parent / "index.json").is_file()
            and not is_lineage_contents(p) and lists_posts(p)]


def affected(path: Path, forgotten: Forgotten) -> int:
    return _affected(path, forgotten)


def purge(path: Path, forgotten: Forgotten) -> str:
    return _purge(path, forgotten)


register_forgetter("tables", find, affected, purge, stage=90)
