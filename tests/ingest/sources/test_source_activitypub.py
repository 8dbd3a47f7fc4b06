import pytest

from tagsight.ingest.schema import Media, Post
from tagsight.ingest.sources import Rejected, SourceError
from tagsight.ingest.sources.activitypub import ActivityPubSource, ap_visibility, html_to_text

FOLLOWERS = "https://mastodon.example/users/alice/followers"
BOB = "https://other.example/users/bob"


def _one(tmp_path, make, activity):
    (item,) = ActivityPubSource(make.outbox_export(tmp_path / "a", [activity]))
    return item


def test_a_mastodon_export_yields_the_authors_notes_and_rejects_boosts(outbox_export, make):
    src = ActivityPubSource(outbox_export)
    post, boost = src
    assert src.root == outbox_export and post.source == "archive-alice"
    assert post.post_id == f"{make.ACTOR}/statuses/109700000000000001" and post.author_id == make.ACTOR
    assert post.created_at == "2023-01-11T09:30:00Z" and post.visibility == "public"
    assert post.caption == "My cat & the sunset #Cats" and post.hashtags == ("Cats",)
    assert post.media == (Media(path="media_attachments/files/109/700/000/000/000/001/original/img1.jpg",
                                alt_text="Alt text 1"),)
    assert (outbox_export / post.media[0].path).is_file()
    assert isinstance(boost, Rejected) and (boost.ref, boost.reason) == ("outbox.json[1]", "not_authored")
    assert boost.author_id == make.ACTOR


@pytest.mark.parametrize("to, cc, expected", [
    (["https://www.w3.org/ns/activitystreams#Public"], [FOLLOWERS], "public"),
    (["as:Public"], [], "public"),
    ("Public", None, "public"),
    ([FOLLOWERS], ["https://www.w3.org/ns/activitystreams#Public"], "unlisted"),
    ([FOLLOWERS], [BOB], "followers"),
    ([BOB], [], "direct"),
    ([], [], "direct"),
])
def test_visibility_follows_mastodons_audience_rules(to, cc, expected):
    assert ap_visibility(to, cc) == expected


@pytest.mark.parametrize("to, cc, expected", [
    (["https://www.w3.org/ns/activitystreams#Public"], [FOLLOWERS], "public"),
    ([FOLLOWERS], ["https://www.w3.org/ns/activitystreams#Public"], "unlisted"),
    ([FOLLOWERS], [BOB], "followers"),
    ([BOB], [], "direct"),
])
def test_each_visibility_reaches_the_post(tmp_path, make, to, cc, expected):
    assert _one(tmp_path, make, make.note(1, to=to, cc=cc)).visibility == expected


def test_without_a_tag_key_hashtags_come_from_the_caption(tmp_path, make):
    note = make.note(1, content="<p>Line one<br />line two #Sea\u200b</p><p>🌊 &lt;3 #wave</p>")
    del note["object"]["tag"]
    post = _one(tmp_path, make, note)
    assert post.caption == "Line one\nline two #Sea\u200b\n\n🌊 <3 #wave"
    assert post.hashtags == ("Sea\u200b", "wave")


def test_non_image_attachments_are_dropped_and_counted(tmp_path, make):
    attachments = [{"type": "Document", "mediaType": "video/mp4", "url": "/media_attachments/files/v.mp4", "name": None},
                   {"type": "Document", "mediaType": "image/png", "url": "/media_attachments/files/i.png", "name": ""},
                   {"type": "Image", "url": "https://pixelfed.example/storage/m/x.jpg", "name": "remote"}]
    post = _one(tmp_path, make, make.note(1, attachment=attachments))
    assert post.media == (Media(path="media_attachments/files/i.png", alt_text=""),
                          Media(url="https://pixelfed.example/storage/m/x.jpg", alt_text="remote"))
    assert post.extra["dropped_attachments"] == 1


def test_a_note_without_images_is_still_yielded(tmp_path, make):
    post = _one(tmp_path, make, make.note(1, attachment=[]))
    assert isinstance(post, Post) and post.media == ()


def test_image_objects_need_attachments(tmp_path, make):
    assert isinstance(_one(tmp_path, make, make.note(1, kind="Image")), Post)
    bare = _one(tmp_path / "b", make, make.note(1, kind="Image", attachment=[]))
    assert isinstance(bare, Rejected) and bare.reason == "unsupported_object"


@pytest.mark.parametrize("activity, reason", [
    ({"id": "https://m.example/a/1", "type": "Like", "actor": "https://m.example/u", "object": "https://x/1"},
     "unsupported_activity"),
    ({"id": "https://m.example/a/2", "type": "Create", "actor": "https://m.example/u", "object": "https://x/2"},
     "unsupported_object"),
    ("just a string", "invalid_record"),
])
def test_other_activities_are_rejected(tmp_path, make, activity, reason):
    item = _one(tmp_path, make, activity)
    assert isinstance(item, Rejected) and item.reason == reason and item.ref == "outbox.json[0]"


def test_a_poll_is_refused_as_poll_and_a_note_without_date_is_a_schema_rejection(tmp_path, make):
    poll = make.note(1, kind="Question", attachment=[])
    undated = make.note(2)
    del undated["object"]["published"], undated["published"]
    items = list(ActivityPubSource(make.outbox_export(tmp_path / "a", [poll, undated])))
    assert [(i.reason, i.post_id) for i in items] == [
        ("poll", f"{make.ACTOR}/statuses/109700000000000001"),
        ("missing_field:created_at", f"{make.ACTOR}/statuses/109700000000000002")]


def test_the_outbox_file_itself_can_be_given(outbox_export):
    src = ActivityPubSource(outbox_export / "outbox.json")
    assert src.root == outbox_export and len(list(src)) == 2


def test_an_outbox_that_cannot_be_read_is_a_source_error(tmp_path, make):
    (tmp_path / "outbox.json").write_text('{"type": "OrderedCollection", "orderedItems": [')
    with pytest.raises(SourceError, match="not valid JSON"):
        ActivityPubSource(tmp_path)
    make.json(tmp_path / "outbox.json", {"type": "Person"})
    with pytest.raises(SourceError, match="orderedItems"):
        ActivityPubSource(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no outbox.json"):
        ActivityPubSource(tmp_path / "empty")


def test_html_to_text_keeps_text_and_unescapes_entities():
    html = ('<p>A <a href="https://x.example/tags/cats" class="mention hashtag">#<span>cats</span></a> &amp; '
            '<span class="invisible">https://</span><span>example.com</span></p><p>second&nbsp;para</p>')
    assert html_to_text(html) == "A #cats & https://example.com\n\nsecond\xa0para"
