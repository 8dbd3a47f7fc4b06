"""An Instagram "Download your information" export (JSON flavour): one person's own posts."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterator

from tagsight.ingest.schema import VISIBILITIES, SchemaError
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item

log = logging.getLogger(__name__)

# Where posts_N.json lives in the export layouts seen so far; the first that has posts_1.json wins.
POSTS_FOLDERS = ("your_instagram_activity/content", "content", "media")
PROFILE_FILES = ("personal_information/personal_information/personal_information.json",
                 "account_information/personal_information.json")
_POSTS_FILE = re.compile(r"posts_(\d+)\.json")


def fix_mojibake(text: str) -> str:
    """Undo the exports' encoding (UTF-8 bytes written as ``\\u00xx`` code points) when it round-trips."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def instagram_post_id(first_uri: str, timestamp: Any) -> str:
    """A stable id from the first media URI and the post's timestamp (exports carry no post id)."""
    return hashlib.sha256(f"{first_uri}\n{timestamp}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def find_posts_files(root: Path) -> list[Path]:
    """``posts_N.json`` files of the first layout that has them, in N order."""
    for folder in POSTS_FOLDERS:
        d = root / folder
        if (d / "posts_1.json").is_file():
            found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _POSTS_FILE.fullmatch(p.name))]
            return [p for _, p in sorted(found)]
    return []


def read_username(root: Path) -> str | None:
    """The account's username from the export's personal information, when present and readable."""
    for rel in PROFILE_FILES:
        path = root / rel
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_bytes())["profile_user"][0]["string_map_data"]["Username"]["value"]
        except (OSError, ValueError, LookupError, TypeError) as exc:
            log.warning("cannot read the username from %s (%s: %s)", path, type(exc).__name__, exc)
            continue
        if isinstance(value, str) and value.strip():
            return fix_mojibake(value)
    return None


@SOURCES.register("instagram")
class InstagramSource(Source):
    """Posts from ``content/posts_N.json`` (or ``your_instagram_activity/content/``, ``media/``).

    * The export is one account's own data: ``author_id`` is the username from
      ``personal_information.json``, else ``author``, else the export folder's name.
    * ``visibility`` defaults to ``"public"``: the export does not say. For a private account pass
      ``visibility="followers"``.
    * Exports carry no post id: ``post_id`` is a hash of the first media URI and the timestamp.
    * Captions (``title``) have their mojibake fixed; hashtags are parsed from them. Media paths are
      the ``uri`` values, relative to the export root (videos are kept: the pipeline rejects what
      it cannot decode, so every media item is accounted for). ``consent`` is unknown (None).
    * ``media_metadata`` (EXIF, GPS, camera) and ``location`` are never copied into a Post.
    * Archived and recently deleted posts (other files) are not read. Refs are ``content/posts_1.json[3]``.
    """

    format = "instagram"

    def __init__(self, path: str | Path, *, name: str | None = None, author: str | None = None,
                 visibility: str = "public") -> None:
        super().__init__(path, name=name)
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, got {visibility!r}")
        if not self.sniff(self.path):
            raise SourceError(f"{self.path} is not an Instagram export folder (no "
                              f"{' or '.join(f + '/posts_1.json' for f in POSTS_FOLDERS)})")
        self.visibility = visibility
        self.author = read_username(self.root) or author or self.root.resolve().name
        self.files = [(p.relative_to(self.root).as_posix(), _load_list(p)) for p in find_posts_files(self.root)]

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and any((path / folder / "posts_1.json").is_file() for folder in POSTS_FOLDERS)

    def __iter__(self) -> Iterator[Item]:
        for rel, items in self.files:
            for i, obj in enumerate(items):
                yield self._item(obj, f"{rel}[{i}]")

    def _item(self, obj: Any, ref: str) -> Item:
        if not isinstance(obj, dict):
            return Rejected(ref, "invalid_record", f"a post must be a JSON object, got {type(obj).__name__}",
                            author_id=self.author)
        try:
            record = self._record(obj)
        except SchemaError as exc:
            return Rejected(ref, exc.reason, str(exc), author_id=self.author)
        return record_to_item(record, ref, self.name)

    def _record(self, obj: dict[str, Any]) -> dict[str, Any]:
        media = obj.get("media")
        if not isinstance(media, list) or not all(isinstance(m, dict) and isinstance(m.get("uri"), str)
                                                  and m["uri"] for m in media):
            raise SchemaError("invalid_field:media", "media must be a list of objects with a 'uri' string")
        first = media[0] if media else {}
        timestamp = obj.get("creation_timestamp", first.get("creation_timestamp"))
        title = obj.get("title") or first.get("title") or ""
        if not isinstance(title, str):
            raise SchemaError("invalid_field:caption", "title must be a string")
        return {"post_id": instagram_post_id(first.get("uri", ""), timestamp), "author_id": self.author,
                "created_at": timestamp, "visibility": self.visibility, "caption": fix_mojibake(title),
                "media": [{"path": m["uri"]} for m in media]}


def _load_list(path: Path) -> list[Any]:
    """The JSON list in one posts file; SourceError when the file as a whole cannot be read."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise SourceError(f"{path} should hold a JSON list of posts, got {type(data).__name__}")
    return data
