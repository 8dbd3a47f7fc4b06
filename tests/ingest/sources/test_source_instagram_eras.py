"""Every Instagram era and package, from the folder and from the downloaded zip, through the pipeline."""

import builtins
import logging

import pytest

from tagsight.schema import catalog
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Post
from tagsight.ingest.sources import Rejected, SourceError, open_source, sniff_format
from tagsight.ingest.sources.folder import FolderSource
from tagsight.ingest.sources.instagram import InstagramSource
from tagsight.ingest.sources.instagram_html import parse_time
from tests.ingest.archives import zip_folder
from tests.ingest.sources import instagram_exports as ig

CFG = IngestConfig(workers=1, image=ImageConfig(max_side=32))
FIXTURES = {  # name: (builder, era reported, package)
    "json-2025": (lambda root, **kw: ig.json_export(root, "2025", **kw), "2025 on", "json"),
    "json-2023": (lambda root, **kw: ig.json_export(root, "2023", **kw), "2023-2024", "json"),
    "json-2021": (lambda root, **kw: ig.json_export(root, "2021", **kw), "2020-2023", "json"),
    "json-before-2020": (ig.legacy_export, "before 2020", "json"),
    "html-2025": (lambda root, **kw: ig.html_export(root, "2025", **kw), "2025 on", "html"),
    "html-2023": (lambda root, **kw: ig.html_export(root, "2023", **kw), "2023-2024", "html"),
    "html-2022": (lambda root, **kw: ig.html_export(root, "2022", **kw), "2020-2023", "html"),
}


def build(tmp_path, fixture, container, private=False):
    builder = FIXTURES[fixture][0]
    root = builder(tmp_path / f"instagram-jane.doe-{fixture}", private=private)
    if container == "folder":
        return root
    # Meta's zip holds one folder named like the archive: it becomes the root.
    return zip_folder(root, tmp_path / "dl" / f"{root.name}.zip", prefix=f"{root.name}/")


@pytest.mark.parametrize("container", ["folder", "zip"])
@pytest.mark.parametrize("fixture", list(FIXTURES))
def test_every_era_and_package_is_detected_read_and_reconciles(tmp_path, fixture, container):
    path = build(tmp_path, fixture, container)
    assert sniff_format(path) == "instagram" and not isinstance(open_source(path), FolderSource)
    src = open_source(path)
    _, era, package = FIXTURES[fixture]
    assert (src.layout.era, src.layout.package, src.tree.kind) == (era, package, container)
    assert src.describe()["era"] == era and src.name == f"instagram-jane.doe-{fixture}"
    posts = [p for p in src if isinstance(p, Post)]
    assert [p.caption for p in posts] == ig.CAPTIONS
    assert [p.hashtags for p in posts] == [("coffee", "café", "Zürich"), ("beach", "sea"), ("surf",)]
    assert [len(p.media) for p in posts] == [1, 2, 1]
    assert {p.author_id for p in posts} == {"jane.doe"} and {p.visibility for p in posts} == {"public"}
    summary = ingest(src, tmp_path / "ds", cfg=CFG)
    assert summary.reconciles() and summary.posts_in == summary.posts_kept + summary.posts_rejected == 3
    assert summary.posts_kept == 2 and dict(summary.post_reasons) == {"no_usable_media": 1}  # the video
    assert summary.media_in == 4 and dict(summary.media_reasons) == {"not_an_image": 1}
    manifest = catalog.read_table(tmp_path / "ds", "posts").to_pylist()
    assert {row["source"] for row in manifest} == {src.name}


@pytest.mark.parametrize("fixture", ["json-2025", "json-2021", "json-before-2020", "html-2023"])
@pytest.mark.parametrize("container", ["folder", "zip"])
def test_a_private_account_yields_no_kept_post_under_the_default_policy(tmp_path, fixture, container):
    src = open_source(build(tmp_path, fixture, container, private=True))
    assert src.account.private is True and src.visibility == "followers"
    summary = ingest(src, tmp_path / "ds", cfg=CFG)
    assert summary.reconciles() and summary.posts_in == 3 and summary.posts_kept == 0
    assert dict(summary.post_reasons) == {"visibility_followers": 3}


def test_an_explicit_visibility_can_only_make_a_private_account_stricter(tmp_path):
    root = ig.json_export(tmp_path / "e", private="true")
    assert InstagramSource(root, visibility="public").visibility == "followers"
    assert InstagramSource(root, visibility="private").visibility == "private"
    public = ig.json_export(tmp_path / "p")
    assert InstagramSource(public, visibility="followers").visibility == "followers"


def test_the_latest_privacy_switch_counts_when_personal_information_is_silent(tmp_path):
    root = ig.json_export(tmp_path / "e", private=None)
    history = "security_and_login_information/login_and_profile_creation/profile_privacy_changes.json"
    ig.write_json(root / history, ig.privacy_history(("Account switched to private", 1_600_000_000),
                                                      ("Account switched to public", 1_650_000_000)))
    assert InstagramSource(root).account.private is False
    ig.write_json(root / history, ig.privacy_history(("Account switched to public", 1_600_000_000),
                                                      ("Account switched to private", 1_700_000_000)))
    src = InstagramSource(root)
    assert src.account.private is True and history in src.account.evidence
    old = "security_and_login_information/login_and_account_creation/account_privacy_changes.json"
    (root / history).rename(root / "x.json")
    ig.write_json(root / old, ig.privacy_history(("Private", 1_700_000_000)))
    assert InstagramSource(root).visibility == "followers"


def test_privacy_not_recorded_is_public_with_a_warning(tmp_path, caplog):
    root = ig.json_export(tmp_path / "e", private=None)
    with caplog.at_level(logging.WARNING):
        src = InstagramSource(root)
    assert src.account.private is None and src.visibility == "public"
    assert "does not record whether the account is private" in caplog.text


def test_a_recognised_export_without_posts_is_refused_naming_it_not_read_as_a_folder(tmp_path):
    root = ig.json_export(tmp_path / "e")
    (root / "your_instagram_activity/media/posts_1.json").unlink()
    assert FolderSource.sniff(root)  # it holds images ...
    assert sniff_format(root) == "instagram"  # ... but is recognised as an Instagram export
    with pytest.raises(SourceError, match=r"Instagram export .* holds no posts file.*request a new download"):
        open_source(root)
    zipped = zip_folder(root, tmp_path / "e.zip")
    with pytest.raises(SourceError, match="holds no posts file"):
        open_source(zipped)


def test_an_unsupported_posts_variant_names_the_export_and_era(tmp_path):
    root = ig.json_export(tmp_path / "e", "2023")
    ig.write_json(root / "your_instagram_activity/content/posts_1.json", {"ig_posts": []})
    with pytest.raises(SourceError, match=r"Instagram export \(2023-2024 layout, JSON package.*JSON list"):
        InstagramSource(root)


def test_a_zip_that_is_not_an_export_is_not_instagram(tmp_path, make):
    make.image(tmp_path / "photos" / "a.jpg")
    zipped = zip_folder(tmp_path / "photos", tmp_path / "photos.zip")
    assert not InstagramSource.sniff(zipped) and not InstagramSource.sniff(tmp_path / "nothing")
    with pytest.raises(SourceError, match="cannot tell the format"):
        sniff_format(zipped)


def test_legacy_carousels_are_grouped_and_other_media_json_sections_are_not_posts(tmp_path):
    src = InstagramSource(ig.legacy_export(tmp_path / "old"))
    items = list(src)
    assert [i.media[0].path.split("/")[0] for i in items] == ["photos", "photos", "videos"]
    assert items[1].created_at == "2018-02-01T10:00:00Z" and len(items[1].media) == 2


def test_bad_legacy_entries_are_rejected_with_their_place(tmp_path):
    root = ig.legacy_export(tmp_path / "old")
    ig.write_json(root / "media.json", {"photos": ["x", {"caption": "no path", "taken_at": "2018-01-01"}],
                                        "videos": {"not": "a list"}})
    got = [(i.ref, i.reason) for i in InstagramSource(root) if isinstance(i, Rejected)]
    assert got == [("media.json:photos[0]", "invalid_record"), ("media.json:photos[1]", "invalid_field:media"),
                   ("media.json:videos", "invalid_record")]


def test_html_blocks_without_a_readable_time_are_rejected_and_links_are_not_media(tmp_path):
    root = ig.html_export(tmp_path / "h")
    page = root / "your_instagram_activity/media/posts_1.html"
    extra = ig.html_post("no time #x", ["media/posts/202301/325468219_n_1790001.jpg"], "sometime last year")
    linked = ('<div class="uiBoxWhite"><div>see <a href="https://www.instagram.com/explore/tags/sun/">#sun</a></div>'
              '<div><a href="https://www.instagram.com/jane.doe/">profile</a>'
              '<img src="../../media/posts/202301/325468219_n_1790001.jpg" /></div><div>Mar 1, 2023 9:00 am</div></div>')
    page.write_text(page.read_text().replace('role="main">', 'role="main">' + extra + linked))
    items = list(InstagramSource(root))
    assert isinstance(items[0], Rejected) and items[0].reason == "invalid_field:created_at"
    assert items[0].ref == "your_instagram_activity/media/posts_1.html[0]"
    assert items[1].caption == "see #sun" and items[1].hashtags == ("sun",)
    assert [m.path for m in items[1].media] == ["media/posts/202301/325468219_n_1790001.jpg"]  # page-relative link
    assert "48.85" not in repr([i for i in items if isinstance(i, Post)])  # location tables are never read


def test_the_html_package_without_beautiful_soup_says_what_to_install(tmp_path, monkeypatch):
    root = ig.html_export(tmp_path / "h")
    real_import = builtins.__import__

    def no_bs4(name, *args, **kwargs):
        if name == "bs4":
            raise ImportError("no bs4")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bs4)
    with pytest.raises(SourceError, match=r"tagsight\[exports\]"):
        InstagramSource(root)


@pytest.mark.parametrize("text, iso", [("Aug 17, 2025 11:23 am", "2025-08-17T11:23:00Z"),
                                       ("Sep 8, 2016, 4:36 PM", "2016-09-08T16:36:00Z"),
                                       ("Jan 05, 2019 12:01 AM", "2019-01-05T00:01:00Z"),
                                       ("17 août 2025", None)])
def test_parse_time(text, iso):
    assert parse_time(text) == iso


def test_zip_ingest_with_workers_gives_the_folder_dataset(tmp_path):
    root = ig.json_export(tmp_path / "instagram-jane.doe-2025")
    zipped = zip_folder(root, tmp_path / "dl" / "instagram-jane.doe-2025.zip")
    versions = [ingest(open_source(p), tmp_path / f"ds{i}", cfg=IngestConfig(workers=2, chunk_size=1,
                                                                             image=ImageConfig(max_side=32))).version
                for i, p in enumerate((root, zipped))]
    assert versions[0] == versions[1]


def test_sniffing_and_opening_never_walk_the_whole_folder(tmp_path, class_folders, monkeypatch):
    from tagsight.ingest.tree import FolderTree

    def walk(self):
        raise AssertionError("the whole folder was listed")

    monkeypatch.setattr(FolderTree, "_walk", walk)
    assert not InstagramSource.sniff(class_folders) and sniff_format(class_folders) == "folder"
    root = ig.json_export(tmp_path / "e")
    ig.write_json(root / "your_instagram_activity/media/posts_2.json", [])
    assert sniff_format(root) == "instagram"
    assert InstagramSource(root).layout.posts == ("your_instagram_activity/media/posts_1.json",
                                                  "your_instagram_activity/media/posts_2.json")


def test_html_blocks_are_found_without_their_class_and_captions_may_be_headings(tmp_path):
    root = ig.html_export(tmp_path / "h", "2023")
    page = root / "your_instagram_activity/content/posts_1.html"
    body = ('<main role="main"><div><h2 class="_a6-h">Sunday #brunch</h2><div><a href="media/posts/202301/'
            '325468219_n_1790001.jpg"><img src="media/posts/202301/325468219_n_1790001.jpg" /></a></div>'
            '<div>Jan 8, 2023, 11:05 AM</div></div></main>')
    page.write_text(f"<html><body>{body}</body></html>")
    (post,) = InstagramSource(root)
    assert (post.caption, post.hashtags, post.created_at) == ("Sunday #brunch", ("brunch",), "2023-01-08T11:05:00Z")
    page.write_text("<html><body><p>nothing here</p></body></html>")
    with pytest.raises(SourceError, match=r"2023-2024 layout, HTML package.*no post blocks.*JSON format"):
        InstagramSource(root)


def test_a_media_json_that_is_not_instagrams_does_not_claim_an_image_folder(tmp_path, make):
    make.image(tmp_path / "pics" / "a.jpg")
    ig.write_json(tmp_path / "pics" / "media.json", [{"file": "a.jpg"}])
    (tmp_path / "pics" / "profile.json").write_text("{}")
    assert not InstagramSource.sniff(tmp_path / "pics") and sniff_format(tmp_path / "pics") == "folder"
    assert sniff_format(ig.legacy_export(tmp_path / "old")) == "instagram"
