"""What every source adapter is: an iterable of Posts and recorded rejections, in a stable order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Union

from tagsight.ingest.errors import SourceError
from tagsight.schema.posts import VISIBILITIES, Post
from tagsight.ingest.tree import FolderTree, Tree, is_archive, open_tree
from tagsight.registry import Registry


@dataclass(frozen=True)
class Rejected:
    """A source record that could not become a Post.

    ``ref`` says where it was (``posts.jsonl:17``, ``content/posts_1.json[3]``); ``post_id`` and
    ``author_id`` are filled when they could be read, so that counts and opt-out reports stay exact.
    """

    ref: str
    reason: str
    detail: str
    post_id: str | None = None
    author_id: str | None = None


Item = Union[Post, Rejected]


__all__ = ["SOURCES", "Item", "Rejected", "Source", "SourceError", "source_class", "source_tree"]


def source_tree(path: Path) -> Tree:
    """Where a source's files live: the folder or archive itself, else (a single file) its folder."""
    return open_tree(path) if path.is_dir() or is_archive(path) else FolderTree(path.parent)


class Source(ABC):
    """A collection of posts in a folder, a file, or an archive (``.zip``, ``.tar.gz``).

    ``self.tree`` holds the source's files: the folder or archive itself, or the folder of a single
    file. Media paths in the Posts are relative to the tree's root, and the pipeline reads them
    through it. ``self.root`` is the folder on disk (the archive's folder for an archive source).

    Iteration order is deterministic (sorted files, file order within a file) so that two runs
    over the same input produce the same dataset version.
    """

    format: ClassVar[str]
    # Keyword options of the constructor that a user may set (``tagsight ingest --author/--visibility/...``).
    user_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"source {self.path} does not exist")
        self.tree: Tree = source_tree(self.path)
        whole = self.path.is_dir() or self.tree.kind != "folder"
        self.name = name or (self.tree.name if whole else self.path.stem)
        self.root = self.path if self.path.is_dir() else self.path.parent

    def describe(self) -> dict[str, str]:
        """What was found, for ``--dry-run`` and logs: format, location, container; adapters add era etc."""
        return {"format": self.format, "location": str(self.path), "container": self.tree.kind}

    @classmethod
    @abstractmethod
    def sniff(cls, path: Path) -> bool:
        """True when ``path`` looks like this format (used by ``--format auto``)."""

    @abstractmethod
    def __iter__(self) -> Iterator[Item]:
        """Yield every record as a Post (with ``source=self.name``) or a Rejected."""


def check_visibility(value: str | None) -> None:
    """A visibility a user gave a source: one of the schema's, or None (the source decides)."""
    if value is not None and value not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}, got {value!r}")


SOURCES: Registry[Source] = Registry("source format")
"""Format name -> the ``Source`` class that reads it (a factory of sources; ``source_class`` gives the class)."""


def source_class(fmt: str) -> type[Source]:
    """The class registered for ``fmt``, for its class-level hooks (``sniff``, ``user_options``); KeyError naming
    the known formats for an unknown one."""
    cls = SOURCES.get(fmt)
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise TypeError(f"source format {fmt!r} is registered as {cls!r}, not a Source class")
    return cls
