"""``tagsight ingest SOURCE --out DATASET_DIR``: consent-gated catalog and WebDataset shards."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import add_config_options, add_deprecated, add_json_option, emit, input_file
from tagsight.cli.engine import add_engine_options, engine_config
from tagsight.storage import dataset_path, is_url

if TYPE_CHECKING:
    from tagsight.ingest.fetch import FetchConfig
    from tagsight.ingest.pipeline import IngestConfig
    from tagsight.ingest.sources import Source
    from tagsight.privacy.policy import ConsentPolicy

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest", help="ingest a collection of posts into a catalog and WebDataset shards",
        description="Read posts from SOURCE, keep only what the consent policy allows, strip image metadata, "
                    "de-duplicate, and write DATASET_DIR/manifest.json, DATASET_DIR/shards/*.tar and "
                    "DATASET_DIR/catalog/*.parquet. Resumable: rerun the same command after an interruption.")
    p.add_argument("source", help="a JSONL/Parquet file or folder, an image folder, an export as "
                   "downloaded (Instagram, Facebook, X/Twitter, Mastodon, Pixelfed: folder or .zip/.tar.gz) or "
                   "WebDataset shards, or a URL list (--format urls); a local path or an fsspec URL "
                   "(s3://bucket/export.zip: downloaded into a temporary folder for the run and removed after)")
    p.add_argument("--out", type=dataset_path, required=True, help="dataset folder to write (created if missing), "
                   "or an fsspec URL (s3://bucket/ds): built in a local staging folder, then uploaded with "
                   "manifest.json last (docs/storage.md)")
    p.add_argument("--format", default="auto", help="source format: auto (sniff), jsonl, parquet, folder, "
                   "instagram, activitypub, pixelfed, facebook, twitter, webdataset, tagsonly, urls (URL + caption lists as "
                   "img2dataset reads them: .txt/.csv/.tsv/.jsonl/.parquet; implies --fetch; never sniffed) "
                   "(default: auto)")
    add_config_options(p, "ConsentPolicy (the consent policy; default: public posts only, consent not refused, "
                          "#noai honoured)", "allowed_visibility=[public,unlisted]")
    add_deprecated(p, "--policy", "--config FILE", dest="config", type=input_file)
    p.add_argument("--optout", type=input_file, action="append", default=[], help="opt-out list file (author ids, "
                   "'post:ID' lines), local or an fsspec URL; repeatable; added to the policy's lists")
    p.add_argument("--blur-faces", action="store_true", help="blur faces (OpenCV Haar cascade) in stored images")
    p.add_argument("--workers", type=int, default=0, help="image worker processes (default: one per core)")
    p.add_argument("--max-side", type=int, default=None, help="longest side of stored images in pixels (default 384)")
    p.add_argument("--jpeg-quality", type=int, default=None, help="JPEG quality of stored images (default 90)")
    p.add_argument("--shard-size", type=int, default=None, help="samples per tar shard (default 1000)")
    p.add_argument("--near-radius", type=int, default=None, help="perceptual-hash Hamming radius for near "
                   "duplicates; -1 disables (default 3)")
    p.add_argument("--source-name", default=None, help="name of the source in catalog keys (default: the "
                   "source's file or folder name)")
    p.add_argument("--author", default=None, help="folder, Instagram, Facebook, X/Twitter and WebDataset sources: the author id of the posts "
                   "(default: from the export, else 'unknown')")
    p.add_argument("--visibility", default=None, help="folder, Instagram, Facebook, X/Twitter and WebDataset "
                   "sources: visibility of the posts (defaults: folder and Instagram public, Facebook followers, "
                   "WebDataset private; a private or protected account's posts stay non-public whatever is given)")
    p.add_argument("--dry-run", action="store_true", help="write nothing: report the format and era detected, "
                   "posts and media found, the visibility mix and what the consent policy would refuse and why")
    p.add_argument("--class-as-hashtag", action="store_true", help="folder sources: the class folder name (a WordNet noun id such as n01440764, the ImageNet layout, as its noun: #tench) "
                   "becomes a hashtag (default: it is only recorded as the post's label)")
    web = p.add_argument_group("remote media (http/https URLs; see docs/ingest.md, 'URL sources and fetching')")
    web.add_argument("--fetch", action="store_true", help="fetch http(s) media (robots.txt, X-Robots-Tag and TDM-Rep "
                     "opt-outs honoured); without it they are rejected as remote_media_unsupported")
    web.add_argument("--url-col", default=None, help="urls sources: the URL column (default: url)")
    web.add_argument("--caption-col", default=None, help="urls sources: the caption column (default: caption)")
    web.add_argument("--fetch-threads", type=int, default=None, help="concurrent requests in total (default 16)")
    web.add_argument("--fetch-per-host", type=int, default=None, help="concurrent requests per host (default 4)")
    web.add_argument("--fetch-timeout", type=float, default=None, help="seconds to connect and for each read "
                     "(default 10)")
    web.add_argument("--fetch-retries", type=int, default=None, help="retries after a timeout, connection error, "
                     "429 or 5xx, with exponential backoff (default 2)")
    web.add_argument("--max-redirects", type=int, default=None, help="redirects followed per URL (default 5)")
    web.add_argument("--allow-private-addresses", action="store_true", default=None, help="fetch from hosts that "
                     "resolve to private, loopback, link-local, multicast or reserved addresses (default: such URLs "
                     "are refused as private_address, so a URL list cannot reach services inside your network)")
    add_engine_options(p, "the image blocks (and URL fetching)")
    add_json_option(p)
    p.set_defaults(func=run)


def build_policy(args: argparse.Namespace) -> ConsentPolicy:
    from tagsight.privacy.policy import ConsentPolicy

    policy = ConsentPolicy.from_yaml(args.config, args.overrides)
    files = policy.optout_files + tuple(str(p) for p in args.optout)
    return replace(policy, optout_files=files, blur_faces=policy.blur_faces or args.blur_faces)


def build_config(args: argparse.Namespace) -> IngestConfig:
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig

    image = {k: v for k, v in (("max_side", args.max_side), ("jpeg_quality", args.jpeg_quality)) if v is not None}
    options: dict[str, Any] = {"workers": args.workers, "image": ImageConfig(**image)}
    if args.shard_size is not None:
        options["samples_per_shard"] = args.shard_size
    if args.near_radius is not None:
        options["near_duplicate_radius"] = None if args.near_radius < 0 else args.near_radius
    options["fetch"] = build_fetch_config(args)
    return IngestConfig(**options)


# FetchConfig field -> argparse destination of its option
_FETCH_OPTIONS = (("threads", "fetch_threads"), ("per_host", "fetch_per_host"), ("timeout", "fetch_timeout"),
                  ("retries", "fetch_retries"), ("max_redirects", "max_redirects"),
                  ("allow_private_addresses", "allow_private_addresses"))


def fetching(args: argparse.Namespace) -> bool:
    return bool(args.fetch) or args.format == "urls"


def build_fetch_config(args: argparse.Namespace) -> FetchConfig | None:
    """The FetchConfig of ``--fetch``/``--format urls``, else None; fetch options without fetching are refused."""
    from tagsight.ingest.fetch import FetchConfig

    given = {name: getattr(args, dest) for name, dest in _FETCH_OPTIONS if getattr(args, dest) is not None}
    if fetching(args):
        return FetchConfig(**given)
    if given:
        flags = ", ".join("--" + dest.replace("_", "-") for name, dest in _FETCH_OPTIONS if name in given)
        raise ValueError(f"{flags}: only with --fetch or --format urls")
    return None


def open_cli_source(args: argparse.Namespace) -> Source:
    from tagsight.ingest.sources import SourceError, open_source, sniff_format, source_class

    fmt = sniff_format(args.source) if args.format == "auto" else args.format
    given = {"author": args.author, "visibility": args.visibility, "class_as_hashtag": args.class_as_hashtag,
             "url_col": args.url_col, "caption_col": args.caption_col}
    accepted = source_class(fmt).user_options
    ignored = sorted(k for k, v in given.items() if v and k not in accepted)
    if ignored:
        flags = " and ".join("--" + k.replace("_", "-") for k in ignored)
        raise SourceError(f"{flags}: not an option of {fmt} sources (which take: "
                          f"{', '.join('--' + k.replace('_', '-') for k in accepted) or 'none'})")
    options = {k: v for k, v in given.items() if v and k in accepted}
    return open_source(args.source, fmt, name=args.source_name, **options)


def publish(staging: Path, url: str) -> bool:
    """Ship the positional index with the dataset, upload it with its manifest last, then drop the staging folder.
    False (with the reason on stderr) when the upload fails: the staging folder stays for the rerun."""
    import shutil

    from tagsight.data.index import SampleIndex
    from tagsight.fsio import ReasonError
    from tagsight.storage import publish_folder

    SampleIndex.build(staging)
    try:
        publish_folder(staging, url)
    except ReasonError as exc:
        print(f"tagsight ingest: the upload to {url} stopped ({exc.reason}: {exc}); {url} has no manifest, so no "
              "reader takes it for a dataset; run the same command again to complete it", file=sys.stderr)
        return False
    shutil.rmtree(staging)
    return True


def run(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.storage import downloaded_input

    with contextlib.ExitStack() as stack:
        try:
            local = stack.enter_context(downloaded_input(args.source))
        except ReasonError as exc:
            print(f"tagsight ingest: the source cannot be read: {exc.reason}: {exc}", file=sys.stderr)
            return 2
        return ingest_from(argparse.Namespace(**{**vars(args), "source": local}))


def ingest_from(args: argparse.Namespace) -> int:
    """``run`` with ``args.source`` a local path."""
    from tagsight.engines import EngineError, create_engine
    from tagsight.ingest.pipeline import dry_run, ingest
    from tagsight.storage import staging_folder
    from tagsight.ingest.sources import SourceError

    try:
        source = open_cli_source(args)
        policy, cfg = build_policy(args), build_config(args)
        engine_cfg = engine_config(args, args.workers)
    except (SourceError, ValueError, KeyError, OSError) as exc:
        print(f"tagsight ingest: {exc}", file=sys.stderr)
        return 2
    try:
        out = staging_folder(args.out) if is_url(args.out) else args.out
        if args.dry_run:
            report = dry_run(source, policy, out, fetch=fetching(args))
            emit(args, {"dry_run": True, **report.to_dict()}, report.format)
            return 0
        with create_engine(engine_cfg) as engine:
            summary = ingest(source, out, policy, cfg, engine)
        if is_url(args.out) and not publish(out, args.out):
            return 1
    except SourceError as exc:
        print(f"tagsight ingest: the source cannot be read: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"tagsight ingest: {exc}", file=sys.stderr)
        return 2
    emit(args, {"out": str(args.out), **summary.to_dict()}, summary.format)
    return 0
