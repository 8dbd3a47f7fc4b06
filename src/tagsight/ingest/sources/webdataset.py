"""WebDataset shards made by other tools (img2dataset's output): ``NNNNN.tar`` of ``<key>.jpg/.txt/.json``."""

from __future__ import annotations

import json
import logging
import os
import re
import tarfile
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, check_visibility
from tagsight.ingest.sources.folder import IMAGE_EXTENSIONS
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.ingest.tree import Tree, archive_stem, open_tree
from tagsight.ingest.tree_safety import TreeError

log = logging.getLogger(__name__)

SIDECAR_MAX_BYTES = 1 << 20
IMAGE_EXTS = frozenset(e.lstrip(".") for e in IMAGE_EXTENSIONS)
TIME_FIELDS = ("created_at", "date", "timestamp")
_SHARD = re.compile(r"[^.][^/]*\.tar")
_SNIFF_MEMBERS = 6


def split_key(rel: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the file name; the rest is the extension."""
    folder, _, base = rel.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower() if dot else ""


def group_samples(files: list[str]) -> dict[str, dict[str, str]]:
    """``{key: {extension: member}}`` in the order keys first appear in ``files``."""
    samples: dict[str, dict[str, str]] = {}
    for rel in files:
        key, ext = split_key(rel)
        if key and ext:
            samples.setdefault(key, {}).setdefault(ext, rel)
    return samples


def looks_like_shard(path: Path) -> bool:
    """The first members of an uncompressed tar are flat WebDataset sample files (``key.ext``), one a sidecar."""
    try:
        with tarfile.open(path, "r:") as tar:
            names = []
            for info in tar:
                names.append(info.name)
                if len(names) >= _SNIFF_MEMBERS:
                    break
    except (OSError, EOFError, tarfile.TarError):
        return False
    exts = [split_key(n)[1] for n in names]
    return bool(names) and all("/" not in n and e for n, e in zip(names, exts)) and \
        any(e in ("json", "txt") for e in exts) and any(e in IMAGE_EXTS for e in exts)


class ShardsTree(Tree):
    """A folder of tar shards as one tree: ``00000.tar/000000001.jpg`` is member ``000000001.jpg`` of shard
    ``00000.tar``, read in place through that shard's own (checked) archive tree, never unpacked."""

    kind = "tar"

    def __init__(self, folder: Path, shards: dict[str, Tree]) -> None:
        self.root, self.location, self.name = folder, str(folder), folder.resolve().name
        self.shards = shards
        self._order = {name: i for i, name in enumerate(sorted(shards))}

    def _split(self, rel: str) -> tuple[Tree, str] | None:
        shard, _, member = rel.partition("/")
        tree = self.shards.get(shard)
        return (tree, member) if tree is not None and member else None

    def files(self) -> list[str]:
        return sorted(f"{name}/{m}" for name, tree in self.shards.items() for m in tree.files())

    def is_file(self, rel: str) -> bool:
        found = self._split(rel)
        return found is not None and found[0].is_file(found[1])

    def is_dir(self, rel: str) -> bool:
        return rel in self.shards or ((found := self._split(rel)) is not None and found[0].is_dir(found[1]))

    def listdir(self, rel: str) -> list[str]:
        shard, _, folder = rel.partition("/")
        tree = self.shards.get(shard)
        return tree.listdir(folder) if tree is not None else []

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        found = self._split(rel)
        if found is None:
            raise FileNotFoundError(f"{rel} is not a member of a shard in {self.location}")
        return found[0].read_bytes(found[1], max_bytes)

    def _head(self, rel: str, n: int) -> bytes:
        found = self._split(rel)
        if found is None:
            raise FileNotFoundError(f"{rel} is not a member of a shard in {self.location}")
        return found[0].read_head(found[1], n)

    def stamp(self, rel: str) -> str:
        found = self._split(rel)
        return f"{rel.partition('/')[0]}:{found[0].stamp(found[1])}" if found else "missing"

    def position(self, rel: str) -> int:
        found = self._split(rel)
        return (self._order[rel.partition("/")[0]] << 40) + found[0].position(found[1]) if found else 0


@SOURCES.register("webdataset")
class WebDatasetSource(Source):
    """Samples of WebDataset tar shards made by another tool (img2dataset: ``NNNNN.tar`` beside
    ``NNNNN_stats.json`` and ``NNNNN.parquet``): a folder of ``*.tar`` shards, or one shard.

    * A sample is the members sharing a key (the path up to the first dot of the file name): its image
      files (``.jpg``, ``.png``, ``.webp``...) are the media, read inside the shard without unpacking
      (media paths ``00000.tar/000000001.jpg``; ``000000001.jpg`` for a single shard); ``.txt`` is the
      caption, else the ``.json``'s ``caption``; hashtags are parsed from the caption.
    * ``post_id`` = the sample key; ``license`` = the ``.json``'s ``license``/``LICENSE``; ``created_at`` =
      the ``.json``'s ``created_at``/``date``/``timestamp``, else when the shard was made (the stats file's
      ``end_time``, else the shard file's modification time): the data carries no time of publication.
    * ``author_id`` = ``author`` when given, else the host of the ``.json``'s ``url`` (so an opt-out list
      can name a site), else the source name.
    * Scraped data records neither audience nor consent: ``visibility`` defaults to ``private``, so the
      default policy keeps nothing; pass ``visibility="public"`` for data you know was published openly
      (the policy's other rules, ``#noai`` and opt-out lists still apply).
    * Samples with a ``.json`` ``status`` other than ``success`` are Rejected ``download_failed``; samples
      without an image ``no_media``; an unreadable ``.json`` ``malformed_json``, a ``.txt`` that is not
      UTF-8 ``invalid_utf8``; a shard that cannot be read safely is one Rejected ``unreadable_shard``.
    * The ``.json``'s ``sha256`` (img2dataset: the downloaded original's) is not checked against the stored image.
    """

    format = "webdataset"
    user_options = ("author", "visibility")

    def __init__(self, path: str | Path, *, name: str | None = None, author: str | None = None,
                 visibility: str = "private") -> None:
        super().__init__(path, name=name)
        check_visibility(visibility)
        self.author, self.visibility = author, visibility
        self.failed: dict[str, str] = {}
        if self.path.is_dir():
            shards = self._shards_tree()
            self.tree, self.shard_trees = shards, dict(shards.shards)
        elif self.tree.kind == "tar":
            self.shard_trees = {"": self.tree}
        else:
            raise SourceError(f"{self.path} is not a WebDataset shard (a .tar) or a folder of them")
        if visibility != "public":
            log.warning("%s: WebDataset shards record no audience or consent; their samples are marked %r, so the "
                        "default policy keeps none (pass visibility 'public' for openly published data)",
                        self.path, visibility)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        try:
            if path.is_file():
                return path.suffix.lower() == ".tar" and looks_like_shard(path)
            if not path.is_dir():
                return False
            shards = sorted(p for p in path.iterdir() if _SHARD.fullmatch(p.name) and p.is_file())
            return bool(shards) and looks_like_shard(shards[0])
        except OSError:
            return False

    def _shards_tree(self) -> ShardsTree:
        trees: dict[str, Tree] = {}
        for shard in sorted(p.name for p in self.path.iterdir() if _SHARD.fullmatch(p.name) and p.is_file()):
            try:
                trees[shard] = open_tree(self.path / shard)
            except TreeError as exc:
                log.warning("shard %s cannot be read: %s", shard, exc)
                self.failed[shard] = str(exc)
        if not trees and not self.failed:
            raise SourceError(f"{self.path} holds no .tar shard: not a WebDataset folder")
        return ShardsTree(self.path, trees)

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "export": "WebDataset shards", "shards": str(len(self.shard_trees)),
                "unreadable shards": str(len(self.failed)),
                "visibility": f"{self.visibility} (the shards record no audience or consent)"}

    # ------------------------------------------------------------------ samples
    def __iter__(self) -> Iterator[Item]:
        for shard in sorted([*self.shard_trees, *self.failed]):
            if shard in self.failed:
                yield Rejected(shard, "unreadable_shard", self.failed[shard], author_id=self.author)
                continue
            prefix = f"{shard}/" if shard else ""
            members = self.shard_trees[shard].files()
            made = self._shard_time(shard)
            for key, files in group_samples(members).items():
                yield self._sample(prefix, key, files, made)

    def _shard_time(self, shard: str) -> float:
        """When the shard was made: img2dataset's ``<shard>_stats.json`` ``end_time``, else the file's mtime."""
        tar = self.path / shard if shard else self.path
        stats = tar.with_name(archive_stem(tar.name) + "_stats.json")
        try:
            value = json.loads(stats.read_bytes()).get("end_time") if stats.is_file() else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("cannot read %s (%s)", stats, exc)
        return os.stat(tar).st_mtime

    def _sample(self, prefix: str, key: str, files: dict[str, str], made: float) -> Item:
        ref, media = f"{prefix}{key}", [f"{prefix}{files[e]}" for e in sorted(files) if e in IMAGE_EXTS]
        try:
            meta = self._json(prefix, files.get("json"))
            caption = self._text(prefix, files.get("txt"))
        except _SampleError as exc:
            return Rejected(ref, exc.reason, exc.detail, key, self.author)
        author = self.author or _host(meta.get("url")) or self.name
        if meta.get("status") not in (None, "success"):
            return Rejected(ref, "download_failed", f"status {meta.get('status')!r}: {meta.get('error_message')}",
                            key, author)
        if not media:
            return Rejected(ref, "no_media", f"the sample has no image file ({', '.join(sorted(files))})", key, author)
        record = {"post_id": key, "author_id": author, "visibility": self.visibility,
                  "created_at": next((meta[f] for f in TIME_FIELDS if meta.get(f) not in (None, "")), made),
                  "caption": caption if caption is not None else meta.get("caption") or "",
                  "license": meta.get("license", meta.get("LICENSE")), "media": [{"path": m} for m in media]}
        return record_to_item(record, ref, self.name)

    def _json(self, prefix: str, member: str | None) -> dict[str, Any]:
        if member is None:
            return {}
        try:
            value = json.loads(self._member(prefix, member))
        except (ValueError, RecursionError) as exc:
            raise _SampleError("malformed_json", f"{member}: {exc}") from None
        if not isinstance(value, dict):
            raise _SampleError("malformed_json", f"{member} should hold a JSON object, got {type(value).__name__}")
        return value

    def _text(self, prefix: str, member: str | None) -> str | None:
        if member is None:
            return None
        try:
            return self._member(prefix, member).decode("utf-8-sig").strip()
        except UnicodeDecodeError as exc:
            raise _SampleError("invalid_utf8", f"{member} is not UTF-8: {exc}") from None

    def _member(self, prefix: str, member: str) -> bytes:
        try:
            return self.tree.read_bytes(f"{prefix}{member}", SIDECAR_MAX_BYTES)
        except (OSError, TreeError) as exc:
            raise _SampleError("malformed_sidecar", f"{member} cannot be read: {exc}") from None


class _SampleError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _host(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None
