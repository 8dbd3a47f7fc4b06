import json

import pytest

from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import Rejected, SourceError
from tagsight.ingest.sources.instagram import InstagramSource, fix_mojibake


def test_an_export_yields_its_posts_with_fixed_text_and_the_account_as_author(instagram_export):
    src = InstagramSource(instagram_export)
    single, carousel, video = src
    assert src.root == instagram_export and single.source == "instagram-janedoe-20230118"
    assert single.caption == "Café au lait ☕ #coffee #café #Zürich"
    assert single.hashtags == ("coffee", "café", "Zürich")
    assert single.created_at == "2023-01-18T00:00:00Z" and single.author_id == "jane.doe"
    assert single.media == (Media(path="media/posts/202301/325468219_n_17900000000000001.jpg"),)
    assert carousel.caption == "Weekend à la mer 🌊 #beach #sea" and len(carousel.media) == 2
    assert carousel.created_at == "2023-01-29T13:46:40Z"
    assert video.media[0].path.endswith(".mp4") and video.hashtags == ("surf",)
    assert {p.visibility for p in (single, carousel, video)} == {"public"}
    assert all(p.consent_ai_training is None for p in (single, carousel, video))


def test_post_ids_are_stable_and_distinct(instagram_export):
    first = [p.post_id for p in InstagramSource(instagram_export)]
    assert first == [p.post_id for p in InstagramSource(instagram_export)]
    assert len(set(first)) == 3


def test_no_coordinates_or_exif_reach_a_post(instagram_export):
    for post in InstagramSource(instagram_export):
        text = json.dumps(post.to_dict()) + repr(dict(post.extra))
        assert "48.85" not in text and "2.29" not in text and "43.7" not in text and "android" not in text


@pytest.mark.parametrize("layout", ["content", "your_instagram_activity/content", "media"])
def test_all_known_layouts_are_read(tmp_path, make, layout):
    root = make.instagram(tmp_path / "export", layout=layout)
    assert sum(isinstance(i, Post) for i in InstagramSource(root)) == 3


def test_posts_files_are_read_in_number_order(tmp_path, make):
    root = tmp_path / "export"
    for n in (1, 2, 10):
        make.json(root / "content" / f"posts_{n}.json",
                  [{"media": [{"uri": f"media/posts/{n}.jpg", "creation_timestamp": n, "title": f"#n{n}"}]}])
    refs = [p.hashtags for p in InstagramSource(root, author="me")]
    assert refs == [("n1",), ("n2",), ("n10",)]


def test_author_falls_back_to_the_option_then_the_folder_name(tmp_path, make):
    root = make.instagram(tmp_path / "my-export", username=None)
    assert {p.author_id for p in InstagramSource(root, author="jd")} == {"jd"}
    assert {p.author_id for p in InstagramSource(root)} == {"my-export"}


def test_personal_information_wins_and_its_name_is_unmojibaked(tmp_path, make):
    root = make.instagram(tmp_path / "e", username="jöhn")
    assert {p.author_id for p in InstagramSource(root, author="other")} == {"jöhn"}


def test_a_private_account_passes_its_visibility(instagram_export):
    assert {p.visibility for p in InstagramSource(instagram_export, visibility="followers")} == {"followers"}
    with pytest.raises(ValueError, match="visibility"):
        InstagramSource(instagram_export, visibility="friends")


def test_bad_entries_are_rejected_with_their_place(tmp_path, make):
    posts = ["not a post", {"media": [{"title": "no uri", "creation_timestamp": 1}]},
             {"media": [{"uri": "media/posts/x.jpg", "title": "no time"}]},
             {"media": "media/posts/y.jpg", "creation_timestamp": 1}] + make.instagram_posts()[:1]
    items = list(InstagramSource(make.instagram(tmp_path / "e", posts)))
    got = [(i.ref, i.reason, i.author_id) for i in items if isinstance(i, Rejected)]
    assert got == [("your_instagram_activity/content/posts_1.json[0]", "invalid_record", "jane.doe"),
                   ("your_instagram_activity/content/posts_1.json[1]", "invalid_field:media", "jane.doe"),
                   ("your_instagram_activity/content/posts_1.json[2]", "missing_field:created_at", "jane.doe"),
                   ("your_instagram_activity/content/posts_1.json[3]", "invalid_field:media", "jane.doe")]
    assert isinstance(items[4], Post)


def test_an_unreadable_posts_file_or_a_non_export_is_a_source_error(tmp_path, make):
    root = make.instagram(tmp_path / "e", [])
    (root / "your_instagram_activity/content/posts_1.json").write_text("[{")
    with pytest.raises(SourceError, match="not valid JSON"):
        InstagramSource(root)
    make.json(root / "your_instagram_activity/content/posts_1.json", {"ig_posts": []})
    with pytest.raises(SourceError, match="JSON list"):
        InstagramSource(root)
    with pytest.raises(SourceError, match="not an Instagram export"):
        InstagramSource(tmp_path / "e" / "personal_information")


@pytest.mark.parametrize("raw, fixed", [
    ("Caf\u00c3\u00a9 \u00f0\u009f\u0098\u008a", "Café 😊"),
    ("plain ascii #tag", "plain ascii #tag"),
    ("Müller", "Müller"),          # already proper text: does not round-trip, kept
    ("naïve 😊", "naïve 😊"),       # outside latin-1: kept
])
def test_fix_mojibake(raw, fixed):
    assert fix_mojibake(raw) == fixed
