"""Tiny source fixtures in the real on-disk formats, built in tmp_path by the helpers below."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from PIL import Image

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTOR = "https://mastodon.example/users/alice"


def write_image(path: Path, color: tuple[int, int, int] = (200, 80, 40), size: int = 32) -> Path:
    """A real tiny image; the format follows the extension (JPEG for .jpg/.jpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower(), "PNG")
    Image.new("RGB", (size, size), color).save(path, format=fmt)
    return path


def mojibake(text: str) -> str:
    """How Instagram/Facebook exports write text: each UTF-8 byte as one \\u00xx code point."""
    return text.encode("utf-8").decode("latin-1")


def write_json(path: Path, data: Any) -> Path:
    """JSON as the exports write it: indented, ASCII-only with \\u escapes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=True), encoding="ascii")
    return path


# --------------------------------------------------------------------------- JSONL / Parquet
def post_record(i: int, **patch: Any) -> dict[str, Any]:
    """One post in our own schema."""
    record = {"post_id": f"p{i}", "author_id": f"u{i % 3}", "created_at": f"2024-05-0{1 + i % 9}T10:00:00Z",
              "visibility": "public", "caption": f"photo {i} #cat #sunset", "media": [{"path": f"img/{i}.jpg"}],
              "consent": {"ai_training": True}}
    record.update(patch)
    return record


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """One JSON document per line (bytes given as such are written raw, for broken lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode("utf-8") for r in records]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# --------------------------------------------------------------------------- Instagram
def instagram_posts() -> list[dict[str, Any]]:
    """posts_1.json as a real export has it: a single photo without top-level fields, a carousel, a video."""
    exif = {"latitude": 48.858370, "longitude": 2.294481, "device_id": "android-1a2b3c", "source_type": "camera",
            "date_time_original": "2023:01:17 23:58:00", "software": "Instagram"}
    return [
        {"media": [{"uri": "media/posts/202301/325468219_n_17900000000000001.jpg", "creation_timestamp": 1674000000,
                    "media_metadata": {"photo_metadata": {"exif_data": [exif]}},
                    "title": mojibake("Café au lait ☕ #coffee #café #Zürich"),
                    "cross_post_source": {"source_app": "FB"}}]},
        {"media": [{"uri": "media/posts/202302/330000001_n_17900000000000002.jpg", "creation_timestamp": 1675000000,
                    "media_metadata": {"photo_metadata": {"exif_data": [{"latitude": 43.7, "longitude": 7.26}]}},
                    "title": "", "cross_post_source": {"source_app": "FB"}},
                   {"uri": "media/posts/202302/330000002_n_17900000000000003.jpg", "creation_timestamp": 1675000000,
                    "title": "", "cross_post_source": {"source_app": "FB"}}],
         "title": mojibake("Weekend à la mer 🌊 #beach #sea"), "creation_timestamp": 1675000000},
        {"media": [{"uri": "media/posts/202303/340000001_n_17900000000000004.mp4", "creation_timestamp": 1677000000,
                    "media_metadata": {"video_metadata": {"exif_data": [{"latitude": 1.0, "longitude": 2.0}]}},
                    "title": "clip #surf", "cross_post_source": {"source_app": "FB"}}]},
    ]


def personal_information(username: str) -> dict[str, Any]:
    return {"profile_user": [{
        "media_map_data": {"Profile Photo": {"uri": "media/other/profile.jpg", "creation_timestamp": 1600000000,
                                             "title": ""}},
        "string_map_data": {
            "Email": {"href": "", "value": "jane@example.com", "timestamp": 0},
            "Username": {"href": "", "value": mojibake(username), "timestamp": 0},
            "Name": {"href": "", "value": mojibake("Jane Döe"), "timestamp": 0},
            "Private Account": {"href": "", "value": "False", "timestamp": 0}}}]}


def make_instagram_export(root: Path, posts: list[Any] | None = None, *, layout: str = "your_instagram_activity/content",
                          username: str | None = "jane.doe", images: bool = True) -> Path:
    """An export folder: posts file, media files, and (optionally) the personal information file."""
    posts = instagram_posts() if posts is None else posts
    write_json(root / layout / "posts_1.json", posts)
    if username is not None:
        write_json(root / "personal_information/personal_information/personal_information.json",
                   personal_information(username))
    uris = [m["uri"] for post in posts if images and isinstance(post, dict) and isinstance(post.get("media"), list)
            for m in post["media"] if isinstance(m, dict) and str(m.get("uri", "")).endswith(".jpg")]
    for i, uri in enumerate(uris):
        write_image(root / uri, (40 * i % 256, 255 - 40 * i % 256, 90))
    return root


# --------------------------------------------------------------------------- ActivityPub
def note_create(n: int, *, to: list[str] | None = None, cc: list[str] | None = None, content: str | None = None,
                attachment: list[Any] | None = None, tag: list[Any] | None = None, kind: str = "Note") -> dict[str, Any]:
    """A Mastodon ``Create`` activity of a status, as in a Mastodon account export's outbox.json."""
    status = f"{ACTOR}/statuses/10970000000000000{n}"
    to = [PUBLIC] if to is None else to
    cc = [f"{ACTOR}/followers"] if cc is None else cc
    if attachment is None:
        attachment = [{"type": "Document", "mediaType": "image/jpeg",
                       "url": f"/media_attachments/files/109/700/000/000/000/00{n}/original/img{n}.jpg",
                       "name": f"Alt text {n}", "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
                       "focalPoint": [0.0, 0.0], "width": 32, "height": 32}]
    obj = {"id": status, "type": kind, "summary": None, "inReplyTo": None, "published": f"2023-01-1{n}T09:30:00Z",
           "url": f"https://mastodon.example/@alice/10970000000000000{n}", "attributedTo": ACTOR, "to": to, "cc": cc,
           "sensitive": False, "atomUri": status, "inReplyToAtomUri": None,
           "conversation": f"tag:mastodon.example,2023-01-1{n}:objectId=12{n}:objectType=Conversation",
           "content": content if content is not None else f"<p>Post {n}</p>",
           "contentMap": {"en": content if content is not None else f"<p>Post {n}</p>"},
           "attachment": attachment, "tag": tag if tag is not None else [],
           "replies": {"id": f"{status}/replies", "type": "Collection",
                       "first": {"type": "CollectionPage", "next": f"{status}/replies?only_other_accounts=true&page=true",
                                 "partOf": f"{status}/replies", "items": []}}}
    return {"id": f"{status}/activity", "type": "Create", "actor": ACTOR, "published": obj["published"],
            "to": to, "cc": cc, "object": obj,
            "signature": {"type": "RsaSignature2017", "creator": f"{ACTOR}#main-key",
                          "created": "2023-01-20T00:00:00Z", "signatureValue": "c2lnbmF0dXJl"}}


def announce(n: int) -> dict[str, Any]:
    return {"id": f"{ACTOR}/statuses/10980000000000000{n}/activity", "type": "Announce", "actor": ACTOR,
            "published": "2023-01-19T12:00:00Z", "to": [PUBLIC],
            "cc": ["https://other.example/users/bob", f"{ACTOR}/followers"],
            "object": f"https://other.example/users/bob/statuses/4{n}"}


def outbox(items: list[Any]) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": "outbox.json", "type": "OrderedCollection", "totalItems": len(items), "orderedItems": items}


def make_outbox_export(root: Path, items: list[Any] | None = None) -> Path:
    """A Mastodon archive folder: outbox.json, actor.json and the media files it names."""
    if items is None:
        items = [note_create(1, content='<p>My cat &amp; the sunset <a href="https://mastodon.example/tags/Cats" '
                                        'class="mention hashtag" rel="tag">#<span>Cats</span></a></p>',
                             tag=[{"type": "Hashtag", "href": "https://mastodon.example/tags/cats", "name": "#Cats"},
                                  {"type": "Mention", "href": "https://other.example/users/bob",
                                   "name": "@bob@other.example"}]),
                 announce(2)]
    write_json(root / "outbox.json", outbox(items))
    write_json(root / "actor.json", {"id": ACTOR, "type": "Person", "preferredUsername": "alice"})
    for item in items:
        obj = item.get("object") if isinstance(item, dict) else None
        for a in obj.get("attachment") or [] if isinstance(obj, dict) else []:
            if isinstance(a, dict) and isinstance(a.get("url"), str) and a["url"].endswith(".jpg"):
                write_image(root / a["url"].lstrip("/"))
    return root


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "feed" / "posts.jsonl", [post_record(i) for i in range(3)])


@pytest.fixture
def instagram_export(tmp_path: Path) -> Path:
    return make_instagram_export(tmp_path / "instagram-janedoe-20230118")


@pytest.fixture
def outbox_export(tmp_path: Path) -> Path:
    return make_outbox_export(tmp_path / "archive-alice")


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """ImageNet-style ``root/<class>/<file>.JPEG`` with no sidecars."""
    root = tmp_path / "pets"
    for cls, color in (("dog", (10, 200, 10)), ("cat", (200, 10, 10))):
        for i in range(2):
            write_image(root / cls / f"img_{i}.JPEG", color)
    return root


@pytest.fixture
def harrison_like(tmp_path: Path) -> Path:
    root = tmp_path / "harrison"
    root.mkdir()
    (root / "tag_list.txt").write_text("sea instapic instagram trip travel \nsea \n\nlove dog puppy \n")
    (root / "data_list.txt").write_text("instagram_dataset/sea/image_50.jpg\ninstagram_dataset/sea/image_1284.jpg\n"
                                        "instagram_dataset/sea/image_7.jpg\ninstagram_dataset/dog/image_3.jpg\n")
    return root


@pytest.fixture
def make() -> SimpleNamespace:
    """The builders above, for tests that need a variant of a fixture (robust against conftest name clashes)."""
    return SimpleNamespace(image=write_image, mojibake=mojibake, json=write_json, post=post_record,
                           jsonl=write_jsonl, instagram_posts=instagram_posts, instagram=make_instagram_export,
                           note=note_create, announce=announce, outbox=outbox, outbox_export=make_outbox_export,
                           PUBLIC=PUBLIC, ACTOR=ACTOR)


@pytest.fixture
def items_of() -> Callable[..., list]:
    """Open a source and list what it yields."""
    from tagsight.ingest.sources import open_source

    return lambda path, fmt="auto", **options: list(open_source(path, fmt, **options))
