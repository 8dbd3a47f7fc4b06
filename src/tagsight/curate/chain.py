"""``tagsight curate filter``: run a configured chain of filters over a dataset, record every score and reason.

Filters run in the configured order (cheap first by default), each over the samples that passed
the ones before it (``score_all`` scores every sample with every filter, keeping the first
rejection). Results go to the catalog: ``catalog/curation.parquet`` holds one row per sample with
``status`` (passed / rejected), the rejecting ``stage`` and ``reason``, every metric a filter wrote
(null where not scored) and the filters that did not apply; ``catalog/curation.json`` holds the
config and the counts, which reconcile: ``samples = passed + sum(rejected by reason)``.

With an engine (``tagsight.engines``: ``--engine local|ray``), the filters whose score depends on one
sample alone (resolution, exposure, contrast, colourfulness, blur, text) score blocks of samples on
the engine's workers through one per-block function (``score_block``); the filters that look at
every sample together (popularity, near_duplicates, aesthetic) or call an app (moderation) run here.
This process takes the scores in sample order and makes every decision, so the table is the same
whichever engine and however many workers.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tagsight.config import YamlConfig
from tagsight.curate.filters import FILTERS, Candidate, Filter
from tagsight.data.index import SampleIndex
from tagsight.engines import Engine
from tagsight.fsio import atomic_write_bytes, atomic_write_text
from tagsight.schema.catalog import read_table
from tagsight.progress import Progress

log = logging.getLogger(__name__)

CURATION_FILE = Path("catalog") / "curation.parquet"
CURATION_INFO = Path("catalog") / "curation.json"
BLOCK = 256  # samples per block on an engine
DEFAULT_CHAIN = ("resolution", "popularity", "exposure", "contrast", "colourfulness", "blur", "near_duplicates",
                 "moderation", "text", "aesthetic")


@dataclass(frozen=True)
class FilterSpec:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        FILTERS.get(self.name)  # unknown names fail here, with a "did you mean"

    @classmethod
    def from_dict(cls, item: str | dict[str, Any]) -> FilterSpec:
        """A chain entry: a filter name, or a mapping of ``name`` and that filter's settings."""
        if isinstance(item, str):
            return cls(item)
        if not isinstance(item, dict) or "name" not in item:
            raise ValueError(f"a chain entry is a filter name or a mapping with 'name', got {item!r}")
        return cls(item["name"], {k: v for k, v in item.items() if k != "name"})


@dataclass(frozen=True)
class CurateConfig(YamlConfig):
    """The chain (in order), whether to score every sample with every filter, and an optional top-N cut.
    Loaded from YAML with ``--set`` overrides by tagsight.config (``filters`` entries by ``FilterSpec.from_dict``)."""

    config_label = "curation config"

    filters: tuple[FilterSpec, ...] = tuple(FilterSpec(n) for n in DEFAULT_CHAIN)
    score_all: bool = False
    keep_top: int | None = None     # after the filters, keep the N best by aesthetic score

    def __post_init__(self) -> None:
        names = [f.name for f in self.filters]
        if len(set(names)) != len(names):
            raise ValueError(f"a filter appears twice in the chain: {names}")
        if self.keep_top is not None and self.keep_top < 1:
            raise ValueError(f"keep_top must be >= 1 or null, got {self.keep_top}")
        for spec in self.filters:
            FILTERS.create(spec.name, **spec.settings)  # bad settings fail at construction

    def to_dict(self) -> dict[str, Any]:
        return {"filters": [{"name": f.name, **f.settings} for f in self.filters], "score_all": self.score_all,
                "keep_top": self.keep_top}


@dataclass
class _Row:
    key: str
    post_key: str
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    stage: str | None = None
    reason: str | None = None


def load_candidates(dataset_dir: Path) -> list[Candidate]:
    """Every sample of the dataset not forgotten by its tombstones (SampleIndex.build leaves those out), with its
    catalog media and post rows."""
    index = SampleIndex.build(dataset_dir)
    media = {r["sample_key"]: r for r in read_table(dataset_dir, "media").to_pylist() if r["sample_key"]}
    posts = {f"{r['source']}/{r['post_id']}": r for r in read_table(dataset_dir, "posts").to_pylist()}
    return [Candidate(key, index.post_keys[i], _loader(index, i), media.get(key, {}), posts.get(index.post_keys[i], {}))
            for i, key in enumerate(index.keys)]


def _loader(index: SampleIndex, i: int) -> Callable[[], Image.Image]:
    return lambda: Image.open(io.BytesIO(index.read_jpeg(i))).convert("RGB")


@dataclass
class _Blocks:
    """Where per-sample filters score: an engine, the dataset's index and each candidate's position in it."""

    engine: Engine
    index: SampleIndex
    positions: dict[str, int]


def run_filters(dataset_dir: str | Path, cfg: CurateConfig, apps: dict[str, Any] | None = None,
                engine: Engine | None = None) -> dict[str, Any]:
    """Run the chain over ``dataset_dir``; write the curation table and info; return the info (counts).
    ``engine`` scores the per-sample filters block by block (default: one by one in this process)."""
    dataset_dir, start = Path(dataset_dir), time.monotonic()
    candidates = load_candidates(dataset_dir)
    rows = {c.key: _Row(c.key, c.post_key) for c in candidates}
    blocks = None if engine is None else _Blocks(engine, SampleIndex.build(dataset_dir),
                                                 {c.key: i for i, c in enumerate(candidates)})
    for spec in cfg.filters:
        flt = _build(spec, apps or {})
        on = blocks if blocks is not None and _per_sample(flt, spec) else None
        _run_one(flt, candidates, rows, cfg.score_all, spec, on)
    if cfg.keep_top is not None:
        _keep_top(rows, cfg.keep_top)
    info = _info(cfg, rows, time.monotonic() - start)
    _write(dataset_dir, rows, cfg, info)
    return info


def _build(spec: FilterSpec, apps: dict[str, Any]) -> Filter:
    if spec.name == "moderation" and "moderate" in apps:
        return FILTERS.create(spec.name, **spec.settings, app=apps["moderate"])
    return FILTERS.create(spec.name, **spec.settings)


def _per_sample(flt: Filter, spec: FilterSpec) -> bool:
    """A filter that scores each sample alone (no ``prepare`` over all of them, no app) can run on an engine."""
    return type(flt).prepare is Filter.prepare and spec.name != "moderation"


def score_block(index: SampleIndex, name: str, settings: dict[str, Any],
                items: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The per-block function of ``curate filter`` on an engine: filter ``name``'s scores of the samples at the
    given index positions (with their catalog media and post rows), in order."""
    flt = FILTERS.create(name, **settings)
    out = []
    for i, media, post in items:
        out.append(flt.score(Candidate(index.keys[i], index.post_keys[i], _loader(index, i), media, post)))
    return out


def _scores(flt: Filter, spec: FilterSpec, applicable: list[Candidate], progress: Progress,
            on: _Blocks | None) -> Iterator[dict[str, Any]]:
    """Each applicable candidate's scores, in order: here one by one, or by blocks on the engine."""
    if on is None:
        for c in applicable:
            scores = flt.score(c)
            c.release()
            progress.update()
            yield scores
        return
    blocks = [applicable[k:k + BLOCK] for k in range(0, len(applicable), BLOCK)]
    args = (([(on.positions[c.key], c.media, c.post) for c in block],) for block in blocks)
    done: dict[int, list[dict[str, Any]]] = {}
    following = 0
    for k, result in on.engine.map(score_block, args, common=(on.index, spec.name, dict(spec.settings))):
        done[k] = result
        progress.update(len(result))
        while following in done:
            yield from done.pop(following)
            following += 1


def _run_one(flt: Filter, candidates: list[Candidate], rows: dict[str, _Row], score_all: bool,
             spec: FilterSpec | None = None, on: _Blocks | None = None) -> None:
    todo = [c for c in candidates if score_all or rows[c.key].reason is None]
    applicable = [c for c in todo if flt.applies(c)]
    for c in todo:
        if not flt.applies(c):
            rows[c.key].skipped.append(flt.name)
    flt.prepare(applicable)
    rejected = 0
    with Progress(len(applicable), f"curate {flt.name}", unit="img") as progress:
        for c, scores in zip(applicable, _scores(flt, spec or FilterSpec(flt.name), applicable, progress, on)):
            row = rows[c.key]
            row.metrics.update({k: float(v) for k, v in scores.items()})
            reason = flt.reject(scores)
            if reason and row.reason is None:
                row.stage, row.reason, rejected = flt.name, reason, rejected + 1
    log.info("curate %s: %d scored, %d rejected, %d skipped", flt.name, len(applicable), rejected,
             len(todo) - len(applicable))


def _keep_top(rows: dict[str, _Row], n: int) -> None:
    passed = [r for r in rows.values() if r.reason is None]
    passed.sort(key=lambda r: (-r.metrics.get("aesthetic", 0.0), r.key))
    for r in passed[n:]:
        r.stage, r.reason = "rank", "below_top_n"


def _info(cfg: CurateConfig, rows: dict[str, _Row], seconds: float) -> dict[str, Any]:
    reasons = Counter(r.reason for r in rows.values() if r.reason)
    passed = sum(r.reason is None for r in rows.values())
    skipped = Counter(name for r in rows.values() for name in r.skipped)
    return {"config": cfg.to_dict(), "samples": len(rows), "passed": passed, "rejected": dict(sorted(reasons.items())),
            "skipped": dict(sorted(skipped.items())), "seconds": round(seconds, 2)}


def _write(dataset_dir: Path, rows: dict[str, _Row], cfg: CurateConfig, info: dict[str, Any]) -> None:
    metric_names = sorted({m for r in rows.values() for m in r.metrics})
    table = pa.table({
        "key": [r.key for r in rows.values()], "post_key": [r.post_key for r in rows.values()],
        "status": ["rejected" if r.reason else "passed" for r in rows.values()],
        "stage": [r.stage for r in rows.values()], "reason": [r.reason for r in rows.values()],
        "skipped": pa.array([r.skipped for r in rows.values()], type=pa.list_(pa.string())),
        **{m: pa.array([r.metrics.get(m) for r in rows.values()], type=pa.float64()) for m in metric_names}})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(dataset_dir / CURATION_FILE, buf.getvalue())
    atomic_write_text(dataset_dir / CURATION_INFO, json.dumps(info, indent=1))


def read_curation(dataset_dir: str | Path) -> pa.Table:
    path = Path(dataset_dir) / CURATION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run 'tagsight curate filter {dataset_dir}' first")
    return pq.read_table(path)
