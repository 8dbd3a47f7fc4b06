"""A Pixelfed data export: ``pixelfed-statuses.json``, the account's posts as Mastodon API Status entities.

Pixelfed (Settings > Data Export > Statuses) hands out one JSON file: a list of Status entities
(``id``, ``uri``, ``created_at``, ``content`` HTML, ``visibility``, ``sensitive``, ``spoiler_text``,
``tags: [{name, url}]``, ``media_attachments: [{type, url, description, ...}]``, ``account``,
``reblog``, ``poll``). It holds no media files: the attachments are URLs on the instance; without
``--fetch`` they reach the media stage as ``remote_media_unsupported`` and every post
is still accounted for. Files the user downloaded next to the export, under the URL's path
(``storage/m/...``), are read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

from tagsight.ingest.sources.activitypub import (api_visibility, archive_media_path, content_warning, export_member,
                                                 html_text_and_tag_text, read_export_json, sniff_json_export,
                                                 text_hashtags)
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError
from tagsight.ingest.sources.jsonl import record_to_item

log = logging.getLogger(__name__)

STATUSES = "pixelfed-statuses.json"
_SNIFF_BYTES = 65536


def _is_image(attachment: Any) -> bool:
    if not isinstance(attachment, dict):
        return False
    mime = attachment.get("mime")
    return attachment.get("type") == "image" or (isinstance(mime, str) and mime.startswith("image/"))


def _account_id(account: Any) -> str | None:
    """The author: the account's profile URL, else ``acct``, else its API id."""
    if not isinstance(account, dict):
        return None
    for key in ("url", "acct", "id"):
        value = account.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


def _hashtags(status: dict[str, Any], tag_text: str) -> list[str]:
    """``tags[].name`` whenever the status has a ``tags`` key; parsed from the caption (never URLs) otherwise."""
    if "tags" not in status:
        return text_hashtags(tag_text)
    tags = status["tags"] if isinstance(status["tags"], list) else []
    return [t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)
            and t["name"].strip("#＃ ")]


def _caption(status: dict[str, Any]) -> tuple[Any, str]:
    content = status.get("content")
    if not content and isinstance(status.get("content_text"), str):
        return status["content_text"], status["content_text"]
    if content is None:
        return "", ""
    return html_text_and_tag_text(content) if isinstance(content, str) else (content, "")


@SOURCES.register("pixelfed")
class PixelfedSource(Source):
    """Posts from ``pixelfed-statuses.json``: the file (under any name), or a folder or archive holding it.

    * ``post_id`` = ``uri`` (the ActivityPub id, as in a Mastodon outbox), else ``url``, else ``id``;
      ``author_id`` = the account's ``url``, else ``acct``, else its ``id``.
    * ``caption`` = ``content`` as plain text (``content_text`` when there is no HTML); hashtags from
      ``tags[].name`` whenever the key exists, else parsed from the caption (never from URLs).
    * ``visibility``: ``public``, ``unlisted``, ``private`` (followers only) -> ``followers``, ``direct``.
    * ``sensitive`` and ``spoiler_text`` -> ``sensitive`` and ``content_warning``.
    * Media = image attachments by URL (``description`` is the alt text); other attachments are dropped
      and counted in ``extra["dropped_attachments"]``.
    * A boost (``reblog`` set) is Rejected ``not_authored``, a poll ``poll``.
    """

    format = "pixelfed"

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        file = export_member(self, STATUSES)
        if file is None:
            raise SourceError(f"{self.path} holds no {STATUSES}: not a Pixelfed data export "
                              "(Pixelfed: Settings > Data Export > Statuses)")
        self.file: str = file
        self.statuses = _load_statuses(self, self.file)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return sniff_json_export(path, STATUSES, lambda head: head.lstrip().startswith(b"[")
                                 and b'"media_attachments"' in head and b'"pf_type"' in head, _SNIFF_BYTES)

    def media_exists(self, rel: str) -> bool:
        return self.tree.is_file(rel)

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "export": "Pixelfed statuses export (media as URLs only)",
                "file": self.file, "statuses": str(len(self.statuses))}

    def __iter__(self) -> Iterator[Item]:
        for i, status in enumerate(self.statuses):
            yield self._item(status, f"{self.file}[{i}]")

    def _item(self, status: Any, ref: str) -> Item:
        if not isinstance(status, dict):
            return Rejected(ref, "invalid_record", f"a status must be a JSON object, got {type(status).__name__}")
        ids = (_post_id(status), _account_id(status.get("account")))
        if status.get("reblog"):
            return Rejected(ref, "not_authored", "a boost (reblog) of another account's post is not the author's own "
                            "post", *ids)
        if status.get("poll"):
            return Rejected(ref, "poll", "a poll asks for votes; its options are not a photo post", *ids)
        attachments = status.get("media_attachments")
        attachments = attachments if isinstance(attachments, list) else []
        media = [{**archive_media_path(a["url"], self.media_exists), "alt_text": _alt(a)}
                 for a in attachments if _is_image(a) and isinstance(a.get("url"), str) and a["url"]]
        caption, tag_text = _caption(status)
        record = {"post_id": ids[0], "author_id": ids[1], "created_at": status.get("created_at"),
                  "visibility": api_visibility(status.get("visibility")), "caption": caption,
                  "hashtags": _hashtags(status, tag_text), "media": media, "sensitive": status.get("sensitive"),
                  "content_warning": content_warning(status.get("spoiler_text"))}
        dropped = len(attachments) - len(media)
        return record_to_item(record, ref, self.name, {"dropped_attachments": dropped} if dropped else None)


def _post_id(status: dict[str, Any]) -> str | None:
    for key in ("uri", "url", "id"):
        value = status.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


def _alt(attachment: dict[str, Any]) -> str | None:
    alt = attachment.get("description")
    return alt if isinstance(alt, str) else None


def _load_statuses(source: Source, rel: str) -> list[Any]:
    """The list of statuses; SourceError naming the export when the file as a whole cannot be read."""
    data = read_export_json(source, rel, "Pixelfed export")
    if not isinstance(data, list):
        raise SourceError(f"{rel} of {source.path} is not a Pixelfed statuses export: expected a JSON list of "
                          f"statuses, got a {type(data).__name__} (Pixelfed: Settings > Data Export > Statuses)")
    return data
