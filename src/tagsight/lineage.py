"""Lineage: what every artifact tagsight makes was made from, read back from the records artifacts already keep.

An artifact is a dataset (``manifest.json``), a vocabulary (``vocab.json``), a run (``run.json``:
its checkpoints and heads), a cached-feature file (``*.safetensors`` whose header metadata holds
``tagsight_lineage``) or any folder with a ``lineage.json`` (nearest-neighbour indexes, heads,
curated sets and review queues write one with ``write_lineage``). Each names its parents by kind,
path and version (``Ref``); a parent without a path (a vocabulary names its dataset by version
only) is found by version among the artifacts under a search root. A dataset rewritten by
``tagsight forget --rewrite`` keeps its earlier versions in ``manifest["history"]``, so a run
trained on an earlier version still resolves to that dataset folder.

``lineage.json``::

    {"format": "tagsight-lineage", "kind": "index", "version": "...",
     "parents": [{"kind": "run", "path": "runs/r1", "version": "..."}],
     "contents": "items.parquet"}        # optional: a Parquet file with a post_key column

This module is a low layer: it reads JSON and Parquet, and imports nothing above ``fsio``.
"""

from __future__ import annotations

import hashlib
import logging
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.storage import is_url, local_folder, mirror_origin, resolve_from

log = logging.getLogger(__name__)

LINEAGE_FILE = "lineage.json"
BUNDLE_FILE = "bundle.json"
RECORD_FILES = {"manifest.json": "dataset", "vocab.json": "vocab", "run.json": "run", LINEAGE_FILE: None,
                BUNDLE_FILE: "bundle"}
FEATURE_META_KEY = "tagsight_lineage"


@dataclass(frozen=True)
class Ref:
    """A parent as an artifact names it: kind, path (may be None) and version (may be None)."""

    kind: str
    path: str | None = None
    version: str | None = None
    tombstones_applied: int | None = None   # a dataset read with its first N tombstones applied (loader filter)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "path": self.path, "version": self.version}
        return d if self.tombstones_applied is None else {**d, "tombstones_applied": self.tombstones_applied}

    def label(self) -> str:
        where = self.path or "(path not recorded)"
        return f"{self.kind} {where} version {self.version or '?'}"


@dataclass(frozen=True)
class Artifact:
    """One artifact on disk with its lineage record."""

    kind: str
    path: Path
    version: str
    parents: tuple[Ref, ...] = ()
    history: tuple[str, ...] = ()          # earlier versions of the same folder (datasets rewritten by forget)
    post_keys: frozenset[str] | None = None  # posts it holds itself, when it records them
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def versions(self) -> tuple[str, ...]:
        return (*self.history, self.version)

    @property
    def location(self) -> str:
        """Where the artifact lives: its URL when it was read from object storage, else its local folder."""
        return mirror_origin(self.path) or str(self.path)

    def label(self) -> str:
        return f"{self.kind} {self.location} version {self.version}"


def write_lineage(folder: str | Path, kind: str, version: str, parents: Iterable[Ref], **extra: Any) -> Path:
    """Write ``folder/lineage.json`` for an artifact kind that has no record of its own (indexes, heads, sets)."""
    if not kind or not version:
        raise ValueError(f"a lineage record needs a kind and a version, got {kind!r} and {version!r}")
    record = {"format": "tagsight-lineage", "kind": kind, "version": version,
              "parents": [p.to_dict() for p in parents], **extra}
    return atomic_write_text(Path(folder) / LINEAGE_FILE, json.dumps(record, indent=1, sort_keys=True))


# ------------------------------------------------------------------------------------------- reading


def read_artifact(path: str | Path) -> Artifact:
    """The artifact at ``path``: a folder holding a record file, the record file itself, or a feature file. An
    fsspec URL is read through a local copy of its records only (never its shards or weights)."""
    if is_url(path):
        path = _metadata_copy(str(path))
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        return _feature_artifact(path)
    if path.is_file() and path.name in RECORD_FILES:
        path = path.parent
    for name in RECORD_FILES:
        record = path / name
        if record.is_file():
            return _READERS[name](path, _load_json(record))
    raise ReasonError("not_an_artifact", f"{path} holds none of {', '.join(RECORD_FILES)} and is not a "
                                         "cached-feature file: not a tagsight artifact")


def _metadata_copy(url: str) -> Path:
    """The records of the artifact (or artifact tree) at ``url``, mirrored; a record file's URL gives its folder's."""
    url = url.rstrip("/")
    name = url.rsplit("/", 1)[-1]
    return local_folder(url.rsplit("/", 1)[0] if name in RECORD_FILES else url, metadata_only=True)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReasonError("lineage_unreadable", f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ReasonError("lineage_unreadable", f"{path} is not a JSON object")
    return record


def _dataset(folder: Path, m: dict[str, Any]) -> Artifact:
    source = m.get("source") or {}
    parents = tuple(_dataset_parents(folder, m)) + (Ref("source", source.get("name"), source.get("format")),)
    history = tuple(h["version"] for h in m.get("history", []))
    return Artifact("dataset", folder, str(m["version"]), parents, history, extra={"counts": m.get("counts", {})})


def _dataset_parents(folder: Path, m: dict[str, Any]) -> Iterator[Ref]:
    """A derived dataset's parent (relevance filter, curation: ``parent.path``), kept as ``derived_from`` once
    forget rewrote it; a forget rewrite's parent (no path) is an earlier version of this same folder."""
    derived, parent = m.get("derived_from"), m.get("parent")
    if derived:
        yield Ref("dataset", _recorded(derived.get("path"), folder), derived.get("version"))
    if parent and parent.get("path"):
        if not derived or parent.get("version") != derived.get("version"):
            yield Ref("dataset", _recorded(parent["path"], folder), parent["version"])
    elif parent:
        yield Ref("dataset", str(folder), parent["version"])


def _vocab(folder: Path, v: dict[str, Any]) -> Artifact:
    source = v.get("input") or {}
    if source.get("kind") == "dataset":
        parents = (Ref("dataset", _recorded(source.get("path"), folder), source.get("manifest_version")),)
    else:
        parents = (Ref("source", None, source.get("kind")),)
    return Artifact("vocab", folder, str(v["version"]), parents)


def _run(folder: Path, r: dict[str, Any]) -> Artifact:
    parents = [Ref("dataset", _recorded(r["dataset"]["path"], folder), r["dataset"]["manifest_version"],
                   r["dataset"].get("tombstones_applied"))]
    if r.get("vocab"):
        parents.append(Ref("vocab", _recorded(r["vocab"]["path"], folder), r["vocab"]["version"]))
    for parent in ("backbone_run", "vae_run"):     # a tuned run's base; a latent generator's trained VAE
        if r.get(parent):
            parents.append(Ref("run", _recorded(r[parent].get("path"), folder), r[parent].get("version")))
    ckpts = sorted(str(p) for p in (folder / "checkpoints").glob("*")) if (folder / "checkpoints").is_dir() else []
    version = r.get("version") or f"{r['dataset']['manifest_version']}+{(r.get('vocab') or {}).get('version', '')}"
    return Artifact("run", folder, version, tuple(parents),
                    extra={"checkpoints": ckpts, "kind": r.get("kind"), "forget_kind": r.get("forget_kind")})


def _generic(folder: Path, g: dict[str, Any]) -> Artifact:
    if "kind" not in g or "version" not in g:
        raise ReasonError("lineage_unreadable", f"{folder / LINEAGE_FILE} lacks 'kind' or 'version'")
    parents = tuple(Ref(p["kind"], _recorded(p.get("path"), folder) if p["kind"] != "source" else p.get("path"),
                        p.get("version"), p.get("tombstones_applied")) for p in g.get("parents", []))
    keys = None
    if g.get("contents"):
        table = pq.read_table(folder / g["contents"], columns=["post_key"])
        keys = frozenset(str(k) for k in table.column("post_key").to_pylist() if k is not None)
    return Artifact(str(g["kind"]), folder, str(g["version"]), parents, post_keys=keys,
                    extra={k: v for k, v in g.items() if k not in ("kind", "version", "parents", "format")})


def bundle_version(folder: str | Path) -> str:
    """A hash of what a bundle serves: bundle.json, calibration.json, every head's record and the index record."""
    folder = Path(folder)
    h = hashlib.sha256()
    parts = [folder / BUNDLE_FILE, folder / "calibration.json", folder / "index" / "index.json",
             *sorted((folder / "heads").glob("*/head.json")), *sorted((folder / "heads").glob("*.json"))]
    for part in parts:
        if part.is_file():
            h.update(f"{part.relative_to(folder)}\0".encode() + part.read_bytes())
    return h.hexdigest()[:16]


def _backbone_ref(folder: Path, b: dict[str, Any]) -> Ref:
    """The run a bundle's backbone names (found locally, or by URL for a bundle on object storage), else a source."""
    spec = str(b.get("backbone", ""))
    path = spec.removeprefix("file:")
    if is_url(path):
        return Ref("run", path, None)
    if path and not Path(path).is_absolute() and mirror_origin(folder) is not None:
        return Ref("run", str(resolve_from(folder, path)), None)
    local = [c for c in (folder / path, Path(str(b.get("backbone_resolved", "")).removeprefix("file:"))) if str(c) != "."]
    found = next((c for c in local if path and c.exists()), None)
    if found is not None and (found / "run.json").is_file():
        return Ref("run", str(found.resolve()), None)
    return Ref("source", spec, "backbone")


def _bundle(folder: Path, b: dict[str, Any]) -> Artifact:
    """A bundle (``tagsight apps``): its backbone (a run, or a named model), the data of its heads, its index."""
    parents = [_backbone_ref(folder, b)]
    for head in sorted((folder / "heads").glob("*/head.json")):
        data = (json.loads(head.read_text()).get("data") or {})
        where = _recorded(data.get("path"), head.parent)
        kind = "dataset" if where and (Path(where) / "manifest.json").is_file() else "source"
        parents.append(Ref(kind, where, None))
    index = folder / "index" / "index.json"
    if index.is_file():
        info = json.loads(index.read_text())
        parents.append(Ref("dataset", _recorded(info.get("dataset"), index.parent), info.get("manifest_version")))
    return Artifact("bundle", folder, bundle_version(folder), tuple(parents))


def resolve_recorded(path: str | None, artifact_dir: str | Path) -> Path | None:
    """A path an artifact recorded, found without the caller's working directory.

    Absolute: as is. Relative: against the artifact's folder, then against each folder above it (older
    records held paths relative to the directory the command ran in, usually an ancestor), and only
    last against the current directory. None when nothing exists (the first candidate is returned).
    """
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        return p
    if mirror_origin(artifact_dir) is not None:   # recorded inside an artifact read from object storage
        return None
    base = Path(artifact_dir).resolve()
    for folder in (base, *base.parents):
        if (folder / p).exists():
            return folder / p
    return p.resolve() if p.exists() else None


def _recorded(path: str | None, artifact_dir: Path) -> str | None:
    if path and not is_url(path) and not Path(path).is_absolute() and mirror_origin(artifact_dir) is not None:
        return str(resolve_from(artifact_dir, path))
    found = resolve_recorded(path, artifact_dir)
    return str(found) if found is not None else path


_READERS = {"manifest.json": _dataset, "vocab.json": _vocab, "run.json": _run, LINEAGE_FILE: _generic,
            BUNDLE_FILE: _bundle}


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its header alone (no tensor is loaded)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ReasonError("lineage_unreadable", f"{path} is not a safetensors file")
        (size,) = struct.unpack("<Q", head)
        header = json.loads(f.read(size))
    return dict(header.get("__metadata__") or {})


def _feature_artifact(path: Path) -> Artifact:
    meta = safetensors_metadata(path).get(FEATURE_META_KEY)
    if not meta:
        return Artifact("features", path, path.stem, extra={"provenance": "not recorded"})
    record = json.loads(meta)
    parents = tuple(Ref(p["kind"], p.get("path"), p.get("version")) for p in record.get("parents", []))
    return Artifact("features", path, path.stem, parents, post_keys=frozenset(record.get("post_keys", [])))


# ------------------------------------------------------------------------------------------- finding


def iter_artifacts(root: str | Path) -> Iterator[Artifact]:
    """Every artifact under ``root`` (the root itself included), in path order; unreadable records are skipped with their reason.
    A root on object storage is walked through a local copy of its records (cached-feature files are not read there)."""
    root = local_folder(root, metadata_only=True) if is_url(root) else Path(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("shards", "catalog", "checkpoints"))
        here = Path(folder)
        if any(name in files for name in RECORD_FILES):
            try:
                yield read_artifact(here)
            except (ReasonError, KeyError, TypeError) as exc:   # a record of an older or foreign layout
                log.warning("%s: unreadable lineage record skipped (%s: %s)", here, type(exc).__name__, exc)
        for name in sorted(files):
            if name.endswith(".safetensors"):
                yield _feature_artifact(here / name)


def resolve(ref: Ref, known: Iterable[Artifact]) -> Artifact | None:
    """The artifact a parent reference names: by path when it exists, else by kind and version among ``known``."""
    if ref.path and is_url(ref.path) and ref.kind != "source":
        try:
            return read_artifact(ref.path)
        except (ReasonError, FileNotFoundError):
            pass
    elif ref.path and Path(ref.path).exists() and ref.kind != "source":
        try:
            return read_artifact(ref.path)
        except ReasonError:
            return None
    if ref.version is None:
        return None
    return next((a for a in known if a.kind == ref.kind and ref.version in a.versions), None)


def chain(artifact: Artifact, known: Iterable[Artifact] = ()) -> list[tuple[int, Ref, Artifact | None]]:
    """Depth-first (depth, parent reference, resolved artifact or None) for every ancestor of ``artifact``."""
    known = list(known)
    out: list[tuple[int, Ref, Artifact | None]] = []

    def visit(a: Artifact, depth: int, seen: frozenset[tuple[str, str]]) -> None:
        for ref in a.parents:
            found = resolve(ref, known)
            out.append((depth, ref, found))
            if found is None or ref.version not in (None, found.version):
                continue   # an earlier version: its parents are not on disk
            key = (str(found.path), ref.version or "")
            if key not in seen and found.path != a.path:
                visit(found, depth + 1, seen | {key})

    visit(artifact, 1, frozenset({(str(artifact.path), artifact.version)}))
    return out


def format_chain(artifact: Artifact, known: Iterable[Artifact] = ()) -> str:
    """The chain as indented lines, the artifact first."""
    lines = [artifact.label()]
    for key in ("checkpoints",):
        if artifact.extra.get(key):
            lines.append(f"  {key}: {', '.join(Path(c).name for c in artifact.extra[key])}")
    for depth, ref, found in chain(artifact, known):
        where = f" -> {found.location}" if found is not None and found.location != ref.path else ""
        if found is not None and ref.version not in (None, found.version):
            how = ", rewritten by forget" if ref.version in found.history else "; that version is gone"
            where += f" (an earlier version: the folder is now at {found.version}{how})"
        missing = "" if found is not None or ref.kind == "source" else "  [not found]"
        lines.append(f"{'  ' * depth}<- {ref.label()}{where}{missing}")
    return "\n".join(lines)
