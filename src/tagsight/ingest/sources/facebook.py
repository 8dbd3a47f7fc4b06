"""A Facebook "Download your information" export (JSON format): photos of one account's posts and albums."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tagsight.schema.posts import SchemaError
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, check_visibility
from tagsight.ingest.sources.instagram import fix_mojibake, instagram_post_id, read_json
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.ingest.tree import Tree, sniff_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """Where one era of the export keeps posts (``posts_N.json`` pattern with ``{n}``) and albums."""

    era: str
    posts: str
    albums: tuple[str, ...]
    photos: str | None = None


LAYOUTS = (
    Layout("2023+", "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_{n}.json",
           ("your_facebook_activity/posts/album",)),
    Layout("2022", "your_activity_across_facebook/posts/your_posts__check_ins__photos_and_videos_{n}.json",
           ("your_activity_across_facebook/posts/album",)),
    Layout("2021-2022", "your_activity_across_facebook/posts/your_posts_{n}.json",
           ("your_activity_across_facebook/posts/album",)),
    Layout("before-2022", "posts/your_posts_{n}.json", ("photos_and_videos/album", "posts/album"),
           "photos_and_videos/your_photos.json"),
)
PROFILE_FILES = ("personal_information/profile_information/profile_information.json",
                 "profile_information/profile_information.json")
HTML_MARKERS = tuple(layout.posts.format(n=1)[:-len(".json")] + ".html" for layout in LAYOUTS)
_ALBUM_FILE = re.compile(r"(\d+)\.json")
_SHARED = re.compile(r"\bshared (?:a post"
                     r"|(?!a memory\b|a link\b|a status\b).+'s (?:post|photo|video|album|reel|memory))\b")


def find_layout(is_file: Callable[[str], bool], is_dir: Callable[[str], bool]) -> Layout | None:
    """The export layout whose first posts file is present, else the first whose album folder is, else None."""
    for layout in LAYOUTS:
        if is_file(layout.posts.format(n=1)):
            return layout
    return next((layout for layout in LAYOUTS if any(is_dir(a) for a in layout.albums)), None)


def is_html_export(is_file: Callable[[str], bool]) -> bool:
    """True for the HTML flavour of the export (its first posts file as ``.html``)."""
    return any(is_file(rel) for rel in HTML_MARKERS)


def post_caption(post: dict[str, Any], media: list[dict[str, Any]]) -> str:
    """``data[].post`` text, then each media ``description`` that is not already that text; mojibake fixed."""
    parts: list[str] = []
    data = post.get("data")
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("post"), str) and entry["post"].strip():
            parts.append(fix_mojibake(entry["post"]).strip())
    for m in media:
        text = m.get("description")
        if isinstance(text, str) and text.strip() and fix_mojibake(text).strip() not in parts:
            parts.append(fix_mojibake(text).strip())
    return "\n\n".join(parts)


def post_media(post: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``attachments[].data[].media`` objects of a post (links, places and text attachments are skipped)."""
    out = []
    attachments = post.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        data = attachment.get("data") if isinstance(attachment, dict) else None
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("media"), dict):
                out.append(entry["media"])
    return out


def is_shared_post(post: dict[str, Any]) -> bool:
    """A share of another person's post or photo (English ``title``: "X shared Y's post.", "X shared a post.")."""
    title = post.get("title")
    return isinstance(title, str) and bool(_SHARED.search(fix_mojibake(title)))


@SOURCES.register("facebook")
class FacebookSource(Source):
    """Photos of posts and albums from a Facebook "Download your information" export in JSON format.

    * Layouts: ``2023+`` (``your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_N.json``,
      ``.../posts/album/N.json``, media under ``.../posts/media/``), ``2022`` and ``2021-2022`` (the same, or
      ``your_posts_N.json``, under ``your_activity_across_facebook/``), ``before-2022`` (``posts/your_posts_N.json``,
      ``photos_and_videos/album/N.json``, ``photos_and_videos/your_photos.json``). The HTML format is
      recognised and refused: download the information again choosing the JSON format.
    * A post entry is one Post with every ``attachments[].data[].media`` as its media (``uri`` relative to
      the export root; videos kept, the pipeline rejects what it cannot decode); caption = ``data[].post``
      plus media ``description``s that differ from it; ``created_at`` = ``timestamp`` (else the first
      media's ``creation_timestamp``). Shares of another person's post (English title "X shared Y's post.",
      "X shared a post.") are Rejected ``not_authored``.
    * Each album photo (and ``your_photos.json`` photo) whose ``uri`` no post has is one Post (caption =
      its ``description``, ``extra["album"]`` = the album ``name``); one already in a post is Rejected
      ``duplicate_media`` so that counts stay exact and the photo is counted once.
    * No post id in the export: ``post_id`` is a hash of the first media ``uri`` (or the text) and the time.
    * ``author_id`` = ``profile_information.json`` ``name.full_name``, else ``username``, else ``author``,
      else the export folder's name. All strings have their mojibake fixed.
    * Visibility: the export does not record a post's audience, so every post gets ``visibility``, default
      ``followers`` (Facebook's usual audience: friends); pass ``visibility="public"`` only for an account
      whose posts were public. ``media_metadata`` (EXIF, GPS), places and check-ins are never copied.
    """

    format = "facebook"
    user_options = ("author", "visibility")

    def __init__(self, path: str | Path, *, name: str | None = None, author: str | None = None,
                 visibility: str = "followers") -> None:
        super().__init__(path, name=name)
        check_visibility(visibility)
        layout = find_layout(self._is_file, self._is_dir)
        if layout is None:
            if is_html_export(self._is_file):
                raise SourceError(f"{self.path} is a Facebook export in HTML format, which tagsight does not "
                                  "read: download your information again choosing Format: JSON")
            raise SourceError(f"{self.path} is not a Facebook export (no "
                              f"{' or '.join(layout.posts.format(n=1) for layout in LAYOUTS)})")
        self.layout, self.era, self.visibility = layout, layout.era, visibility
        self.author = self._author() or author or self.name
        self.posts = [(rel, _load(self.tree, rel, list)) for rel in self._posts_files()]
        self.albums = [(rel, _album_photos(_load(self.tree, rel, (dict, list)), rel)) for rel in self._album_files()]

    @classmethod
    def sniff(cls, path: Path) -> bool:
        tree = sniff_tree(Path(path))
        if tree is None:
            return False
        return find_layout(tree.is_file, tree.is_dir) is not None or is_html_export(tree.is_file)

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "export": "Facebook Download your information (JSON)", "era": self.era,
                "account": self.author, "visibility": f"{self.visibility} (the export records no audience)",
                "files": f"{len(self.posts)} posts file(s), {len(self.albums)} album file(s)"}

    # ------------------------------------------------------------------ reading the export
    def _is_file(self, rel: str) -> bool:
        return self.tree.is_file(rel)

    def _is_dir(self, rel: str) -> bool:
        return self.tree.is_dir(rel)

    def _list(self, folder: str) -> list[str]:
        """Names of the files directly in ``folder``, sorted."""
        return self.tree.listdir(folder)

    def _posts_files(self) -> list[str]:
        folder, pattern = self.layout.posts.rsplit("/", 1)
        regex = re.compile(re.escape(pattern).replace(r"\{n\}", r"(\d+)"))
        found = [(int(m.group(1)), f"{folder}/{name}") for name in self._list(folder) if (m := regex.fullmatch(name))]
        return [rel for _, rel in sorted(found)]

    def _album_files(self) -> list[str]:
        found = []
        for folder in self.layout.albums:
            numbered = [(int(m.group(1)), name) for name in self._list(folder) if (m := _ALBUM_FILE.fullmatch(name))]
            found += [f"{folder}/{name}" for _, name in sorted(numbered)]
        photos = self.layout.photos
        return found + ([photos] if photos and self._is_file(photos) else [])

    def _author(self) -> str | None:
        for rel in PROFILE_FILES:
            if not self._is_file(rel):
                continue
            try:
                data = read_json(self.tree, rel)
                profile = data.get("profile_v2") or data.get("profile")
                name = (profile.get("name") or {}).get("full_name") or profile.get("username")
            except (SourceError, ValueError, AttributeError, TypeError) as exc:
                log.warning("cannot read the account name from %s (%s: %s)", rel, type(exc).__name__, exc)
                continue
            if isinstance(name, str) and name.strip():
                return fix_mojibake(name).strip()
        return None

    # ------------------------------------------------------------------ posts
    def __iter__(self) -> Iterator[Item]:
        in_posts: dict[str, str] = {}
        for rel, items in self.posts:
            for i, obj in enumerate(items):
                item = self._post(obj, f"{rel}[{i}]")
                if not isinstance(item, Rejected):
                    in_posts.update({m.path: item.post_id for m in item.media if m.path})
                yield item
        for rel, photos in self.albums:
            for i, (album, photo) in enumerate(photos):
                yield self._album_photo(album, photo, f"{rel}[{i}]", in_posts)

    def _post(self, obj: Any, ref: str) -> Item:
        if not isinstance(obj, dict):
            return Rejected(ref, "invalid_record", f"a post must be a JSON object, got {type(obj).__name__}",
                            author_id=self.author)
        media = post_media(obj)
        if not all(isinstance(m.get("uri"), str) and m["uri"] for m in media):
            return Rejected(ref, "invalid_field:media", "each attached media needs a 'uri' string",
                            author_id=self.author)
        timestamp = obj.get("timestamp", media[0].get("creation_timestamp") if media else None)
        caption = post_caption(obj, media)
        post_id = instagram_post_id(media[0]["uri"] if media else caption, timestamp)
        if is_shared_post(obj):
            return Rejected(ref, "not_authored", "a share of another person's post is not the author's own post",
                            post_id, self.author)
        return record_to_item(self._record(post_id, timestamp, caption, media), ref, self.name)

    def _album_photo(self, album: str, photo: Any, ref: str, in_posts: dict[str, str]) -> Item:
        try:
            uri = _photo_uri(photo)
        except SchemaError as exc:
            return Rejected(ref, exc.reason, str(exc), author_id=self.author)
        if uri in in_posts:  # no post id of its own: the photo is that post's
            return Rejected(ref, "duplicate_media", f"the photo is already in post {in_posts[uri]}",
                            author_id=self.author)
        timestamp = photo.get("creation_timestamp")
        post_id = instagram_post_id(uri, timestamp)
        caption = post_caption({}, [photo])
        return record_to_item(self._record(post_id, timestamp, caption, [photo]), ref, self.name,
                              {"album": album} if album else None)

    def _record(self, post_id: str, timestamp: Any, caption: str, media: list[dict[str, Any]]) -> dict[str, Any]:
        return {"post_id": post_id, "author_id": self.author, "created_at": timestamp,
                "visibility": self.visibility, "caption": caption, "media": [{"path": m["uri"]} for m in media]}


def _photo_uri(photo: Any) -> str:
    if not isinstance(photo, dict):
        raise SchemaError("invalid_record", f"a photo must be a JSON object, got {type(photo).__name__}")
    uri = photo.get("uri")
    if not isinstance(uri, str) or not uri:
        raise SchemaError("invalid_field:media", "a photo needs a 'uri' string")
    return uri


def _album_photos(data: Any, rel: str) -> list[tuple[str, Any]]:
    """``(album name, photo)`` pairs of an album file (``{"name", "photos": [...]}``, or a bare list of photos)."""
    if isinstance(data, list):
        return [("", p) for p in data]
    photos = data.get("photos")
    if not isinstance(photos, list):
        raise SourceError(f"{rel} should hold an album object with a 'photos' list")
    name = data.get("name")
    return [(fix_mojibake(name) if isinstance(name, str) else "", p) for p in photos]


def _load(tree: Tree, rel: str, kind: type | tuple[type, ...]) -> Any:
    """The JSON document of one export file, of type ``kind``; SourceError when it cannot be read."""
    value = read_json(tree, rel)
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise SourceError(f"{rel} should hold a JSON {names}, got {type(value).__name__}")
    return value
