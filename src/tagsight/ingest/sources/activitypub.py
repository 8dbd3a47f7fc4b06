"""A Mastodon account archive: ``outbox.json`` (an ActivityPub outbox), ``actor.json``, ``media_attachments/``."""

from __future__ import annotations

import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.schema.text import parse_hashtags
from tagsight.ingest.tree import is_archive, open_tree
from tagsight.ingest.tree_safety import MemberTooLarge, TreeError

log = logging.getLogger(__name__)

OUTBOX = "outbox.json"
MEDIA_DIR = "media_attachments/"
PUBLIC = frozenset({"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"})
IMAGE_OBJECTS_WITH_ATTACHMENTS = ("Image", "Article")
_BLOCK_TAGS = frozenset({"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SNIFF_BYTES = 4096
MAX_EXPORT_BYTES = 2 * 2**30
_URL_IN_TEXT = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)\S*")


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; ``<br>`` is a newline, a closed block a blank line.

    ``tag_parts`` is the same text without what a link to a URL *fragment* shows (``<a href=".../#x">``),
    so that hashtags parsed from it never come from a page anchor.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tag_parts: list[str] = []
        self._anchors: list[bool] = []  # one entry per open <a>: does its href carry a fragment?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._add("\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self._anchors.append("#" in href)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self._add("\n\n")
        elif tag == "a" and self._anchors:
            self._anchors.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.tag_parts.append(" " if any(self._anchors) else data)

    def _add(self, text: str) -> None:
        self.parts.append(text)
        self.tag_parts.append(text)


def _squeeze(parts: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "".join(parts)).strip()


def html_to_text(html: str) -> str:
    """Plain text of a post's HTML ``content``: tags stripped, entities unescaped, paragraphs kept."""
    return html_text_and_tag_text(html)[0]


def html_text_and_tag_text(html: str) -> tuple[str, str]:
    """(plain text, the text hashtags may be parsed from: links to URL fragments left out)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _squeeze(parser.parts), _squeeze(parser.tag_parts)


def text_hashtags(text: str) -> list[str]:
    """Hashtags written in plain text, by the fediverse's rule: never from a URL (``https://x.example/page/#anchor``
    gives none) and never digits alone (Mastodon and Pixelfed do not link ``#24`` as a hashtag)."""
    return [t for t in parse_hashtags(_URL_IN_TEXT.sub(" ", text)) if not t.isdigit()]


def _strings(value: Any) -> list[str]:
    """An ActivityStreams field that may be one value or a list, as a list of ids/strings."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("id") or item.get("href")
        if isinstance(item, str) and item:
            out.append(item)
    return out


def ap_visibility(to: Any, cc: Any) -> str:
    """Mastodon's audience rules: public, unlisted (public only in cc), followers, else direct."""
    to_list, cc_list = _strings(to), _strings(cc)
    if PUBLIC.intersection(to_list):
        return "public"
    if PUBLIC.intersection(cc_list):
        return "unlisted"
    if any(t.rstrip("/").endswith("/followers") for t in to_list):
        return "followers"
    return "direct"


API_VISIBILITY = {"public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct",
                  "limited": "direct"}
"""Mastodon API ``visibility`` values (Pixelfed's export, Mastodon's REST entities) -> ours: ``private`` is
Mastodon's followers-only; ``limited`` (a chosen circle) is as narrow as ``direct``."""


def api_visibility(value: Any) -> Any:
    """Our visibility for a Mastodon API value; an unknown value is passed on for the schema to reject."""
    return API_VISIBILITY.get(value.lower(), value) if isinstance(value, str) else value


def archive_media_path(url: str, exists: Callable[[str], bool]) -> dict[str, str]:
    """Where an attachment ``url`` of an outbox lies in the archive: ``{"path": member}``, or ``{"url": url}``
    for a remote file the archive does not hold.

    Mastodon strips only ``/system/`` from the URLs it writes, but stores every file at
    ``media_attachments/...``; instances that serve media from a named bucket or a ``/cache/`` prefix
    therefore write ``/BUCKET/media_attachments/files/...``. The path as written is tried first, then
    the path from its ``media_attachments/`` segment on (scheme and host dropped for full URLs). A
    path with a ``..`` component is never rewritten, so that the media stage refuses it.
    """
    remote = bool(_REMOTE.match(url))
    rel = (urlsplit(url).path if remote else url).lstrip("/")
    if ".." in re.split(r"[\\/]", rel):
        return {"url": url} if remote else {"path": rel}
    candidates = [rel]
    cut = rel.find(MEDIA_DIR)
    if cut > 0 and rel[cut - 1] == "/":
        candidates.append(rel[cut:])
    for candidate in candidates:
        if candidate and exists(candidate):
            return {"path": candidate}
    return {"url": url} if remote else {"path": candidates[-1]}


def _media_item(attachment: Any, exists: Callable[[str], bool]) -> dict[str, Any] | None:
    """An attachment as a media mapping, or None when it is not an image (video, audio, link...)."""
    if not isinstance(attachment, dict) or attachment.get("type") not in ("Document", "Image"):
        return None
    media_type = attachment.get("mediaType")
    if not (isinstance(media_type, str) and media_type.startswith("image/")):
        if media_type is not None or attachment.get("type") != "Image":
            return None
    urls = _strings(attachment.get("url"))
    if not urls:
        return None
    alt = attachment.get("name") if isinstance(attachment.get("name"), str) else None
    return {**archive_media_path(urls[0], exists), "alt_text": alt}


def _content(obj: dict[str, Any]) -> Any:
    content = obj.get("content")
    if content is None and isinstance(obj.get("contentMap"), dict) and obj["contentMap"]:
        content = obj["contentMap"][sorted(obj["contentMap"])[0]]
    return "" if content is None else content


def _hashtags(obj: dict[str, Any], tag_text: str) -> list[str]:
    """The ``tag[]`` entries of type ``Hashtag`` when the object has a ``tag`` key (even an empty one);
    parsed from the caption text (never from URLs) only when it has none."""
    if "tag" not in obj:
        return text_hashtags(tag_text)
    tags = obj["tag"] if isinstance(obj["tag"], list) else [obj["tag"]]
    return [t["name"] for t in tags if isinstance(t, dict) and t.get("type") == "Hashtag"
            and isinstance(t.get("name"), str) and t["name"].strip("#＃ ")]


def _attachments(obj: dict[str, Any]) -> list[Any]:
    value = obj.get("attachment")
    return value if isinstance(value, list) else ([] if value is None else [value])


def content_warning(value: Any) -> Any:
    """A content warning (``summary``, ``spoiler_text``) as text; None when absent or blank."""
    if isinstance(value, str):
        return value.strip() or None
    return value  # a non-string is rejected by the schema


def sniff_json_export(path: Path, member: str, looks_like: Callable[[bytes], bool],
                      head_bytes: int = _SNIFF_BYTES) -> bool:
    """A folder or archive holding ``member``, that file itself, or a ``.json`` file whose head ``looks_like`` one.

    False, never an error, for anything else (the sniffing contract of every source).
    """
    path = Path(path)
    try:
        if path.is_dir() or is_archive(path):
            return open_tree(path).is_file(member)
        if path.name == member:
            return path.is_file()
        if path.suffix.lower() != ".json" or not path.is_file():
            return False
        with path.open("rb") as f:
            head = f.read(head_bytes)
    except (OSError, SourceError):
        return False
    return looks_like(head)


@SOURCES.register("activitypub")
class ActivityPubSource(Source):
    """Posts from a Mastodon account archive (or any ActivityPub outbox): the archive as downloaded
    (``.zip`` since Mastodon 4.2, ``.tar.gz`` before), the unpacked folder, or ``outbox.json`` itself.

    * ``Create`` activities of ``Note`` objects are posts; ``Image``/``Article`` objects too when they
      have attachments. ``Announce`` (a boost of someone else's post) gives Rejected ``not_authored``;
      a ``Question`` (a poll) gives ``poll``; other activities give ``unsupported_activity``; other or
      non-embedded objects ``unsupported_object``.
    * ``post_id`` = the object's ``id`` URL; ``author_id`` = ``attributedTo``, else the activity's ``actor``;
      ``created_at`` = ``published``; ``caption`` = ``content`` as plain text.
    * Hashtags from the ``tag[]`` entries of type ``Hashtag`` whenever the object has a ``tag`` key;
      parsed from the caption text only when it has none, and never from URLs or links to page anchors.
    * ``sensitive`` and the content warning (``summary``) are carried as the post's ``sensitive`` and
      ``content_warning``.
    * Media = image attachments (``mediaType`` image/*), found where Mastodon stores them
      (``archive_media_path``); ``name`` is the alt text. Other attachments are dropped (counted in
      ``extra["dropped_attachments"]``); a post with no image is still yielded.
    * Visibility from ``to``/``cc`` (the object's, else the activity's): public collection in ``to`` ->
      public, only in ``cc`` -> unlisted, a ``.../followers`` collection in ``to`` -> followers, else direct.
    """

    format = "activitypub"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        outbox = export_member(self, OUTBOX)
        if outbox is None:
            raise SourceError(f"{self.path} holds no {OUTBOX}: not a Mastodon archive or ActivityPub outbox "
                              "(a Mastodon archive, .zip since 4.2, .tar.gz before, holds outbox.json, "
                              "actor.json and media_attachments/)")
        self.outbox: str = outbox
        self.items = _load_outbox(self, self.outbox)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return sniff_json_export(path, OUTBOX, lambda head: b'"OrderedCollection' in head and b'"orderedItems"' in head)

    def media_exists(self, rel: str) -> bool:
        """Whether the export holds a regular file at ``rel`` (used to find where Mastodon put a file)."""
        return self.tree.is_file(rel)

    def describe(self) -> dict[str, str]:
        """The export and its era as told by its package: Mastodon writes a .zip since 4.2, a .tar.gz before."""
        archive = self.tree.is_file("actor.json")
        era = {"zip": "Mastodon 4.2 or later (.zip)", "tar": "Mastodon before 4.2 (.tar.gz)"}.get(
            self.tree.kind, "unpacked folder (any Mastodon version)")
        return {**super().describe(), "export": "Mastodon archive" if archive else "ActivityPub outbox",
                "era": era if archive else "any", "outbox": self.outbox, "activities": str(len(self.items))}

    def __iter__(self) -> Iterator[Item]:
        for i, activity in enumerate(self.items):
            yield self._item(activity, f"{self.outbox}[{i}]")

    def _item(self, act: Any, ref: str) -> Item:
        if not isinstance(act, dict):
            return Rejected(ref, "invalid_record", f"an activity must be a JSON object, got {type(act).__name__}")
        kind, ids = act.get("type"), (_first(act.get("id")), _first(act.get("actor")))
        if kind == "Announce":
            return Rejected(ref, "not_authored", "a boost (Announce) of another account's post is not the "
                            "author's own post", *ids)
        if kind != "Create":
            return Rejected(ref, "unsupported_activity", f"activity type {kind!r} is not a post (only Create is)", *ids)
        obj = act.get("object")
        if not isinstance(obj, dict):
            return Rejected(ref, "unsupported_object", "the Create's object is not embedded in the outbox", *ids)
        kind, attachments = obj.get("type"), _attachments(obj)
        obj_ids = (_first(obj.get("id")), _first(obj.get("attributedTo")) or ids[1])
        if kind == "Question":
            return Rejected(ref, "poll", "a poll (Question) asks for votes; its options are not a photo post", *obj_ids)
        if kind != "Note" and not (kind in IMAGE_OBJECTS_WITH_ATTACHMENTS and attachments):
            return Rejected(ref, "unsupported_object", f"object type {kind!r} is not a post with images "
                            f"(Note, or {'/'.join(IMAGE_OBJECTS_WITH_ATTACHMENTS)} with attachments)", *obj_ids)
        return self._post(act, obj, attachments, ref)

    def _post(self, act: dict[str, Any], obj: dict[str, Any], attachments: list[Any], ref: str) -> Item:
        media = [m for m in (_media_item(a, self.media_exists) for a in attachments) if m is not None]
        audience = obj if ("to" in obj or "cc" in obj) else act
        content = _content(obj)
        caption, tag_text = html_text_and_tag_text(content) if isinstance(content, str) else (content, "")
        record = {"post_id": obj.get("id"), "author_id": _first(obj.get("attributedTo")) or _first(act.get("actor")),
                  "created_at": obj.get("published") or act.get("published"),
                  "visibility": ap_visibility(audience.get("to"), audience.get("cc")),
                  "caption": caption, "hashtags": _hashtags(obj, tag_text), "media": media,
                  "sensitive": obj.get("sensitive"), "content_warning": content_warning(obj.get("summary"))}
        dropped = len(attachments) - len(media)
        if dropped:
            log.debug("%s: %d non-image attachment(s) dropped", ref, dropped)
        return record_to_item(record, ref, self.name, {"dropped_attachments": dropped} if dropped else None)


def _first(value: Any) -> str | None:
    ids = _strings(value)
    return ids[0] if ids else None


def export_member(source: Source, filename: str) -> str | None:
    """Where the export file ``filename`` is in ``source.tree``: at the root of a folder or archive, or the
    file itself when ``source.path`` is that file (under any name). None when it is not there."""
    if source.path.is_dir() or source.tree.kind != "folder":
        return filename if source.tree.is_file(filename) else None
    return source.path.name if source.path.is_file() else None


def read_export_json(source: Source, rel: str, what: str) -> Any:
    """The parsed JSON of ``rel`` in the source's tree; SourceError naming ``what`` and what to do otherwise."""
    where = f"{what} {source.path}" if rel == source.path.name else f"{rel} of the {what} {source.path}"
    try:
        data = source.tree.read_bytes(rel, MAX_EXPORT_BYTES)
    except FileNotFoundError:
        raise SourceError(f"{where} is missing") from None
    except MemberTooLarge:
        raise SourceError(f"{where} is larger than {MAX_EXPORT_BYTES >> 20} MiB; split the export") from None
    except TreeError as exc:
        raise SourceError(f"cannot read {where}: {exc}") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SourceError(f"{where} is not valid JSON ({exc}): the download may be cut short; "
                          "download the export again") from None


def _load_outbox(source: Source, rel: str) -> list[Any]:
    """The ``orderedItems`` of the outbox; SourceError when the file as a whole cannot be read."""
    data = read_export_json(source, rel, "Mastodon archive")
    items = data.get("orderedItems") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SourceError(f"{rel} of {source.path} is not an ActivityPub OrderedCollection with an 'orderedItems' "
                          "list (Mastodon archives of every version since 2.x write one)")
    return items
