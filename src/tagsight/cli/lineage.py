"""``tagsight lineage ARTIFACT`` (the chain it was made from) or ``tagsight lineage --post ID --root DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import add_json_option, emit
from tagsight.fsio import ReasonError
from tagsight.storage import dataset_path, is_url

if TYPE_CHECKING:
    from tagsight.lineage import Artifact


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lineage", help="what an artifact was made from, or every artifact holding a post",
                       description="With ARTIFACT (a dataset, vocabulary, run, bundle, export, index folder or feature file): print "
                                   "the chain of parents, resolving path-less ones under --root. With --post: list "
                                   "every artifact under --root that contains the post or was made from a dataset "
                                   "version that held it.")
    p.add_argument("artifact", nargs="?", type=dataset_path, help="a folder with manifest.json, vocab.json, run.json, "
                                                          "bundle.json or lineage.json, or a cached-feature "
                                                          ".safetensors file")
    p.add_argument("--post", metavar="ID", help="a post key source/post_id or a post id")
    p.add_argument("--root", type=dataset_path, default=None,
                   help="where to look, a folder or an fsspec URL (default: the folder two levels above the artifact)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.lineage import format_chain, iter_artifacts, read_artifact
    from tagsight.privacy.trace import artifacts_with_post

    if (args.artifact is None) == (args.post is None):
        print("tagsight lineage: give either ARTIFACT or --post ID (with --root)", file=sys.stderr)
        return 2
    try:
        if args.post is not None:
            if args.root is None:
                print("tagsight lineage: --post needs --root DIR", file=sys.stderr)
                return 2
            found = artifacts_with_post(args.post, [args.root])
            rows = [{"kind": a.kind, "path": a.location, "how": how, "version": a.version} for a, how in found]
            emit(args, {"post": args.post, "root": str(args.root), "artifacts": rows},
                 lambda: "\n".join([*(f"{r['kind']:<9} {r['path']}  ({r['how']}; version {r['version']})"
                                      for r in rows),
                                    f"{len(rows)} artifact(s) under {args.root} hold or were made from post "
                                    f"{args.post}"]))
            return 0
        artifact = read_artifact(args.artifact)
        root = args.root or grandparent(artifact.location)
        known = list(iter_artifacts(root))
        emit(args, chain_record(artifact, known), lambda: format_chain(artifact, known))
    except ReasonError as exc:
        print(f"tagsight lineage: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    return 0


def chain_record(artifact: Artifact, known: list[Artifact]) -> dict[str, Any]:
    """The artifact and its chain of parents (depth, what it names, where it was found under the root) as data."""
    from tagsight.lineage import chain

    return {"kind": artifact.kind, "path": artifact.location, "version": artifact.version,
            "chain": [{"depth": depth, **ref.to_dict(), "found": found.location if found is not None else None,
                       "found_version": found.version if found is not None else None}
                      for depth, ref, found in chain(artifact, known)]}


def grandparent(location: str) -> str | Path:
    """The folder two levels above an artifact (``root/runs/r`` -> ``root``), for a local path or a URL."""
    if is_url(location):
        return location.rstrip("/").rsplit("/", 2)[0]
    return Path(location).resolve().parent.parent
