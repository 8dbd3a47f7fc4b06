"""``forget --audit ROOT``: walk every artifact under a root and report any trace of a forgotten post.

What is forgotten is read from the datasets under the roots (their tombstones, resolved to post keys
as ``forget`` does). Then every file is checked by what it is:

* ``content``: a shard (``*.tar``) holding a sample of a forgotten post (its JSON names the post);
* ``key``: a Parquet table with a post key column (``post_key`` or ``source`` + ``post_id``), or a
  JSON / JSONL / CSV / text file, naming a forgotten post;
* ``embedding``: rows of a similar-image index (``entries.parquet``) naming a forgotten post, or
  vectors in ``index.faiss`` that no entry accounts for;
* ``cached_feature``: a cached-feature file (``*.safetensors`` with ``tagsight_lineage``) whose
  recorded posts include a forgotten one;
* ``unrecorded``: a cached-feature file that does not record what it holds, so nobody can tell
  (model weights, which are not per-post, are not caches: checkpoints, heads, exports).

The record of the forgetting itself is not a trace: a dataset's tombstones and the decision rows
``rejected / forget / forgotten`` that name what a rewrite removed (they keep the posts forgotten);
the audit counts them as ``ledger``. After ``tagsight forget ... --rewrite`` an audit finds nothing;
without ``--rewrite`` the shards and catalog still hold the posts (the loader leaves them out) and
the audit says so.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tagsight.fsio import ReasonError
from tagsight.lineage import FEATURE_META_KEY, safetensors_metadata
from tagsight.privacy.forget import FORGOTTEN_REASON, Forgotten, forgotten_mask, find_datasets, forgotten_state
from tagsight.privacy.tombstones import TOMBSTONE_FILE

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".md", ".html", ".yaml", ".yml")
MAX_TEXT_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Trace:
    kind: str       # content | key | embedding | cached_feature | unrecorded
    path: str
    count: int
    detail: str


@dataclass
class AuditReport:
    roots: list[str]
    forgotten_posts: int
    checked: Counter[str] = field(default_factory=Counter)     # files looked at, by what they are
    ledger: Counter[str] = field(default_factory=Counter)      # records of the forgetting itself (not traces)
    traces: list[Trace] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.traces

    def format(self) -> str:
        lines = [f"audit of {', '.join(self.roots)}: {self.forgotten_posts} forgotten post(s); checked "
                 + (", ".join(f"{n} {k}" for k, n in sorted(self.checked.items())) or "no files")]
        lines += [f"  {t.kind:<14} {t.path}: {t.detail}" for t in self.traces]
        ledger = {k: n for k, n in sorted(self.ledger.items()) if n}
        if ledger:
            lines.append("ledger (the record of the forgetting, kept on purpose): "
                         + ", ".join(f"{n} {k}" for k, n in ledger.items()))
        unknown = sum(t.kind == "unrecorded" for t in self.traces)
        found = len(self.traces) - unknown
        lines.append("clean: no trace of a forgotten post" if self.clean else
                     f"{found} file(s) still hold a trace of a forgotten post; {unknown} cannot be checked "
                     "(they do not record what they hold)")
        return "\n".join(lines)


def audit(roots: str | Path | Iterable[str | Path], forgotten: Forgotten | None = None) -> AuditReport:
    """Every trace of a forgotten post under ``roots`` (see the module docstring)."""
    paths = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if forgotten is None:
        datasets = find_datasets(paths)
        if not datasets:
            raise ReasonError("no_dataset", f"no tagsight dataset under {', '.join(map(str, paths))}: "
                                            "nothing records what was forgotten")
        forgotten = forgotten_state(datasets, roots=paths)
    report = AuditReport([str(r) for r in paths], len(forgotten.post_keys))
    pattern = _key_pattern(forgotten.post_keys)
    for path in _files(paths):
        for trace in _check(path, forgotten, pattern, report):
            report.traces.append(trace)
    log.info("audit: %d traces in %d files", len(report.traces), sum(report.checked.values()))
    return report


def _files(roots: list[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if not name.startswith(".") and path.resolve() not in seen:
                    seen.add(path.resolve())
                    yield path


def _key_pattern(keys: frozenset[str]) -> re.Pattern[str] | None:
    if not keys:
        return None
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![\w/.-])(?:{alternatives})(?![\w/.-])")


def _check(path: Path, forgotten: Forgotten, pattern: re.Pattern[str] | None, report: AuditReport) -> Iterator[Trace]:
    if path.suffix == ".tar":
        report.checked["shards"] += 1
        yield from _shard(path, forgotten)
    elif path.suffix == ".parquet":
        report.checked["tables"] += 1
        yield from _table(path, forgotten, report)
    elif path.suffix == ".safetensors":
        report.checked["tensor files"] += 1
        yield from _tensors(path, forgotten)
    elif path.name == "index.faiss":
        report.checked["vector indexes"] += 1
        yield from _vectors(path)
    elif path.suffix in TEXT_SUFFIXES and pattern is not None:
        report.checked["text files"] += 1
        yield from _text(path, pattern)


def shard_meta(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON metadata of every sample of a tar shard."""
    with tarfile.open(path) as tar:
        for member in tar:
            data = tar.extractfile(member) if member.isfile() and member.name.endswith(".json") else None
            if data is not None:
                yield json.loads(data.read())


def _shard(path: Path, forgotten: Forgotten) -> Iterator[Trace]:
    hits: Counter[str] = Counter()
    try:
        metas = list(shard_meta(path))
    except (tarfile.TarError, ValueError) as exc:
        yield Trace("unrecorded", str(path), 1, f"not readable as a shard ({exc})")
        return
    for meta in metas:
        key = f"{meta.get('source')}/{meta.get('post_id')}"
        if forgotten.forgets(key, meta.get("author_id"), meta.get("hashtags") or ()):
            hits[key] += 1
    if hits:
        yield Trace("content", str(path), sum(hits.values()),
                    f"{sum(hits.values())} sample(s) of {len(hits)} forgotten post(s) (rewrite: forget --rewrite)")


def _table(path: Path, forgotten: Forgotten, report: AuditReport) -> Iterator[Trace]:
    if path.parts[-2:] == TOMBSTONE_FILE.parts:
        report.ledger["tombstone rows"] += pq.read_metadata(path).num_rows
        return
    names = set(pq.read_schema(path).names)
    if "post_key" not in names and not {"source", "post_id"} <= names:
        return
    table = pq.read_table(path)
    mask = forgotten_mask(table, forgotten)
    if "reason" in names and path.name == "decisions.parquet":
        reasons = table["reason"].to_pylist()
        report.ledger["forgotten decision rows"] += sum(m and r == FORGOTTEN_REASON for m, r in zip(mask, reasons))
        mask = [m and r != FORGOTTEN_REASON for m, r in zip(mask, reasons)]
    if any(mask):
        kind = "embedding" if (path.parent / "index.json").is_file() else "key"
        yield Trace(kind, str(path), sum(mask), f"{sum(mask)} of {table.num_rows} rows name a forgotten post")


def _is_model_weights(path: Path) -> bool:
    """Weights of a model (not per-post data): checkpoints, heads, exports, run folders."""
    if "checkpoints" in path.parts:
        return True
    markers = ("head.json", "bundle.json", "run.json", "config.yaml")
    return any((folder / m).is_file() for folder in (path.parent, path.parent.parent) for m in markers) or \
        path.with_suffix(".json").is_file()


def _tensors(path: Path, forgotten: Forgotten) -> Iterator[Trace]:
    try:
        meta = safetensors_metadata(path).get(FEATURE_META_KEY)
    except (ReasonError, OSError, ValueError) as exc:
        yield Trace("unrecorded", str(path), 1, f"not readable as safetensors ({exc})")
        return
    if not meta:
        if not _is_model_weights(path):
            yield Trace("unrecorded", str(path), 1, "a cached-feature file that does not record what it holds")
        return
    keys = json.loads(meta).get("post_keys") or []
    hit = sum(forgotten.forgets(k) for k in keys)
    if hit:
        yield Trace("cached_feature", str(path), hit, f"features of {hit} forgotten post(s) among {len(keys)} rows")


def _vectors(path: Path) -> Iterator[Trace]:
    entries = path.parent / "entries.parquet"
    try:
        import faiss
    except ImportError:
        yield Trace("unrecorded", str(path), 1, "faiss is not installed: the vectors cannot be counted")
        return
    vectors = faiss.read_index(str(path)).ntotal
    rows = pq.read_metadata(entries).num_rows if entries.is_file() else 0
    if vectors > rows:
        yield Trace("embedding", str(path), vectors - rows, f"{vectors} vectors but {rows} entries: "
                                                             f"{vectors - rows} vector(s) no entry accounts for")


def _text(path: Path, pattern: re.Pattern[str]) -> Iterator[Trace]:
    if path.stat().st_size > MAX_TEXT_BYTES:
        yield Trace("unrecorded", str(path), 1, f"larger than {MAX_TEXT_BYTES} bytes: not searched")
        return
    found = set(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    if found:
        yield Trace("key", str(path), len(found), f"names {len(found)} forgotten post(s)")
