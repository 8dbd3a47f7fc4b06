"""Which posts an artifact holds or was made from, through its lineage (``tagsight lineage --post``, ``forget``).

A dataset's current catalog lists its kept posts; posts removed by a rewrite keep a decision row
naming the version they were removed from, and the manifest's ``history`` orders the versions, so
``version_holds`` can tell which posts a given earlier version held. A version that is not in the
history any more (the folder was re-ingested) is answered conservatively: every post the folder
holds now or ever removed counts as held.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tagsight.schema import catalog
from tagsight.lineage import Artifact, Ref, iter_artifacts, read_artifact, resolve
from tagsight.privacy.forget import removed_post_keys, row_post_keys
from tagsight.privacy.tombstones import Tombstones, load_tombstones


def match_keys(post: str, keys: Iterable[str]) -> set[str]:
    """The keys among ``keys`` that name ``post`` (a ``source/post_id`` key or a bare post id)."""
    return {k for k in keys if k == post or k.split("/", 1)[-1] == post}


def current_post_keys(dataset_dir: str | Path) -> set[str]:
    posts = catalog.read_table(dataset_dir, "posts", ["source", "post_id"])
    return {k for k in row_post_keys(posts) if k is not None}


def version_holds(dataset_dir: str | Path, version: str | None, keys: set[str]) -> set[str]:
    """The keys among ``keys`` that version ``version`` of the dataset held (see the module docstring)."""
    if not keys:
        return set()
    dataset = read_artifact(dataset_dir)
    held = current_post_keys(dataset_dir) & keys
    removed = {k: v for k, v in removed_post_keys(dataset_dir).items() if k in keys}
    versions = list(dataset.versions)
    if version not in versions:
        return held | set(removed)
    i = versions.index(version)
    return held | {k for k, v in removed.items() if v not in versions or versions.index(v) >= i}


def filtered_out(dataset_dir: str | Path, ref: Ref) -> set[str]:
    """Kept posts the loader left out when ``ref``'s reader used the dataset (its first N tombstones applied)."""
    if not ref.tombstones_applied:
        return set()
    applied = Tombstones.of(load_tombstones(dataset_dir).rows[: ref.tombstones_applied])
    posts = catalog.read_table(dataset_dir, "posts", ["source", "post_id", "author_id", "hashtags"])
    keys = row_post_keys(posts)
    return {k for k, a, t in zip(keys, posts["author_id"].to_pylist(), posts["hashtags"].to_pylist())
            if k is not None and applied.forgets(k, a, t or ())}


def made_from(artifact: Artifact, keys: set[str], known: list[Artifact]) -> set[str]:
    """The keys among ``keys`` the artifact holds itself or that a dataset version in its lineage held."""
    found = set(artifact.post_keys & keys) if artifact.post_keys is not None else set()
    if artifact.kind == "dataset":
        return found | version_holds(artifact.path, artifact.version, keys)
    stack, seen = [artifact], set()
    while stack:
        a = stack.pop()
        for ref in a.parents:
            parent = resolve(ref, known)
            if parent is None or (str(parent.path), ref.version) in seen:
                continue
            seen.add((str(parent.path), ref.version))
            if parent.kind == "dataset":
                found |= version_holds(parent.path, ref.version, keys) - filtered_out(parent.path, ref)
            else:
                found |= set(parent.post_keys & keys) if parent.post_keys is not None else set()
                stack.append(parent)
    return found


def artifacts_with_post(post: str, roots: Iterable[str | Path]) -> list[tuple[Artifact, str]]:
    """Every artifact under ``roots`` that contains ``post`` or was made from a dataset version holding it, with how."""
    known = [a for root in roots for a in iter_artifacts(root)]
    keys: set[str] = set()
    for a in known:
        if a.kind == "dataset":
            keys |= match_keys(post, current_post_keys(a.path) | set(removed_post_keys(a.path)))
        elif a.post_keys is not None:
            keys |= match_keys(post, a.post_keys)
    out = []
    for a in known:
        if a.post_keys is not None and a.post_keys & keys:
            out.append((a, "contains"))
        elif a.kind == "dataset" and current_post_keys(a.path) & keys:
            out.append((a, "contains"))
        elif made_from(a, keys, known):
            out.append((a, "made from a version that held it" if a.kind == "dataset" else "trained on / made from"))
    return out
