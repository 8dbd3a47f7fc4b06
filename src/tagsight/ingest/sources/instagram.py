"""An Instagram "Download your information" export, every era and package, as a folder or the downloaded ``.zip``.

Eras (where the posts are), newest first; each comes as a JSON or an HTML package:

* ``your_instagram_activity/media/posts_N.json|html`` (about 2025 on)
* ``your_instagram_activity/content/posts_N.json|html`` (about 2023-2024)
* ``content/posts_N.json|html`` (about 2020-2023), also seen with the files in ``media/``
* ``media.json`` at the root (before 2020): ``{"photos": [{"caption", "taken_at", "path"}], "videos": [...]}``

``sniff`` is True as soon as the export is recognised (posts files, ``media.json`` with
``profile.json`` or ``photos/``, ``your_instagram_activity/``, or the personal information file);
the constructor raises a SourceError naming the export, its era and what to do when it cannot be
read, so that ``--format auto`` never reads a known export as a plain image folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tagsight.schema.posts import VISIBILITIES, SchemaError
from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, check_visibility
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.ingest.tree import Tree, sniff_tree
from tagsight.ingest.tree_safety import TreeError

log = logging.getLogger(__name__)

# (folder holding posts_N.*, era), newest first; the first folder that has posts_1.json/.html wins.
ERAS = (("your_instagram_activity/media", "2025 on"), ("your_instagram_activity/content", "2023-2024"),
        ("content", "2020-2023"), ("media", "2020-2023, files in media/"))
POSTS_FOLDERS = tuple(folder for folder, _ in ERAS)
LEGACY_MEDIA = "media.json"
LEGACY_ERA = "before 2020"
PROFILE_FILES = ("personal_information/personal_information/personal_information",
                 "account_information/personal_information")  # 2023 on, 2020-2022; .json or .html
PRIVACY_FILES = ("security_and_login_information/login_and_profile_creation/profile_privacy_changes.json",
                 "security_and_login_information/login_and_account_creation/account_privacy_changes.json",
                 "login_and_account_creation/account_privacy_changes.json")
LEGACY_PROFILE = "profile.json"
PRIVATE_LABELS = ("Private Account", "Privates Konto")
MAX_JSON_BYTES = 512 * 2**20
_POSTS_FILE = re.compile(r"posts_(\d+)\.(json|html)")
_LEGACY_HEAD = re.compile(rb'\s*\{\s*"(photos|videos|profile|stories|direct)"\s*:')
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def fix_mojibake(text: str) -> str:
    """Undo the exports' encoding (UTF-8 bytes written as ``\\u00xx`` code points) when it round-trips."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def instagram_post_id(first_uri: str, timestamp: Any) -> str:
    """A stable id from the first media URI and the post's timestamp (exports carry no post id)."""
    return hashlib.sha256(f"{first_uri}\n{timestamp}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Where an export keeps its posts: era, package (``json``/``html``) and the posts files in order."""

    era: str
    package: str
    posts: tuple[str, ...]

    def describe(self, tree: Tree) -> str:
        where = self.posts[0].rsplit("/", 1)[0] if "/" in self.posts[0] else "the root"
        container = "" if tree.kind == "folder" else f", in a .{tree.kind} archive"
        return f"Instagram export ({self.era} layout, {self.package.upper()} package, posts in {where}{container})"


def find_layout(tree: Tree) -> Layout | None:
    """The first known posts layout the tree has (JSON preferred over HTML in the same folder), else None."""
    for folder, era in ERAS:
        for package in ("json", "html"):
            if tree.is_file(f"{folder}/posts_1.{package}"):
                return Layout(era, package, tuple(_posts_files(tree.listdir(folder), folder, package)))
    if _legacy_media(tree):
        return Layout(LEGACY_ERA, "json", (LEGACY_MEDIA,))
    return None


def _legacy_media(tree: Tree) -> bool:
    """``media.json`` shaped as before 2020 (an object opening on ``photos``, ``videos``, ...): the name
    alone is too common to claim a folder."""
    if not tree.is_file(LEGACY_MEDIA):
        return False
    try:
        head = tree.read_head(LEGACY_MEDIA, 4096)
    except (TreeError, OSError):
        return False
    return _LEGACY_HEAD.match(head) is not None


def _posts_files(names: list[str], folder: str, package: str) -> list[str]:
    """``folder/posts_N.package`` in N order, from the names of the files in ``folder``."""
    found = [(int(m.group(1)), f"{folder}/{name}") for name in names
             if (m := _POSTS_FILE.fullmatch(name)) and m.group(2) == package]
    return [rel for _, rel in sorted(found)]


def recognise(tree: Tree) -> str | None:
    """What marks ``tree`` as an Instagram export (a short description), or None when nothing does."""
    layout = find_layout(tree)
    if layout is not None:
        return layout.describe(tree)
    if tree.is_dir("your_instagram_activity"):
        return "Instagram export (2023 or later layout: your_instagram_activity/)"
    for base in PROFILE_FILES:
        for ext in ("json", "html"):
            if tree.is_file(f"{base}.{ext}"):
                return f"Instagram export ({base}.{ext})"
    return None


# --------------------------------------------------------------------------------------- account


@dataclass(frozen=True)
class Account:
    """What the export says about its account: username, and whether it is private (None: not recorded)."""

    username: str | None = None
    private: bool | None = None
    evidence: str = "no personal information or privacy history in the export"


def read_json(tree: Tree, rel: str) -> Any:
    """A JSON file of the tree; SourceError when it cannot be read or parsed."""
    try:
        data = tree.read_bytes(rel, MAX_JSON_BYTES)
    except FileNotFoundError:
        raise SourceError(f"{rel} is missing from {tree.location}") from None
    except (TreeError, OSError) as exc:
        raise SourceError(f"cannot read {rel} in {tree.location}: {exc}") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{rel} in {tree.location} is not valid JSON: {exc}") from None


def _optional_json(tree: Tree, rel: str) -> Any:
    """A JSON file that may be absent or broken (logged): None then."""
    if not tree.is_file(rel):
        return None
    try:
        return read_json(tree, rel)
    except SourceError as exc:
        log.warning("%s", exc)
        return None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
    return True if text in _TRUE else False if text in _FALSE else None


def _profile_fields(data: Any) -> dict[str, Any]:
    """``string_map_data`` of ``profile_user[0]`` as ``{label: value}``."""
    try:
        fields = data["profile_user"][0]["string_map_data"]
    except (LookupError, TypeError):
        return {}
    return {k: v.get("value") for k, v in fields.items() if isinstance(v, dict)} if isinstance(fields, dict) else {}


def _privacy_history(data: Any) -> bool | None:
    """True/False from the latest public/private switch of ``account_history_account_privacy_history``."""
    entries = data.get("account_history_account_privacy_history") if isinstance(data, dict) else None
    latest: tuple[int, bool] | None = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            continue
        title = entry["title"].lower()
        private = True if "private" in title else False if "public" in title else None
        if private is not None and (latest is None or _entry_time(entry) >= latest[0]):
            latest = (_entry_time(entry), private)
    return None if latest is None else latest[1]


def _entry_time(entry: dict[str, Any]) -> int:
    stamps = [v.get("timestamp") for v in (entry.get("string_map_data") or {}).values() if isinstance(v, dict)]
    stamps += [v.get("timestamp") for v in entry.get("string_list_data") or [] if isinstance(v, dict)]
    return max((s for s in stamps if isinstance(s, int) and not isinstance(s, bool)), default=0)


def read_account(tree: Tree) -> Account:
    """Username and privacy from personal information (JSON or HTML), privacy history and the old profile.json.

    The account is private when any of them says so (the current setting or the latest switch).
    """
    username, verdicts = None, []
    for base in PROFILE_FILES:
        for rel, fields in ((f"{base}.json", _profile_fields(_optional_json(tree, f"{base}.json"))),
                            (f"{base}.html", _html_profile(tree, f"{base}.html"))):
            username = username or _text(fields.get("Username"))
            flags = [_flag(fields[label]) for label in PRIVATE_LABELS if label in fields]
            verdicts += [(f, f"{rel} '{PRIVATE_LABELS[0]}'") for f in flags if f is not None]
    for rel in PRIVACY_FILES:
        flag = _privacy_history(_optional_json(tree, rel))
        if flag is not None:
            verdicts.append((flag, f"the latest switch in {rel}"))
    legacy = _optional_json(tree, LEGACY_PROFILE)
    if isinstance(legacy, dict):
        username = username or _text(legacy.get("username"))
        private = _flag(legacy.get("private_account"))
        if private is not None:
            verdicts.append((private, f"{LEGACY_PROFILE} 'private_account'"))
    return _account(username, verdicts)


def _account(username: str | None, verdicts: list[tuple[bool, str]]) -> Account:
    if not verdicts:
        return Account(username)
    private = [why for flag, why in verdicts if flag]
    if private:
        return Account(username, True, "; ".join(private))
    return Account(username, False, "; ".join(why for _, why in verdicts))


def _text(value: Any) -> str | None:
    return fix_mojibake(value.strip()) if isinstance(value, str) and value.strip() else None


def _html_profile(tree: Tree, rel: str) -> dict[str, Any]:
    if not tree.is_file(rel):
        return {}
    from tagsight.ingest.sources.instagram_html import profile_fields

    try:
        return profile_fields(tree.read_bytes(rel, MAX_JSON_BYTES))
    except (TreeError, OSError, SourceError) as exc:
        log.warning("cannot read %s in %s: %s", rel, tree.location, exc)
        return {}


def stricter(a: str, b: str) -> str:
    """The more restrictive of two visibilities (``VISIBILITIES`` order: public ... direct)."""
    return max(a, b, key=VISIBILITIES.index)


# --------------------------------------------------------------------------------------- adapter


@SOURCES.register("instagram")
class InstagramSource(Source):
    """Posts of an Instagram export, any era and package, from its folder or its ``.zip``.

    * The export is one account's own data: ``author_id`` is the username from the personal
      information (or ``profile.json``), else ``author``, else the export's name.
    * ``visibility``: a private account (personal information "Private Account" true, the latest
      switch in the privacy history, or ``profile.json`` ``private_account``) makes every post
      ``followers``; otherwise ``public``. An explicit ``visibility`` can only make it stricter.
    * Exports carry no post id: ``post_id`` is a hash of the first media path and the timestamp.
    * Captions have their mojibake fixed; hashtags are parsed from them. Media paths are relative to
      the export root (videos are kept: the pipeline rejects what it cannot decode, so every media
      item is accounted for). ``consent`` is unknown (None).
    * ``media_metadata`` (EXIF, GPS, camera), locations and tagged users are never copied into a Post.
    * Stories, reels, archived and recently deleted posts (other files) are not read.
      Refs are ``your_instagram_activity/media/posts_1.json[3]``, ``media.json:photos[3]``.
    """

    format = "instagram"
    user_options = ("author", "visibility")

    def __init__(self, path: str | Path, *, name: str | None = None, author: str | None = None,
                 visibility: str | None = None) -> None:
        super().__init__(path, name=name)
        check_visibility(visibility)
        self.layout = self._layout()
        self.account = read_account(self.tree)
        self.visibility = self._visibility(visibility)
        self.author = self.account.username or author or self.tree.name
        self.what = self.layout.describe(self.tree)
        self._posts = [(rel, self._load(rel)) for rel in self.layout.posts]

    def _layout(self) -> Layout:
        layout = find_layout(self.tree)
        if layout is not None:
            return layout
        marker = recognise(self.tree)
        if marker is None:
            raise SourceError(f"{self.path} is not an Instagram export (no posts_1.json or posts_1.html in "
                              f"{', '.join(POSTS_FOLDERS)}, and no {LEGACY_MEDIA})")
        raise SourceError(f"{self.path}: {marker} holds no posts file (looked for posts_1.json or posts_1.html in "
                          f"{', '.join(POSTS_FOLDERS)}, and {LEGACY_MEDIA}); it was probably requested without "
                          "your posts: request a new download with 'Posts' (Content) selected, JSON or HTML")

    def _visibility(self, requested: str | None) -> str:
        if self.account.private is None:
            log.warning("%s does not record whether the account is private; its posts are taken as public "
                        "(pass --visibility followers for a private account)", self.path)
        found = "followers" if self.account.private else "public"
        if requested is not None and stricter(requested, found) != requested:
            log.warning("%s: the account is private (%s); its posts stay %r, not %r",
                        self.path, self.account.evidence, found, requested)
        return stricter(requested or found, found)

    def describe(self) -> dict[str, str]:
        private = {True: "private", False: "public", None: "not recorded"}[self.account.private]
        return {**super().describe(), "export": self.what, "era": self.layout.era, "package": self.layout.package,
                "account": f"{self.author} ({private}: {self.account.evidence})", "visibility": self.visibility}

    def _load(self, rel: str) -> Any:
        try:
            if self.layout.package == "html":
                from tagsight.ingest.sources.instagram_html import parse_posts_page

                return parse_posts_page(self.tree, rel, MAX_JSON_BYTES)
            data = read_json(self.tree, rel)
        except SourceError as exc:
            raise SourceError(f"{self.what}: {exc}") from None
        expected = dict if rel == LEGACY_MEDIA else list
        if not isinstance(data, expected):
            raise SourceError(f"{self.what}: {rel} should hold a JSON {expected.__name__} of posts, got "
                              f"{type(data).__name__}; this variant is not supported: convert it to JSONL "
                              "(docs/ingest.md) or report it")
        return data

    @classmethod
    def sniff(cls, path: Path) -> bool:
        tree = sniff_tree(Path(path))
        try:
            return tree is not None and recognise(tree) is not None
        except (TreeError, OSError):
            return False

    def __iter__(self) -> Iterator[Item]:
        for rel, data in self._posts:
            if self.layout.package == "html":
                yield from self._html_items(rel, data)
            elif rel == LEGACY_MEDIA:
                yield from self._legacy_items(data)
            else:
                for i, obj in enumerate(data):
                    yield self._item(obj, f"{rel}[{i}]", self._record)

    def _item(self, obj: Any, ref: str, build: Any) -> Item:
        if not isinstance(obj, dict):
            return Rejected(ref, "invalid_record", f"a post must be a JSON object, got {type(obj).__name__}",
                            author_id=self.author)
        try:
            record = build(obj)
        except SchemaError as exc:
            return Rejected(ref, exc.reason, str(exc), author_id=self.author)
        return record_to_item(record, ref, self.name)

    def _post(self, first: str, timestamp: Any, caption: str, media: list[str]) -> dict[str, Any]:
        return {"post_id": instagram_post_id(first, timestamp), "author_id": self.author, "created_at": timestamp,
                "visibility": self.visibility, "caption": fix_mojibake(caption),
                "media": [{"path": m} for m in media]}

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
        return self._post(first.get("uri", ""), timestamp, title, [m["uri"] for m in media])

    def _legacy_items(self, data: dict[str, Any]) -> Iterator[Item]:
        """``media.json``: photos then videos; consecutive entries with the same time and caption are one
        post (a carousel)."""
        for kind in ("photos", "videos"):
            entries = data.get(kind) or []
            if not isinstance(entries, list):
                yield Rejected(f"{LEGACY_MEDIA}:{kind}", "invalid_record", f"{kind} must be a list",
                               author_id=self.author)
                continue
            for start, group in _carousels(entries):
                yield self._item(group, f"{LEGACY_MEDIA}:{kind}[{start}]", self._legacy_record)

    def _legacy_record(self, group: dict[str, Any]) -> dict[str, Any]:
        entries = group["entries"]
        if not all(isinstance(e, dict) and isinstance(e.get("path"), str) and e["path"] for e in entries):
            raise SchemaError("invalid_field:media", "each entry needs a 'path' string")
        caption = entries[0].get("caption") or ""
        if not isinstance(caption, str):
            raise SchemaError("invalid_field:caption", "caption must be a string")
        return self._post(entries[0]["path"], entries[0].get("taken_at"), caption, [e["path"] for e in entries])

    def _html_items(self, rel: str, posts: list[Any]) -> Iterator[Item]:
        for i, post in enumerate(posts):
            ref = f"{rel}[{i}]"
            if isinstance(post, Rejected):
                yield Rejected(ref, post.reason, post.detail, author_id=self.author)
                continue
            first = post.media[0] if post.media else ""
            yield record_to_item(self._post(first, post.created_at, post.caption, list(post.media)), ref, self.name)


def _carousels(entries: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """(index of the first entry, {"entries": [...]}) per run of entries sharing ``taken_at`` and ``caption``."""
    groups: list[tuple[int, Any]] = []
    last = None
    for i, entry in enumerate(entries):
        key = (entry.get("taken_at"), entry.get("caption")) if isinstance(entry, dict) else None
        if key is not None and key == last:
            groups[-1][1]["entries"].append(entry)
        else:
            groups.append((i, {"entries": [entry]} if key is not None else entry))  # a non-object: invalid_record
        last = key
    return groups
