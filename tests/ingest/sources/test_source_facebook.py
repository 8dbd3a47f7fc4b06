import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Post
from tagsight.ingest.sources import Rejected, SourceError, open_source, sniff_format
from tagsight.ingest.sources.facebook import FacebookSource
from tagsight.privacy.policy import ConsentPolicy

NEW = "your_facebook_activity/posts"


def mojibake(text: str) -> str:
    """How the export writes text: each UTF-8 byte as one \\u00xx code point."""
    return text.encode("utf-8").decode("latin-1")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=True), encoding="ascii")


def media(uri: str, ts: int, description: str = "", title: str = "") -> dict[str, Any]:
    return {"uri": uri, "creation_timestamp": ts, "title": mojibake(title), "description": mojibake(description),
            "media_metadata": {"photo_metadata": {"exif_data": [{"latitude": 48.85837, "longitude": 2.294481,
                                                                 "iso": 100, "camera_make": "PhoneMaker"}]}}}


def fb_post(ts: int, text: str | None, uris: list[str], title: str = "Invented Person updated her status.",
            description: str = "") -> dict[str, Any]:
    data = [{"post": mojibake(text)}] if text is not None else []
    data.append({"update_timestamp": ts + 60})
    attachments = [{"data": [{"media": media(u, ts, description)} for u in uris]}] if uris else []
    attachments.append({"data": [{"place": {"name": "Somewhere", "coordinate": {"latitude": 1.5, "longitude": 2.5}}}]})
    return {"timestamp": ts, "attachments": attachments, "data": data, "title": mojibake(title)}


POSTS_FILES = {"2023+": f"{NEW}/your_posts__check_ins__photos_and_videos_1.json",
               "2022": "your_activity_across_facebook/posts/your_posts__check_ins__photos_and_videos_1.json",
               "2021-2022": "your_activity_across_facebook/posts/your_posts_1.json",
               "before-2022": "posts/your_posts_1.json"}


def make_export(root: Path, era: str = "2023+", *, html: bool = False, profile: bool = True) -> Path:
    """An invented account's export: two posts with photos, a shared post, a text post, an album."""
    base = POSTS_FILES[era].rsplit("/", 1)[0]
    m = f"{base}/media" if era != "before-2022" else "photos_and_videos"
    posts = [
        fb_post(1600000000, "Crème brûlée night 🍮 #dessert #Café", [f"{m}/Dinner_1/101.jpg"]),
        fb_post(1600100000, "Two views #mountains", [f"{m}/Trip_2/201.jpg", f"{m}/Trip_2/202.jpg"],
                description="Le sommet à l'aube #summit"),
        fb_post(1600200000, None, [f"{m}/Other_3/301.jpg"], title="Invented Person shared Someone Else's post."),
        fb_post(1600300000, "Just words", []),
    ]
    if html:
        (root / base).mkdir(parents=True, exist_ok=True)
        (root / POSTS_FILES[era]).with_suffix(".html").write_text("<html><body>posts</body></html>")
        (root / "start_here.html").write_text("<html><body>Your information</body></html>")
        return root
    write_json(root / POSTS_FILES[era], posts)
    album_dir = f"{base}/album" if era != "before-2022" else "photos_and_videos/album"
    write_json(root / album_dir / "0.json", {
        "name": mojibake("Été"), "photos": [media(f"{m}/Trip_2/201.jpg", 1600100000, "dup of a post photo"),
                                            media(f"{m}/Album_4/401.jpg", 1600400000, "Au marché #market")],
        "cover_photo": media(f"{m}/Album_4/401.jpg", 1600400000), "last_modified_timestamp": 1600400000,
        "description": ""})
    write_json(root / album_dir / "1.json", {"name": "Profile pictures", "photos": [
        media(f"{m}/Profile_5/501.jpg", 1500000000)]})
    if profile:
        key, rel = (("profile", "profile_information/profile_information.json") if era == "before-2022"
                    else ("profile_v2", "personal_information/profile_information/profile_information.json"))
        write_json(root / rel, {key: {"name": {"full_name": mojibake("Invented Pérson"), "first_name": "Invented",
                                               "middle_name": "", "last_name": "Pérson"},
                                      "emails": {"emails": ["invented@example.com"]}, "username": "invented.person"}})
    for i, uri in enumerate(sorted({u for p in posts for a in p["attachments"] for d in a["data"]
                                    if "media" in d for u in [d["media"]["uri"]]} | {
            f"{m}/Album_4/401.jpg", f"{m}/Profile_5/501.jpg"})):
        (root / uri).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (37 * i % 256, 255 - 29 * i % 256, 90)).save(root / uri, "JPEG")
    return root


@pytest.mark.parametrize("era", list(POSTS_FILES))
def test_posts_and_albums_with_captions_fixed_and_safe_visibility(tmp_path, era):
    root = make_export(tmp_path / "facebook-invented", era)
    src = FacebookSource(root)
    items = list(src)
    assert src.era == era and len(items) == 7
    dessert, views, shared, words, dup, market, profile = items
    assert dessert.caption == "Crème brûlée night 🍮 #dessert #Café" and dessert.hashtags == ("dessert", "Café")
    assert dessert.author_id == "Invented Pérson" and dessert.created_at == "2020-09-13T12:26:40Z"
    assert dessert.source == "facebook-invented" and (root / dessert.media[0].path).is_file()
    assert views.caption == "Two views #mountains\n\nLe sommet à l'aube #summit"
    assert views.hashtags == ("mountains", "summit") and len(views.media) == 2
    assert isinstance(shared, Rejected) and shared.reason == "not_authored"
    assert isinstance(words, Post) and words.media == () and words.caption == "Just words"
    assert isinstance(dup, Rejected) and (dup.reason, dup.ref) == ("duplicate_media", dup.ref)
    assert views.post_id in dup.detail and dup.ref.endswith("album/0.json[0]")
    assert market.caption == "Au marché #market" and market.extra["album"] == "Été"
    assert isinstance(profile, Post) and profile.extra["album"] == "Profile pictures"
    assert {p.visibility for p in items if isinstance(p, Post)} == {"followers"}
    assert all(p.consent_ai_training is None for p in items if isinstance(p, Post))


def test_no_coordinates_or_exif_reach_a_post(tmp_path):
    for post in FacebookSource(make_export(tmp_path / "e")):
        text = json.dumps(post.to_dict() if isinstance(post, Post) else post.detail) + repr(getattr(post, "extra", ""))
        assert "48.85" not in text and "PhoneMaker" not in text and "Somewhere" not in text


def test_ids_are_stable_and_distinct(tmp_path):
    root = make_export(tmp_path / "e")
    ids = [i.post_id for i in FacebookSource(root)]
    assert ids == [i.post_id for i in FacebookSource(root)]
    assert len(set(ids) - {None}) == 6 and ids[4] is None  # the album copy of a post's photo has no id of its own


@pytest.mark.parametrize("era", list(POSTS_FILES))
def test_default_policy_keeps_nothing_unless_the_user_says_public(tmp_path, era):
    root = make_export(tmp_path / "e", era)
    summary = ingest(FacebookSource(root), tmp_path / "d1", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.posts_kept == 0 and summary.posts_in == 7 and summary.reconciles()
    assert summary.post_reasons["visibility_followers"] == 5
    public = ingest(open_source(root, "facebook", visibility="public"), tmp_path / "d2", ConsentPolicy(),
                    IngestConfig(workers=1))
    assert public.reconciles() and public.posts_in == 7 and public.posts_kept == 4
    assert public.post_reasons == {"not_authored": 1, "duplicate_media": 1, "no_media": 1}
    assert public.media_kept == 5
    with pytest.raises(ValueError, match="visibility"):
        FacebookSource(root, visibility="friends")


def test_author_falls_back_to_username_option_and_folder(tmp_path):
    root = make_export(tmp_path / "exp", profile=False)
    assert {p.author_id for p in FacebookSource(root) if isinstance(p, Post)} == {"exp"}
    assert {p.author_id for p in FacebookSource(root, author="me") if isinstance(p, Post)} == {"me"}
    write_json(root / "personal_information/profile_information/profile_information.json",
               {"profile_v2": {"name": {"full_name": ""}, "username": "inv.p"}})
    assert {p.author_id for p in FacebookSource(root, author="me") if isinstance(p, Post)} == {"inv.p"}


def test_html_exports_are_recognised_and_refused(tmp_path):
    for era in POSTS_FILES:
        root = make_export(tmp_path / era.replace("+", ""), era, html=True)
        (root / "index.html").write_text("<html></html>")
        assert sniff_format(root) == "facebook"
        with pytest.raises(SourceError, match="HTML format.*JSON"):
            open_source(root)


def test_posts_files_in_number_order_and_album_only_exports(tmp_path):
    root = tmp_path / "e"
    for n in (1, 2, 10):
        write_json(root / NEW / f"your_posts__check_ins__photos_and_videos_{n}.json",
                   [fb_post(1600000000 + n, f"#n{n}", [f"{NEW}/media/x/{n}.jpg"])])
    assert [p.hashtags for p in FacebookSource(root)] == [("n1",), ("n2",), ("n10",)]
    albums = tmp_path / "albums"
    write_json(albums / "photos_and_videos/album/0.json",
               {"name": "A", "photos": [media("photos_and_videos/a.jpg", 1)]})
    write_json(albums / "photos_and_videos/your_photos.json", [media("photos_and_videos/b.jpg", 2)])
    assert sniff_format(albums) == "facebook"
    assert [p.media[0].path for p in FacebookSource(albums)] == ["photos_and_videos/a.jpg", "photos_and_videos/b.jpg"]


def test_bad_entries_are_rejected_with_their_place(tmp_path):
    root = tmp_path / "e"
    rel = f"{NEW}/your_posts__check_ins__photos_and_videos_1.json"
    write_json(root / rel, ["junk", {"attachments": [{"data": [{"media": {"title": "no uri"}}]}], "timestamp": 1},
                            {"data": [{"post": "no time"}]}, fb_post(5, "ok", [])])
    write_json(root / f"{NEW}/album/0.json", {"name": "A", "photos": [7, {"title": "x"}]})
    got = [(i.ref, i.reason) for i in FacebookSource(root, author="me") if isinstance(i, Rejected)]
    assert got == [(f"{rel}[0]", "invalid_record"), (f"{rel}[1]", "invalid_field:media"),
                   (f"{rel}[2]", "missing_field:created_at"), (f"{NEW}/album/0.json[0]", "invalid_record"),
                   (f"{NEW}/album/0.json[1]", "invalid_field:media")]


def test_unreadable_files_and_non_exports_are_source_errors(tmp_path):
    root = tmp_path / "e"
    rel = root / NEW / "your_posts__check_ins__photos_and_videos_1.json"
    rel.parent.mkdir(parents=True)
    rel.write_text("[{")
    with pytest.raises(SourceError, match="not valid JSON"):
        FacebookSource(root)
    write_json(rel, {"posts": []})
    with pytest.raises(SourceError, match="JSON list"):
        FacebookSource(root)
    write_json(rel, [])
    write_json(root / NEW / "album/0.json", {"name": "no photos"})
    with pytest.raises(SourceError, match="'photos' list"):
        FacebookSource(root)
    with pytest.raises(SourceError, match="not a Facebook export"):
        FacebookSource(tmp_path)
    assert not FacebookSource.sniff(rel) and not FacebookSource.sniff(tmp_path / "missing")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_the_downloaded_archive_is_read_in_place(tmp_path, kind):
    from tests.ingest.archives import tar_folder, zip_folder

    root = make_export(tmp_path / "facebook-invented")
    out = tmp_path / f"facebook-invented-2024.{kind}"
    (zip_folder(root, out, prefix="facebook-invented/") if kind == "zip" else tar_folder(root, out, prefix="x/"))
    assert sniff_format(out) == "facebook"
    src = open_source(out, visibility="public")
    assert src.name == "facebook-invented-2024" and src.era == "2023+"
    assert [i.post_id for i in src] == [i.post_id for i in FacebookSource(root)]
    summary = ingest(src, tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.reconciles() and (summary.posts_in, summary.posts_kept, summary.media_kept) == (7, 4, 5)


def test_an_html_export_in_a_zip_is_refused(tmp_path):
    from tests.ingest.archives import zip_folder

    out = zip_folder(make_export(tmp_path / "e", html=True), tmp_path / "facebook.zip")
    assert sniff_format(out) == "facebook"
    with pytest.raises(SourceError, match="HTML format"):
        open_source(out)


@pytest.mark.parametrize("title, shared", [
    ("Invented Person shared Someone Else's post.", True),
    ("Invented Person shared Someone Else's photo.", True),
    ("Invented Person shared a post.", True),
    (mojibake("Invented Pérson shared Zoë's video."), True),
    ("Invented Person shared a memory.", False),
    ("Invented Person shared a link.", False),
    ("Invented Person updated her status.", False),
    ("Invented Person added 2 new photos.", False),
])
def test_shares_of_other_peoples_posts_are_told_by_their_title(title, shared):
    from tagsight.ingest.sources.facebook import is_shared_post

    assert is_shared_post({"title": title}) is shared


def test_describe_names_the_era_and_the_visibility(tmp_path):
    d = FacebookSource(make_export(tmp_path / "e", "before-2022")).describe()
    assert (d["format"], d["era"], d["account"]) == ("facebook", "before-2022", "Invented Pérson")
    assert d["visibility"].startswith("followers")
