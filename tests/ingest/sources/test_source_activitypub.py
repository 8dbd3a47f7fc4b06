import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tagsight.schema import catalog
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import Rejected, SourceError, open_source, sniff_format
from tagsight.ingest.sources.activitypub import ActivityPubSource, ap_visibility, archive_media_path, html_to_text
from tagsight.privacy.policy import ConsentPolicy
from tests.ingest.archives import tar_folder, truncate, zip_folder

INGEST = IngestConfig(workers=1, image=ImageConfig(max_side=32))

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


# --------------------------------------------------------------------------- Mastodon archives by era
# Invented accounts and content, laid out as Mastodon's BackupService writes them: 2.3 to 4.1 wrote a .tar.gz
# whose outbox URLs are the media path with "/system/" stripped (a leading "/" stays when the instance
# stores media in object storage without one); 4.2+ writes a .zip, and instances serving media from a
# named bucket write "/BUCKET/media_attachments/..." while the file is stored at "media_attachments/...".

ERIN = "https://toot.example/users/erin"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def png(seed: int) -> bytes:
    """A distinct small picture per seed (no two are near duplicates)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((40, 32), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def status(n: int, era: int, *, vis: str = "public", content: str | None = None, tags: list | None = None,
           media: list[tuple[str, str]] = (), kind: str = "Note", summary: str | None = None,
           sensitive: bool = False, no_tag_key: bool = False) -> dict[str, Any]:
    """A Create activity as Mastodon ``era`` (3 or 4) writes it into outbox.json; ``media`` = (url, mediaType)."""
    sid = f"{ERIN}/statuses/1{era}{n:04d}"
    to, cc = {"public": ([AS_PUBLIC], [f"{ERIN}/followers"]), "unlisted": ([f"{ERIN}/followers"], [AS_PUBLIC]),
              "followers": ([f"{ERIN}/followers"], []),
              "direct": (["https://other.example/users/fred"], [])}[vis]
    html = content if content is not None else f"<p>Status {n}</p>"
    attachment = [{"type": "Document", "mediaType": mt, "url": url, "name": f"alt {n}.{i}",
                   "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH"}
                  | ({"focalPoint": [0.0, 0.0], "width": 40, "height": 32} if era >= 4 else {})
                  for i, (url, mt) in enumerate(media)]
    obj = {"id": sid, "type": kind, "summary": summary, "inReplyTo": None,
           "published": f"202{era - 1}-0{1 + n % 9}-1{n % 10}T08:00:00Z", "url": f"https://toot.example/@erin/1{era}{n:04d}",
           "attributedTo": ERIN, "to": to, "cc": cc, "sensitive": sensitive, "atomUri": sid,
           "conversation": f"tag:toot.example,2021:objectId={n}:objectType=Conversation",
           "content": html, "contentMap": {"en": html}, "attachment": attachment, "tag": tags or [],
           "replies": {"id": f"{sid}/replies", "type": "Collection"}}
    if kind == "Question":
        obj["oneOf"] = [{"type": "Note", "name": "yes", "replies": {"type": "Collection", "totalItems": 3}},
                        {"type": "Note", "name": "no", "replies": {"type": "Collection", "totalItems": 1}}]
        obj["endTime"] = "2023-05-01T00:00:00Z"
    if no_tag_key:
        del obj["tag"]
    activity = {"id": f"{sid}/activity", "type": "Create", "actor": ERIN, "published": obj["published"],
                "to": to, "cc": cc, "object": obj}
    if era < 4:  # 4.2 dropped the per-item @context and the LD signatures (mastodon/mastodon#23360)
        activity["@context"] = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
        activity["signature"] = {"type": "RsaSignature2017", "creator": f"{ERIN}#main-key",
                                 "created": "2021-06-01T00:00:00Z", "signatureValue": "c2ln"}
    return activity


def boost(n: int) -> dict[str, Any]:
    return {"id": f"{ERIN}/statuses/19{n:04d}/activity", "type": "Announce", "actor": ERIN,
            "published": "2022-02-02T10:00:00Z", "to": [AS_PUBLIC], "cc": [f"{ERIN}/followers"],
            "object": f"https://other.example/users/fred/statuses/{n}"}


def HASHTAG(name: str) -> dict[str, str]:  # noqa: N802  (reads like the ActivityStreams type it builds)
    return {"type": "Hashtag", "href": f"https://toot.example/tags/{name.lower()}", "name": f"#{name}"}


FRAGMENT_LINK = ('<p>Notes from <a href="https://notes.example/econ/page/#slutsky" target="_blank" rel="nofollow '
                 'noopener noreferrer"><span class="invisible">https://</span><span class="ellipsis">notes.example/'
                 'econ/page/</span><span class="invisible">#slutsky</span></a> and https://git.example/i#24</p>')


def mastodon3(root_files: dict[str, bytes]) -> dict[str, Any]:
    """A Mastodon 3.x outbox (local storage: URLs are "media_attachments/..."; S3 without bucket: "/media_...")."""
    f1, f2 = "media_attachments/files/105/000/000/000/000/001/original/a1.png", \
        "media_attachments/files/105/000/000/000/000/002/original/b2.png"
    root_files.update({f1: png(31), f2: png(32)})
    items = [
        status(1, 3, content='<p>Harbour at dawn <a href="https://toot.example/tags/harbour" class="mention hashtag" '
                             'rel="tag">#<span>Harbour</span></a></p>', tags=[HASHTAG("Harbour")],
               media=[(f1, "image/png")]),
        status(2, 3, content=FRAGMENT_LINK, media=[("/" + f2, "image/png")]),
        status(3, 3, vis="followers", media=[(f1, "image/png")]),
        status(4, 3, vis="direct"),
        boost(5),
        status(6, 3, kind="Question", content="<p>Tea or coffee?</p>"),
    ]
    return {"@context": ["https://www.w3.org/ns/activitystreams",
                         {"ostatus": "http://ostatus.org#", "atomUri": "ostatus:atomUri"}],
            "id": "outbox.json", "type": "OrderedCollection", "totalItems": len(items), "orderedItems": items}


def mastodon4(root_files: dict[str, bytes]) -> dict[str, Any]:
    """A Mastodon 4.x outbox of an instance serving media from the bucket "tootmedia": every URL is prefixed."""
    paths = [f"media_attachments/files/111/222/333/444/555/00{i}/original/{c}.png" for i, c in enumerate("cdef")]
    root_files.update({p: png(40 + i) for i, p in enumerate(paths)})
    items = [
        status(1, 4, content="<p>Fog over the bay</p>", tags=[HASHTAG("Fog"), HASHTAG("Bay")],
               media=[(f"/tootmedia/{paths[0]}", "image/png"), ("/tootmedia/media_attachments/files/v.mp4", "video/mp4")]),
        status(2, 4, content=FRAGMENT_LINK, tags=[{"type": "Mention", "href": "https://other.example/users/fred",
                                                   "name": "@fred@other.example"}],
               media=[(f"https://files.toot.example/tootmedia/{paths[1]}", "image/png")]),
        status(3, 4, content="<p>Surgery photos</p>", summary="medical, blood", sensitive=True, tags=[HASHTAG("Vet")],
               media=[(f"/tootmedia/{paths[2]}", "image/png")]),
        status(4, 4, vis="unlisted", media=[(f"/tootmedia/{paths[3]}", "image/png")]),
        status(5, 4, content="<p>Old style #Lake and https://x.example/a#frag</p>", no_tag_key=True,
               media=[(f"/cache/{paths[3]}", "image/png")]),
        status(6, 4, media=[("/tootmedia/../../etc/passwd", "image/png")]),
        boost(7),
        status(8, 4, kind="Question", content="<p>Which lens?</p>"),
    ]
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": "outbox.json", "type": "OrderedCollection",
            "totalItems": len(items), "orderedItems": items}


def write_tree(root: Path, outbox_doc: dict[str, Any], files: dict[str, bytes]) -> Path:
    """The archive as a folder: outbox.json, actor.json, likes.json, bookmarks.json, avatar and the media files."""
    docs = {"outbox.json": outbox_doc, "actor.json": {"id": ERIN, "type": "Person", "preferredUsername": "erin",
                                                      "icon": {"type": "Image", "url": "avatar.png"}},
            "likes.json": {"type": "OrderedCollection", "orderedItems": []},
            "bookmarks.json": {"type": "OrderedCollection", "orderedItems": []}}
    for name, doc in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(doc), encoding="utf-8")
    for rel, data in {**files, "avatar.png": png(1)}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def era_folder(tmp_path: Path, era: int) -> Path:
    files: dict[str, bytes] = {}
    doc = mastodon3(files) if era == 3 else mastodon4(files)
    return write_tree(tmp_path / f"archive-m{era}", doc, files)


def test_a_mastodon3_archive_reads_every_status_with_its_reason(tmp_path):
    items = list(ActivityPubSource(era_folder(tmp_path, 3)))
    assert len(items) == 6
    first, fragment, followers, direct, boosted, poll = items
    assert first.hashtags == ("Harbour",) and first.media[0].path.startswith("media_attachments/files/105")
    assert fragment.hashtags == () and "#slutsky" in fragment.caption
    assert fragment.media[0].path == "media_attachments/files/105/000/000/000/000/002/original/b2.png"
    assert (followers.visibility, direct.visibility) == ("followers", "direct")
    assert (boosted.reason, poll.reason) == ("not_authored", "poll")


def test_a_mastodon4_archive_finds_bucket_prefixed_media_and_carries_content_warnings(tmp_path):
    root = era_folder(tmp_path, 4)
    items = list(ActivityPubSource(root))
    fog, fragment, vet, unlisted, old_style, escape, boosted, poll = items
    for post in (fog, fragment, vet, unlisted, old_style):
        assert post.media[0].path.startswith("media_attachments/files/111/") and (root / post.media[0].path).is_file()
    assert fog.hashtags == ("Fog", "Bay") and fog.extra["dropped_attachments"] == 1
    assert fragment.hashtags == ()  # a Mention tag and a link to "#slutsky" are not hashtags
    assert (vet.sensitive, vet.content_warning) == (True, "medical, blood")
    assert (fog.sensitive, fog.content_warning) == (False, None)
    assert unlisted.visibility == "unlisted"
    assert old_style.hashtags == ("Lake",)  # no tag key: the caption's own hashtag, not the URL's fragment
    assert escape.media[0].path == "tootmedia/../../etc/passwd"
    assert (boosted.reason, poll.reason) == ("not_authored", "poll")


@pytest.mark.parametrize("url, expected", [
    ("media_attachments/files/1/a.png", {"path": "media_attachments/files/1/a.png"}),
    ("/media_attachments/files/1/a.png", {"path": "media_attachments/files/1/a.png"}),
    ("/bucket/media_attachments/files/1/a.png", {"path": "media_attachments/files/1/a.png"}),
    ("/cache/media_attachments/files/1/a.png", {"path": "media_attachments/files/1/a.png"}),
    ("https://cdn.example/bucket/media_attachments/files/1/a.png", {"path": "media_attachments/files/1/a.png"}),
    ("https://cdn.example/bucket/media_attachments/files/9/gone.png",
     {"url": "https://cdn.example/bucket/media_attachments/files/9/gone.png"}),
    ("/bucket/media_attachments/files/9/gone.png", {"path": "media_attachments/files/9/gone.png"}),
    ("media/a.png", {"path": "media/a.png"}),
    ("/bucket/../media_attachments/files/1/a.png", {"path": "bucket/../media_attachments/files/1/a.png"}),
    ("/x/notmedia_attachments/files/1/a.png", {"path": "x/notmedia_attachments/files/1/a.png"}),
])
def test_archive_media_path_strips_what_mastodon_prefixes(url, expected):
    held = {"media_attachments/files/1/a.png", "media/a.png"}
    assert archive_media_path(url, held.__contains__) == expected


@pytest.mark.parametrize("html, tags", [
    (FRAGMENT_LINK, []),
    ('<p><a href="https://wiki.example/Cat#Anatomy">#Anatomy</a> of a cat #catsofmastodon</p>', ["catsofmastodon"]),
    ("<p>issue #24 fixed, see www.example.org/#top #bugfix</p>", ["bugfix"]),
])
def test_without_a_tag_key_hashtags_never_come_from_links_or_numbers(tmp_path, make, html, tags):
    note = make.note(1, content=html)
    del note["object"]["tag"]
    assert list(_one(tmp_path, make, note).hashtags) == tags


def test_a_non_boolean_sensitive_flag_is_a_schema_rejection(tmp_path, make):
    note = make.note(1)
    note["object"]["sensitive"] = "yes"
    item = _one(tmp_path, make, note)
    assert isinstance(item, Rejected) and item.reason == "invalid_field:sensitive"


def era_package(tmp_path: Path, era: int, package: str) -> Path:
    """The era's archive as Mastodon hands it out (.zip since 4.2, .tar.gz before) or unpacked, or re-zipped
    by the user around its folder."""
    folder = era_folder(tmp_path / "unpacked", era)
    name = f"archive-2024010{era}120000-0123456789abcdef0123456789abcdef"
    if package == "zip":
        return zip_folder(folder, tmp_path / f"{name}.zip", dirs=False)
    if package == "tar.gz":
        return tar_folder(folder, tmp_path / f"{name}.tar.gz")
    if package == "zip-in-folder":
        return zip_folder(folder, tmp_path / "my-mastodon.zip", prefix="my-mastodon/")
    return folder


@pytest.mark.parametrize("package", ["folder", "zip", "tar.gz", "zip-in-folder"])
@pytest.mark.parametrize("era", [3, 4])
def test_every_era_and_package_is_sniffed_read_and_reconciled(tmp_path, era, package):
    path = era_package(tmp_path, era, package)
    assert sniff_format(path) == "activitypub"
    source = open_source(path)
    assert len(list(source)) == (6 if era == 3 else 8)
    summary = ingest(source, tmp_path / "ds", ConsentPolicy(), INGEST)
    assert summary.reconciles() and summary.posts_in == len(list(source))
    assert summary.post_reasons["not_authored"] == 1 and summary.post_reasons["poll"] == 1
    assert summary.media_reasons["media_missing"] == 0
    posts = catalog.read_table(tmp_path / "ds", "posts").to_pylist()
    assert not {t for p in posts for t in p["hashtags"]} & {"slutsky", "24", "frag"}
    if era == 4:
        assert summary.posts_kept == 3 and summary.post_reasons["sensitive_content"] == 1
        assert summary.post_reasons["visibility_unlisted"] == 1 and summary.media_reasons["path_escapes_root"] == 1
    else:
        assert summary.posts_kept == 2 and summary.post_reasons["visibility_followers"] == 1


def test_a_broken_archive_is_a_source_error_that_names_the_export(tmp_path):
    folder = era_folder(tmp_path / "unpacked", 4)
    (folder / "outbox.json").write_bytes((folder / "outbox.json").read_bytes()[:300])
    cut = zip_folder(folder, tmp_path / "archive-cut-outbox.zip")
    with pytest.raises(SourceError, match="outbox.json of the Mastodon archive .* is not valid JSON"):
        ActivityPubSource(cut)
    truncated = truncate(zip_folder(era_folder(tmp_path / "b", 4), tmp_path / "archive-truncated.zip"))
    assert not ActivityPubSource.sniff(truncated)
    with pytest.raises(SourceError):
        ActivityPubSource(truncated)
    other = zip_folder(tmp_path / "unpacked" / "archive-m4" / "media_attachments", tmp_path / "photos.zip")
    assert not ActivityPubSource.sniff(other)
    with pytest.raises(SourceError, match="no outbox.json: not a Mastodon archive"):
        ActivityPubSource(other)


def test_sensitive_posts_are_kept_with_exclude_sensitive_false(tmp_path):
    root = era_folder(tmp_path, 4)
    summary = ingest(open_source(root), tmp_path / "ds", ConsentPolicy(exclude_sensitive=False), INGEST)
    assert summary.reconciles() and summary.posts_kept == 4 and "sensitive_content" not in summary.post_reasons
    vet = [p for p in catalog.read_table(tmp_path / "ds", "posts").to_pylist() if p["content_warning"]]
    assert [(p["sensitive"], p["content_warning"], p["hashtags"]) for p in vet] == [(True, "medical, blood", ["Vet"])]
    from tagsight.data.index import SampleIndex

    index = SampleIndex.build(tmp_path / "ds")
    metas = [index.read_meta(i) for i in range(len(index))]
    flagged = [(m["sensitive"], m["content_warning"]) for m in metas if "sensitive" in m]
    assert flagged == [(True, "medical, blood")] and len(metas) > 1   # the others carry no flag at all


@pytest.mark.parametrize("fmt", ["auto", "activitypub"])
def test_the_cli_ingests_a_downloaded_archive_as_it_is(tmp_path, capsys, fmt):
    from tagsight.cli import main

    archive = era_package(tmp_path, 4, "zip")
    assert main(["ingest", str(archive), "--out", str(tmp_path / "ds"), "--format", fmt, "--workers", "1",
                 "--max-side", "32"]) == 0
    out = capsys.readouterr().out
    assert "posts: 8 in = 3 kept + 5 rejected" in out and "sensitive_content" in out


@pytest.mark.parametrize("package, era", [("zip", "Mastodon 4.2 or later (.zip)"),
                                          ("tar.gz", "Mastodon before 4.2 (.tar.gz)"),
                                          ("folder", "unpacked folder (any Mastodon version)")])
def test_describe_names_the_export_and_its_era(tmp_path, package, era):
    info = open_source(era_package(tmp_path, 3, package)).describe()
    assert (info["format"], info["export"], info["era"], info["activities"]) == ("activitypub", "Mastodon archive",
                                                                                  era, "6")
    assert info["container"] == {"zip": "zip", "tar.gz": "tar", "folder": "folder"}[package]
