"""Source adapters. ``open_source(path, fmt)`` picks one by name or by sniffing the path."""

from __future__ import annotations

from pathlib import Path

from typing import Any

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, source_class
from tagsight.ingest.tree import is_archive, open_tree

# Import the adapters so that they register themselves; order is the sniffing order.
from tagsight.ingest.sources import instagram, activitypub, pixelfed, jsonl, parquet, tagsonly, folder  # noqa: E402,F401
from tagsight.ingest.sources import facebook, twitter, webdataset  # noqa: E402,F401
from tagsight.ingest.sources import urls  # noqa: E402,F401  (named with --format urls, never sniffed)

__all__ = ["SOURCES", "Item", "Rejected", "Source", "SourceError", "open_source", "sniff_format", "source_class"]

SNIFF_ORDER = ("instagram", "activitypub", "pixelfed", "facebook", "twitter", "webdataset", "jsonl", "parquet",
               "folder")


def sniff_format(path: str | Path) -> str:
    """The first format whose ``sniff`` accepts ``path``; SourceError when none does."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"source {p} does not exist")
    if is_archive(p):
        open_tree(p)  # an unsafe, truncated or oversized archive is refused here, with its reason
    for fmt in SNIFF_ORDER:
        if source_class(fmt).sniff(p):
            return fmt
    if is_archive(p):
        raise SourceError(f"cannot tell the format of {p}: it is an archive that holds no export tagsight "
                          "recognises (Instagram, Facebook, X/Twitter, Mastodon, Pixelfed, WebDataset shards); "
                          "unpack it and ingest the folder inside (an image folder is read as one post per image)")
    raise SourceError(f"cannot tell the format of {p}; pass --format ({', '.join(SOURCES.names())})")


def open_source(path: str | Path, fmt: str = "auto", **options: Any) -> Source:
    """Open a source by format name (``auto`` sniffs)."""
    fmt = sniff_format(path) if fmt == "auto" else fmt
    return SOURCES.get(fmt)(path, **options)
