"""``tagsight forget --author ID | --post ID | --hashtag TAG | --optout-file F --root DIR [--rewrite]``, ``--audit ROOT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tagsight.cli.options import add_json_option, emit, input_file, jsonable, local_cache_folder
from tagsight.fsio import ReasonError
from tagsight.lineage import RECORD_FILES
from tagsight.storage import dataset_path, local_folder, output_folder

RECORD_NAMES = tuple(RECORD_FILES)

DEFAULT_FEATURE_CACHE = Path.home() / ".cache" / "tagsight" / "features"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("forget", help="forget a person, a post or a hashtag everywhere: datasets, features, runs",
                       description="Record tombstones in every dataset under --root, then remove the forgotten posts "
                                   "from every artifact tagsight made there (and in the feature cache) and list the "
                                   "runs whose lineage includes them. Idempotent; safe while a server runs.")
    p.add_argument("--author", action="append", default=[], metavar="ID", help="an author id (repeatable)")
    p.add_argument("--post", action="append", default=[], metavar="ID", help="a post key source/post_id or post id")
    p.add_argument("--hashtag", action="append", default=[], metavar="TAG", help="a hashtag (folded: #No_AI = noai)")
    p.add_argument("--optout-file", action="append", default=[], type=input_file, metavar="F",
                   help="lines author:ID, post:ID, hashtag:TAG or a bare author id; local or an fsspec URL")
    p.add_argument("--root", type=dataset_path, default=None,
                   help="folder holding the datasets, vocabularies and runs, or an fsspec URL (copied here, changed "
                        "artifacts published back with their records last: docs/storage.md)")
    p.add_argument("--audit", type=dataset_path, default=None, metavar="ROOT",
                   help="forget nothing: walk every artifact under ROOT (and --cache-dir) and report any trace of a "
                        "post its datasets' tombstones forget (content, key, embedding, cached feature); exit 1 "
                        "when a trace is found, 0 when clean")
    p.add_argument("--rewrite", action="store_true",
                   help="also rewrite the shards and catalog as a new dataset version without the posts "
                        "(without it the loader filters them against the tombstones)")
    p.add_argument("--cache-dir", type=local_cache_folder, default=DEFAULT_FEATURE_CACHE,
                   help=f"feature cache to purge as well, a local folder (default {DEFAULT_FEATURE_CACHE})")
    p.add_argument("--reason", default="request", help="reason recorded with the tombstones (default: request)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
    from tagsight.privacy.forget import forget, requests_from

    if args.audit is not None:
        return run_audit(args)
    if args.root is None:
        print("tagsight forget: no_root: give --root DIR (or --audit ROOT)", file=sys.stderr)
        return 2
    try:
        requests = requests_from(args.author, args.post, args.hashtag, args.optout_file, args.reason)
        with output_folder(args.root, marker=RECORD_NAMES) as root:   # a URL: a local copy, synced back after
            report = forget(requests, [root] + ([args.cache_dir] if args.cache_dir.is_dir() else []),
                            rewrite=args.rewrite)
    except ReasonError as exc:
        print(f"tagsight forget: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    emit(args, {**jsonable(report), "changed": len(report.changed)}, report.format)
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from tagsight.privacy.audit import audit

    if args.author or args.post or args.hashtag or args.optout_file or args.rewrite:
        print("tagsight forget: audit_only: --audit forgets nothing; run the forget first, then audit",
              file=sys.stderr)
        return 2
    try:
        roots = [local_folder(args.audit)] + ([args.cache_dir] if args.cache_dir.is_dir() else [])
        report = audit(roots)
    except ReasonError as exc:
        print(f"tagsight forget: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    emit(args, {**jsonable(report), "clean": report.clean}, report.format)
    return 0 if report.clean else 1
