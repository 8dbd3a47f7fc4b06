"""An ActivityPub outbox as exported by Mastodon or Pixelfed (``outbox.json`` + ``media_attachments/``)."""

from __future__ import annotations

import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item

log = logging.getLogger(__name__)

OUTBOX = "outbox.json"
PUBLIC = frozenset({"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"})
IMAGE_OBJECTS_WITH_ATTACHMENTS = ("Image", "Article")
_BLOCK_TAGS = frozenset({"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SNIFF_BYTES = 4096


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; ``<br>`` is a newline, a closed block a blank line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of a post's HTML ``content``: tags stripped, entities unescaped, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


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


def _media_item(attachment: Any) -> dict[str, Any] | None:
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
    url = urls[0]
    return {"url": url, "alt_text": alt} if _REMOTE.match(url) else {"path": url.lstrip("/"), "alt_text": alt}


def _caption(obj: dict[str, Any]) -> Any:
    content = obj.get("content")
    if content is None and isinstance(obj.get("contentMap"), dict) and obj["contentMap"]:
        content = obj["contentMap"][sorted(obj["contentMap"])[0]]
    if content is None:
        return ""
    return html_to_text(content) if isinstance(content, str) else content  # a non-string is rejected later


def _hashtags(obj: dict[str, Any]) -> list[str] | None:
    tags = obj.get("tag")
    tags = tags if isinstance(tags, list) else [tags]
    names = [t["name"] for t in tags if isinstance(t, dict) and t.get("type") == "Hashtag"
             and isinstance(t.get("name"), str) and t["name"].strip("#＃ ")]
    return names or None


def _attachments(obj: dict[str, Any]) -> list[Any]:
    value = obj.get("attachment")
    return value if isinstance(value, list) else ([] if value is None else [value])


@SOURCES.register("activitypub")
class ActivityPubSource(Source):
    """Posts from an ActivityPub outbox: a folder holding ``outbox.json``, or the JSON file itself.

    * ``Create`` activities of ``Note`` objects are posts; ``Image``/``Article`` objects too when they
      have attachments. ``Announce`` (a boost of someone else's post) gives Rejected ``not_authored``;
      other activities give ``unsupported_activity``; other or non-embedded objects ``unsupported_object``.
    * ``post_id`` = the object's ``id`` URL; ``author_id`` = ``attributedTo``, else the activity's ``actor``;
      ``created_at`` = ``published``; ``caption`` = ``content`` as plain text.
    * Hashtags from ``tag[]`` entries of type ``Hashtag``, else parsed from the caption.
    * Media = image attachments (``mediaType`` image/*); the ``url`` is relative to the export folder
      (leading ``/`` stripped); ``name`` is the alt text. Other attachments are dropped (counted in
      ``extra["dropped_attachments"]``); a post with no image is still yielded.
    * Visibility from ``to``/``cc`` (the object's, else the activity's): public collection in ``to`` ->
      public, only in ``cc`` -> unlisted, a ``.../followers`` collection in ``to`` -> followers, else direct.
    """

    format = "activitypub"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        self.outbox = self.path / OUTBOX if self.path.is_dir() else self.path
        if not self.outbox.is_file():
            raise SourceError(f"{self.path} holds no {OUTBOX}: not an ActivityPub export")
        self.items = _load_outbox(self.outbox)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        if path.is_dir():
            return (path / OUTBOX).is_file()
        if path.name == OUTBOX:
            return True
        if path.suffix.lower() != ".json" or not path.is_file():
            return False
        try:
            with path.open("rb") as f:
                head = f.read(_SNIFF_BYTES)
        except OSError:
            return False
        return b'"OrderedCollection' in head and b'"orderedItems"' in head

    def __iter__(self) -> Iterator[Item]:
        for i, activity in enumerate(self.items):
            yield self._item(activity, f"{self.outbox.name}[{i}]")

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
        if kind != "Note" and not (kind in IMAGE_OBJECTS_WITH_ATTACHMENTS and attachments):
            return Rejected(ref, "unsupported_object", f"object type {kind!r} is not a post with images "
                            f"(Note, or {'/'.join(IMAGE_OBJECTS_WITH_ATTACHMENTS)} with attachments)",
                            _first(obj.get("id")), ids[1])
        return self._post(act, obj, attachments, ref)

    def _post(self, act: dict[str, Any], obj: dict[str, Any], attachments: list[Any], ref: str) -> Item:
        media = [m for m in map(_media_item, attachments) if m is not None]
        audience = obj if ("to" in obj or "cc" in obj) else act
        record = {"post_id": obj.get("id"), "author_id": _first(obj.get("attributedTo")) or _first(act.get("actor")),
                  "created_at": obj.get("published") or act.get("published"),
                  "visibility": ap_visibility(audience.get("to"), audience.get("cc")),
                  "caption": _caption(obj), "media": media}
        hashtags = _hashtags(obj)
        if hashtags is not None:
            record["hashtags"] = hashtags
        dropped = len(attachments) - len(media)
        if dropped:
            log.debug("%s: %d non-image attachment(s) dropped", ref, dropped)
        return record_to_item(record, ref, self.name, {"dropped_attachments": dropped} if dropped else None)


def _first(value: Any) -> str | None:
    ids = _strings(value)
    return ids[0] if ids else None


def _load_outbox(path: Path) -> list[Any]:
    """The ``orderedItems`` of the outbox; SourceError when the file as a whole cannot be read."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("orderedItems"), list):
        raise SourceError(f"{path} is not an ActivityPub OrderedCollection with an 'orderedItems' list")
    return data["orderedItems"]
