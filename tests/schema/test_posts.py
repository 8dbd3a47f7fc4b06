import pytest

from tagsight.schema.posts import MAX_HASHTAGS, Media, Post, SchemaError, normalize_timestamp
from tagsight.schema.text import fold_hashtag, parse_hashtags

GOOD = {"post_id": "1", "author_id": "a", "created_at": "2024-05-01T10:00:00+02:00", "visibility": "public",
        "caption": "Sunset at the beach #Beach #sunset!", "media": [{"path": "m/1.jpg", "alt_text": "sea"}],
        "consent": {"ai_training": True}, "region": "FR", "license": "CC-BY-4.0", "likes": 3}


def test_a_full_record_round_trips():
    p = Post.from_dict(GOOD, source="feed")
    assert p.key == "feed/1" and p.created_at == "2024-05-01T08:00:00Z"
    assert p.hashtags == ("Beach", "sunset") and p.media == (Media(path="m/1.jpg", alt_text="sea"),)
    again = Post.from_dict(p.to_dict(), source="feed")
    assert again == p


def test_given_hashtags_win_over_the_caption_and_lose_their_hash_sign():
    p = Post.from_dict({**GOOD, "hashtags": ["#Cat", "dog"]})
    assert p.hashtags == ("Cat", "dog")


@pytest.mark.parametrize("field", ["post_id", "author_id", "created_at", "visibility"])
def test_missing_required_fields_have_their_own_reason(field):
    d = dict(GOOD)
    del d[field]
    with pytest.raises(SchemaError) as e:
        Post.from_dict(d)
    assert e.value.reason == f"missing_field:{field}"


@pytest.mark.parametrize("patch, reason", [
    ({"visibility": "secret"}, "invalid_field:visibility"),
    ({"created_at": "yesterday"}, "invalid_field:created_at"),
    ({"hashtags": "cat"}, "invalid_field:hashtags"),
    ({"media": [{"path": 3}]}, "invalid_field:media"),
    ({"media": [{"alt_text": "x"}]}, "invalid_field:media"),
    ({"media": [{"path": "a", "sha256": "zz"}]}, "invalid_field:media.sha256"),
    ({"consent": {"ai_training": "yes"}}, "invalid_field:consent"),
    ({"likes": -1}, "invalid_field:likes"),
    ({"post_id": True}, "invalid_field:post_id"),
    ({"hashtags": ["t"] * (MAX_HASHTAGS + 1)}, "too_many_hashtags"),
])
def test_invalid_values_are_rejected_with_a_specific_reason(patch, reason):
    with pytest.raises(SchemaError) as e:
        Post.from_dict({**GOOD, **patch})
    assert e.value.reason == reason


def test_timestamps_accept_unix_seconds_and_naive_iso_as_utc():
    assert normalize_timestamp(0) == "1970-01-01T00:00:00Z"
    assert normalize_timestamp("2024-01-02T03:04:05") == "2024-01-02T03:04:05Z"


def test_caption_hashtags_as_written():
    caption = "Hi #Brown\u200bBear, #café! #🐶dog ##double #end."
    assert parse_hashtags(caption) == ["Brown\u200bBear", "café", "🐶dog", "double", "end"]
    assert parse_hashtags("no tags # here") == []


def test_fold_hashtag_normalises_for_comparison():
    assert fold_hashtag("#ＮｏＡＩ\u200f") == "noai"
    assert fold_hashtag("Straße") == "strasse"


def test_sensitive_and_content_warning_are_carried_and_round_trip():
    p = Post.from_dict({**GOOD, "sensitive": True, "content_warning": "spiders"}, source="feed")
    assert p.sensitive is True and p.content_warning == "spiders"
    assert Post.from_dict(p.to_dict(), source="feed") == p
    plain = Post.from_dict(GOOD)
    assert plain.sensitive is False and plain.content_warning is None


def test_a_blank_content_warning_is_no_warning():
    assert Post.from_dict({**GOOD, "content_warning": "  "}).content_warning is None


@pytest.mark.parametrize("patch, reason", [
    ({"sensitive": "yes"}, "invalid_field:sensitive"),
    ({"sensitive": 1}, "invalid_field:sensitive"),
    ({"content_warning": 3}, "invalid_field:content_warning"),
    ({"content_warning": "x" * 70_000}, "invalid_field:content_warning"),
])
def test_invalid_sensitive_fields_have_their_own_reason(patch, reason):
    with pytest.raises(SchemaError) as e:
        Post.from_dict({**GOOD, **patch})
    assert e.value.reason == reason


def test_the_post_constructor_validates_sensitive_too():
    with pytest.raises(SchemaError, match="sensitive"):
        Post(post_id="1", author_id="a", created_at=0, visibility="public", sensitive="no")
