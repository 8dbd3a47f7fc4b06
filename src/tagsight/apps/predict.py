"""Offline batch prediction over image files: one row per (image, app), as JSONL or CSV, with progress.

``predict_files(paths, bundle_dir, cfg, out)`` expands folders (recursively, sorted), loads the
bundle once, and answers batches of ``cfg.batch_size`` images with every app in ``cfg.apps`` from one
backbone pass per batch. An image that cannot be decoded gets a row ``{"image", "app", "error":
"unreadable_image", "detail"}`` for each app; the counts returned reconcile: ``images = answered +
unreadable``. CSV columns are ``image, app, error`` and then every answer key (nested values as
JSON text), in order of first appearance.

With an engine (``--engine ray``) the files are answered by blocks of ``BLOCK_BATCHES`` whole
batches through one per-block function (``predict_block``, which loads the bundle where it runs:
workers need the bundle and the images at the same paths); rows come back in file order, the
same rows as in one process.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from PIL import Image, UnidentifiedImageError

from tagsight.apps.bundle import Bundle, load_bundle
from tagsight.eval.datasets import IMAGE_SUFFIXES
from tagsight.fsio import ReasonError
from tagsight.storage import write_text
from tagsight.progress import Progress

if TYPE_CHECKING:
    from tagsight.engines import Engine

log = logging.getLogger(__name__)

BLOCK_BATCHES = 8  # an engine's block: this many whole batches (the bundle is loaded once per block)

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class PredictConfig:
    apps: tuple[str, ...]
    format: str = "jsonl"
    batch_size: int = 32
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.apps:
            raise ValueError("name at least one app")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given and the images under folders (sorted); a path that does not exist is an error."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise ReasonError("missing_image", f"{p} does not exist")
    if not out:
        raise ReasonError("no_images", f"no image files in {[str(p) for p in paths]}")
    return out


def _open(path: Path) -> Image.Image | str:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def answer_rows(paths: list[Path], bundle: Bundle, cfg: PredictConfig, counts: dict[str, int],
                progress: Progress | _Silent | None = None) -> Iterator[dict[str, Any]]:
    """Rows for every (image, app), batch by batch."""
    with progress or Progress(len(paths), "predict", "img") as progress:
        for start in range(0, len(paths), cfg.batch_size):
            chunk = paths[start:start + cfg.batch_size]
            loaded = [_open(p) for p in chunk]
            good = [(p, img) for p, img in zip(chunk, loaded) if isinstance(img, Image.Image)]
            answers = bundle.predict([img for _, img in good], cfg.apps,
                                     {a: cfg.options for a in cfg.apps}) if good else {}
            where = {p: i for i, (p, _) in enumerate(good)}
            for p, img in zip(chunk, loaded):
                for app in cfg.apps:
                    if isinstance(img, str):
                        yield {"image": str(p), "app": app, "error": "unreadable_image", "detail": img}
                    else:
                        yield {"image": str(p), "app": app, **answers[app][where[p]]}
                counts["answered" if not isinstance(img, str) else "unreadable"] += 1
            progress.update(len(chunk))


def predict_block(bundle_dir: str, cfg: PredictConfig, paths: list[Path]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The per-block function of batch predict on an engine: the rows and counts of a block of files."""
    bundle = load_bundle(bundle_dir, cfg.device, cfg.batch_size)
    counts = {"answered": 0, "unreadable": 0}
    rows = list(answer_rows(paths, bundle, cfg, counts, _Silent()))
    return rows, counts


class _Silent:
    """A block's progress: none of its own (the driver reports blocks as they finish)."""

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _rows_on(engine: Engine, files: list[Path], bundle_dir: str | Path, cfg: PredictConfig,
             counts: dict[str, int]) -> list[dict[str, Any]]:
    size = BLOCK_BATCHES * cfg.batch_size
    blocks = [files[k:k + size] for k in range(0, len(files), size)]
    parts: dict[int, list[dict[str, Any]]] = {}
    with Progress(len(files), "predict", "img") as progress:
        for k, (rows, got) in engine.map(predict_block, ((b,) for b in blocks), common=(str(bundle_dir), cfg)):
            parts[k] = rows
            for key, n in got.items():
                counts[key] += n
            progress.update(len(blocks[k]))
    return [row for k in range(len(blocks)) for row in parts[k]]


def write_csv(rows: list[dict[str, Any]], handle: TextIO) -> None:
    columns = ["image", "app", "error"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v if isinstance(v, (str, int, float, type(None))) and not isinstance(v, bool)
                         else json.dumps(v, ensure_ascii=False) for k, v in row.items()})


def predict_files(paths: Sequence[str | Path], bundle_dir: str | Path, cfg: PredictConfig,
                  out: str | Path | None = None, engine: Engine | None = None) -> dict[str, int]:
    """Answer every image with every app and write the rows to ``out`` (or stdout); the counts. ``engine``
    answers blocks of files on its workers (default: here)."""
    if engine is not None and cfg.device != "cpu":
        raise ValueError(f"predict on the {engine.name} engine runs on the workers' CPUs; got device {cfg.device}")
    files = expand(paths)
    bundle = load_bundle(bundle_dir, cfg.device, cfg.batch_size)
    for name in cfg.apps:
        bundle.app(name)  # fail before any work when an app is unavailable
    counts = {"images": len(files), "answered": 0, "unreadable": 0}
    rows = list(answer_rows(files, bundle, cfg, counts)) if engine is None else \
        _rows_on(engine, files, bundle_dir, cfg, counts)
    buf = io.StringIO()
    if cfg.format == "csv":
        write_csv(rows, buf)
    else:
        buf.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        write_text(out, buf.getvalue())     # a local path atomically, or an fsspec URL (one object put)
    if counts["answered"] + counts["unreadable"] != counts["images"]:
        raise RuntimeError(f"predict counts do not reconcile: {counts}")
    return counts
