"""Labelled images for evaluation: class folders (``root/<class>/*.jpg``) or an ingested dataset's shards.

Both are ``LabelledImages``: ``classes`` (names, index = label), ``labels`` (int64 per item),
``load(i)`` (a PIL image) and ``identity`` (a string that changes whenever the content may have
changed: relative paths, sizes and mtimes of a folder; the manifest version of a dataset), which
the feature cache keys on. Passing ``classes`` (e.g. the train set's) maps names onto that list so
train and val share label indices; a class unknown to the list is an error (``class_mismatch``).

``read_bytes(i)`` gives the stored file's bytes (for hashing: decontamination) and ``name(i)`` a
readable reference (a path relative to the folder, or the post key). ``SubsetImages`` keeps some
items of another set (same classes; its identity names the kept items).

Shard datasets use the ``label`` field of each sample's JSON (written for images in class
subfolders by the folder source). Samples without a label are skipped with a warning giving the count.
"""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tagsight.fsio import ReasonError
from tagsight.storage import location

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


class LabelledImages:
    """Images with class labels; subclasses fill ``classes``, ``labels``, ``identity`` and ``load``."""

    classes: list[str]
    labels: np.ndarray
    identity: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def load(self, i: int) -> Image.Image:
        return Image.open(io.BytesIO(self.read_bytes(i))).convert("RGB")

    def read_bytes(self, i: int) -> bytes:
        raise NotImplementedError

    def name(self, i: int) -> str:
        raise NotImplementedError

    def lineage(self) -> dict[str, Any] | None:
        """What the items were read from, for the feature cache: parents and per-item post keys (None: not posts)."""
        return None


class SubsetImages(LabelledImages):
    """The items ``keep`` (indices into ``base``, in order) of another labelled set."""

    def __init__(self, base: LabelledImages, keep: Sequence[int] | np.ndarray) -> None:
        self.base = base
        self.keep = np.asarray(keep, dtype=np.int64)
        if self.keep.size and (self.keep.min() < 0 or self.keep.max() >= len(base)):
            raise ValueError(f"subset indices must lie in [0, {len(base)})")
        self.classes = list(base.classes)
        self.labels = np.asarray(base.labels[self.keep], dtype=np.int64)
        self.identity = f"subset:{base.identity}:" + hashlib.sha256(self.keep.tobytes()).hexdigest()[:16]

    def load(self, i: int) -> Image.Image:
        return self.base.load(int(self.keep[i]))

    def read_bytes(self, i: int) -> bytes:
        return self.base.read_bytes(int(self.keep[i]))

    def name(self, i: int) -> str:
        return self.base.name(int(self.keep[i]))

    def lineage(self) -> dict[str, Any] | None:
        base = self.base.lineage()
        if base is None:
            return None
        keys = base["post_keys"]
        return {**base, "post_keys": [keys[int(i)] for i in self.keep] if keys else []}


class FolderImages(LabelledImages):
    """``root/<class>/<image>`` (classes sorted by name, images sorted by path)."""

    def __init__(self, root: str | Path, classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ReasonError("missing_dataset", f"{self.root} is not a folder")
        found = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        self.classes = _class_list(found, classes, str(self.root))
        lookup = {name: i for i, name in enumerate(self.classes)}
        self.items = [(p, lookup[d]) for d in found for p in _images(self.root / d)]
        if not self.items:
            raise ReasonError("no_images", f"{self.root} holds no images in class subfolders (root/<class>/*.jpg)")
        self.labels = np.asarray([c for _, c in self.items], dtype=np.int64)
        self.identity = _folder_identity(self.root, [p for p, _ in self.items], self.classes)
        log.info("%s: %d images in %d classes", self.root, len(self.items), len(found))

    def load(self, i: int) -> Image.Image:
        with Image.open(self.items[i][0]) as img:
            return img.convert("RGB")

    def read_bytes(self, i: int) -> bytes:
        return self.items[i][0].read_bytes()

    def name(self, i: int) -> str:
        return str(self.items[i][0].relative_to(self.root))

    def lineage(self) -> dict[str, Any]:
        """A folder of images holds no posts: its cached features say so, and forget and its audit can tell."""
        return {"parents": [{"kind": "folder", "path": location(self.root), "version": self.identity}],
                "post_keys": []}


class ShardImages(LabelledImages):
    """The samples of an ingested dataset (``manifest.json`` + shards) that carry a ``label``."""

    def __init__(self, dataset_dir: str | Path, classes: Sequence[str] | None = None) -> None:
        from tagsight.data.index import SampleIndex

        self.index = SampleIndex.build(dataset_dir)
        names = [self.index.read_meta(i).get("label") for i in range(len(self.index))]
        self.rows = np.asarray([i for i, n in enumerate(names) if n], dtype=np.int64)
        if len(self.rows) < len(names):
            log.warning("%s: %d of %d samples have no label and are skipped", dataset_dir,
                        len(names) - len(self.rows), len(names))
        if not len(self.rows):
            raise ReasonError("no_labels", f"{dataset_dir}: no sample has a 'label' (ingest class folders)")
        self.classes = _class_list(sorted({names[i] for i in self.rows}), classes, str(dataset_dir))
        lookup = {name: i for i, name in enumerate(self.classes)}
        self.labels = np.asarray([lookup[names[i]] for i in self.rows], dtype=np.int64)
        forgotten = f"-{self.index.tombstones}" if self.index.tombstones else ""  # new tombstones: new cache key
        self.identity = f"dataset:{self.index.version}{forgotten}:" + _digest(self.classes)

    def lineage(self) -> dict[str, Any]:
        return {"parents": [{"kind": "dataset", "path": location(self.index.dataset_dir), "version": self.index.version}],
                "tombstones": self.index.tombstones, "post_keys": [self.index.post_keys[int(i)] for i in self.rows]}

    def read_bytes(self, i: int) -> bytes:
        return self.index.read_jpeg(int(self.rows[i]))

    def name(self, i: int) -> str:
        return self.index.post_keys[int(self.rows[i])]


def open_labelled(path: str | Path, classes: Sequence[str] | None = None) -> LabelledImages:
    """``ShardImages`` when ``path`` holds a ``manifest.json``, else ``FolderImages``."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return ShardImages(path, classes)
    return FolderImages(path, classes)


def _class_list(found: list[str], classes: Sequence[str] | None, where: str) -> list[str]:
    if classes is None:
        return list(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ReasonError("class_mismatch", f"{where}: classes {unknown[:5]} are not among the "
                                            f"{len(classes)} reference classes")
    return list(classes)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not p.name.startswith("."))


def _folder_identity(root: Path, paths: list[Path], classes: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"folder:{location(root)}:{h.hexdigest()[:32]}:{_digest(classes)}"   # a mirror: its URL


def _digest(classes: list[str]) -> str:
    return hashlib.sha256("\n".join(classes).encode()).hexdigest()[:16]
