"""Pixelfed's data export (pixelfed-statuses.json): Mastodon API statuses, media only as URLs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import SourceError, open_source, sniff_format
from tagsight.ingest.sources.pixelfed import STATUSES, PixelfedSource
from tagsight.privacy.policy import ConsentPolicy

HOST = "https://pixel.example"
ACCOUNT = {"id": "700000000000000001", "username": "mira", "acct": "mira", "display_name": "Mira",
           "url": f"{HOST}/mira", "locked": False, "followers_count": 12, "avatar": f"{HOST}/storage/avatars/m.jpg"}


def attachment(n: int, kind: str = "image", mime: str = "image/jpeg") -> dict[str, Any]:
    return {"id": f"80000000000000000{n}", "type": kind, "url": f"{HOST}/storage/m/_v2/7000/abc{n}/photo{n}.jpg",
            "remote_url": None, "preview_url": f"{HOST}/storage/m/_v2/7000/abc{n}/photo{n}_thumb.jpg",
            "text_url": None, "meta": {"focus": {"x": 0, "y": 0}}, "description": f"alt {n}", "blurhash": "U00000",
            "license": None, "orientation": "landscape", "mime": mime}


def pf_status(n: int, **patch: Any) -> dict[str, Any]:
    """A status as Pixelfed's StatusTransformer writes it into the export."""
    status = {"_v": 1, "id": f"60000000000000000{n}", "uri": f"{HOST}/p/mira/60000000000000000{n}",
              "url": f"{HOST}/p/mira/60000000000000000{n}", "in_reply_to_id": None, "in_reply_to_account_id": None,
              "reblog": None, "content": f'<p>Frame {n} <a href="{HOST}/discover/tags/film?src=hash" '
                                         f'title="#film" class="u-url hashtag" rel="external nofollow noopener">#film</a></p>',
              "content_text": f"Frame {n} #film", "created_at": f"2024-02-0{n}T10:11:12.000000Z", "emojis": [],
              "reblogs_count": 0, "favourites_count": 2, "reblogged": False, "favourited": False, "muted": False,
              "sensitive": False, "spoiler_text": "", "visibility": "public", "mentions": [],
              "tags": [{"name": "film", "url": f"{HOST}/discover/tags/film"}], "card": None, "poll": None,
              "application": {"name": "web", "website": None}, "language": None, "pinned": None,
              "pf_type": "photo", "comments_disabled": False, "thread": False, "local": True,
              "account": ACCOUNT, "media_attachments": [attachment(n)], "place": None}
    status.update(patch)
    return status


def statuses() -> list[Any]:
    return [
        pf_status(1),
        pf_status(2, visibility="private", media_attachments=[attachment(2), attachment(3, "video", "video/mp4")]),
        pf_status(3, visibility="unlisted", sensitive=True, spoiler_text="needles"),
        pf_status(4, visibility="direct"),
        pf_status(5, reblog=pf_status(9, account={**ACCOUNT, "url": "https://other.example/ola"})),
        pf_status(6, poll={"id": "1", "options": [{"title": "a"}, {"title": "b"}]}, media_attachments=[]),
        pf_status(7, tags=[], content='<p>see <a href="https://blog.example/post#part2">https://blog.example/post#part2</a></p>'),
        pf_status(8, content="", content_text="plain words #Dunes and https://x.example/#anchor"),
        "not a status",
    ]


def write_export(folder: Path, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATUSES).write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_the_export_is_sniffed_and_every_status_becomes_a_post_or_a_reason(tmp_path):
    root = write_export(tmp_path / "pixelfed-mira", statuses())
    assert sniff_format(root) == "pixelfed" and sniff_format(root / STATUSES) == "pixelfed"
    items = list(open_source(root))
    assert len(items) == 9
    one, private, cw, direct, reblog, poll, fragment, plain, junk = items
    assert isinstance(one, Post) and one.source == "pixelfed-mira"
    assert one.post_id == f"{HOST}/p/mira/600000000000000001" and one.author_id == f"{HOST}/mira"
    assert one.created_at == "2024-02-01T10:11:12Z" and one.caption == "Frame 1 #film" and one.hashtags == ("film",)
    assert one.media == (Media(url=f"{HOST}/storage/m/_v2/7000/abc1/photo1.jpg", alt_text="alt 1"),)
    assert (private.visibility, cw.visibility, direct.visibility) == ("followers", "unlisted", "direct")
    assert private.extra["dropped_attachments"] == 1 and len(private.media) == 1
    assert (cw.sensitive, cw.content_warning) == (True, "needles") and one.content_warning is None
    assert (reblog.reason, poll.reason, junk.reason) == ("not_authored", "poll", "invalid_record")
    assert reblog.author_id == f"{HOST}/mira"
    assert fragment.hashtags == ()
    assert plain.caption == "plain words #Dunes and https://x.example/#anchor"
    assert plain.hashtags == ("film",)  # the tags list alone, when the status has one


def test_without_a_tags_key_hashtags_come_from_the_text_but_never_from_urls(tmp_path):
    status = pf_status(8, content="", content_text="plain words #Dunes and https://x.example/#anchor")
    del status["tags"]
    (post,) = PixelfedSource(write_export(tmp_path / "p", [status]))
    assert post.hashtags == ("Dunes",)


def test_ingest_accounts_for_every_post_and_names_the_remote_media(tmp_path):
    root = write_export(tmp_path / "pixelfed-mira", statuses())
    cfg = IngestConfig(workers=1, image=ImageConfig(max_side=32))
    summary = ingest(open_source(root), tmp_path / "ds", ConsentPolicy(), cfg)
    assert summary.reconciles() and summary.posts_in == 9 and summary.posts_kept == 0
    assert summary.post_reasons == {"no_usable_media": 3, "visibility_followers": 1, "visibility_unlisted": 1,
                                    "visibility_direct": 1, "not_authored": 1, "poll": 1, "invalid_record": 1}
    assert summary.media_reasons == {"remote_media_unsupported": 3}


def test_media_the_user_downloaded_under_the_url_path_are_read(tmp_path):
    root = write_export(tmp_path / "pixelfed-mira", [pf_status(1)])
    (root / "storage/m/_v2/7000/abc1").mkdir(parents=True)
    Image.new("RGB", (40, 30), (10, 120, 200)).save(root / "storage/m/_v2/7000/abc1/photo1.jpg")
    (post,) = PixelfedSource(root)
    assert post.media == (Media(path="storage/m/_v2/7000/abc1/photo1.jpg", alt_text="alt 1"),)
    summary = ingest(PixelfedSource(root), tmp_path / "ds", ConsentPolicy(),
                     IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    assert summary.posts_kept == 1 and summary.reconciles()


def test_a_file_that_is_not_the_export_is_a_source_error_that_says_so(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / STATUSES).write_text('[{"id": ')
    with pytest.raises(SourceError, match="Pixelfed export .* is not valid JSON"):
        PixelfedSource(tmp_path / "a")
    (tmp_path / "a" / STATUSES).write_text('{"statuses": []}')
    with pytest.raises(SourceError, match="expected a JSON list"):
        PixelfedSource(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(SourceError, match="Data Export"):
        PixelfedSource(tmp_path / "b")


def test_sniff_recognises_a_renamed_export_and_nothing_else(tmp_path):
    (tmp_path / "mine.json").write_text(json.dumps([pf_status(1)]))
    (tmp_path / "other.json").write_text(json.dumps([{"id": 1, "text": "hi"}]))
    (tmp_path / "outbox.json").write_text(json.dumps({"type": "OrderedCollection", "orderedItems": []}))
    assert PixelfedSource.sniff(tmp_path / "mine.json")
    assert not PixelfedSource.sniff(tmp_path / "other.json") and not PixelfedSource.sniff(tmp_path / "outbox.json")
    assert not PixelfedSource.sniff(tmp_path / "missing") and not PixelfedSource.sniff(tmp_path)


def test_a_zipped_export_is_read_in_place(tmp_path):
    from tests.ingest.archives import zip_folder

    archive = zip_folder(write_export(tmp_path / "pixelfed-mira", statuses()), tmp_path / "pixelfed-mira.zip")
    assert sniff_format(archive) == "pixelfed"
    source = open_source(archive)
    assert source.name == "pixelfed-mira" and len(list(source)) == 9
    summary = ingest(source, tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    assert summary.reconciles() and summary.posts_in == 9


def test_describe_says_the_media_are_urls_only(tmp_path):
    info = PixelfedSource(write_export(tmp_path / "p", statuses())).describe()
    assert info["format"] == "pixelfed" and "URLs only" in info["export"] and info["statuses"] == "9"
