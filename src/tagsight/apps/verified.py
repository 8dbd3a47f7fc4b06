"""Verified concept labels: what people checked is in a photo, for measuring alt-text precision.

Hashtags are noisy labels: a photo of a tench whose poster did not write #tench counts as a false
positive when precision is measured against hashtags, so hashtag-measured precision is only a lower
bound of what a reader of the alt text sees. Automatic alt text is read by people who cannot check
it, so its concepts are better chosen against labels someone verified.

A verified-labels file is JSON Lines, one row per post that was checked::

    {"post_key": "posts/train-000123", "labels": ["tench.n.01"]}

``labels`` are vocabulary labels (``tench.n.01``) or hashtags as written (``#Tench``), mapped through
the vocabulary. The **verified concepts** are every label that at least one row names; each row is
taken as complete for them (a verified concept not listed on a row is absent from that photo). Only
verified concepts may then appear in alt text; precision is measured on the verified posts only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagsight.fsio import ReasonError
from tagsight.storage import dataset_path, read_bytes
from tagsight.tags.vocab import Vocabulary


@dataclass(frozen=True)
class VerifiedLabels:
    """Per verified post key, a bool row over the vocabulary; ``concepts`` marks the labels the file verifies."""

    rows: dict[str, np.ndarray]
    concepts: np.ndarray
    path: str

    def positives(self, post_keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(has_row [N], positives [N, L])`` for ``post_keys`` (rows without verification are all False)."""
        has = np.asarray([k in self.rows for k in post_keys], dtype=bool)
        positives = np.zeros((len(post_keys), len(self.concepts)), dtype=bool)
        for i, key in enumerate(post_keys):
            if has[i]:
                positives[i] = self.rows[key]
        return has, positives


def _label_index(name: str, vocab: Vocabulary, by_name: dict[str, int]) -> int | None:
    if name in by_name:
        return by_name[name]
    found = vocab.labels_for([name])
    return found[0] if len(found) == 1 else None


def load_verified(path: str | Path, vocab: Vocabulary) -> VerifiedLabels:
    """Read a verified-labels file; ReasonError naming the line for bad JSON, a missing key or an unknown label."""
    path = dataset_path(path) if isinstance(path, str) else path   # a local Path, or an fsspec URL read through fsspec
    try:
        text = read_bytes(path).decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ReasonError("verified_missing", f"verified-labels file {path} not found") from None
    by_name = {label.label: label.index for label in vocab.labels}
    rows: dict[str, np.ndarray] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key, labels = record["post_key"], record["labels"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ReasonError("bad_verified", f"{path}:{number}: expected {{\"post_key\", \"labels\"}}: {exc}") from None
        row = np.zeros(len(vocab), dtype=bool)
        for name in labels:
            index = _label_index(str(name), vocab, by_name)
            if index is None:
                raise ReasonError("unknown_verified_label",
                                  f"{path}:{number}: {name!r} is neither a vocabulary label nor a hashtag it maps")
            row[index] = True
        rows[str(key)] = row
    if not rows:
        raise ReasonError("bad_verified", f"{path} holds no verified posts")
    return VerifiedLabels(rows, np.any(np.stack(list(rows.values())), axis=0), str(path))
