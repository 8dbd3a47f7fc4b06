import pytest

from tagsight.schema.posts import Media, Post
from tagsight.privacy.policy import ConsentPolicy, OptOuts, decide, tag_key


def post(**kw):
    base = dict(post_id="p1", author_id="alice", created_at="2024-01-01T00:00:00Z", visibility="public",
                media=(Media(path="a.jpg"),), source="s")
    return Post(**{**base, **kw})


def test_default_policy_keeps_a_public_post_without_a_consent_choice():
    assert decide(post(), ConsentPolicy()) == []


@pytest.mark.parametrize("vis", ["unlisted", "followers", "private", "direct"])
def test_default_policy_rejects_every_non_public_visibility(vis):
    assert decide(post(visibility=vis), ConsentPolicy()) == [f"visibility_{vis}"]


def test_explicit_refusal_beats_a_permissive_visibility_list():
    policy = ConsentPolicy(allowed_visibility=("public", "unlisted"))
    assert decide(post(consent_ai_training=False), policy) == ["consent_refused"]
    assert decide(post(visibility="unlisted", consent_ai_training=True), policy) == []


def test_opt_in_mode_requires_an_explicit_yes():
    policy = ConsentPolicy(require_opt_in=True)
    assert decide(post(), policy) == ["consent_not_given"]
    assert decide(post(consent_ai_training=True), policy) == []


@pytest.mark.parametrize("tag", ["noai", "NoAI", "#NOAI", "no_ai", "No-AI", "n\u200boai", "ｎｏａｉ", "NoMachineLearning"])
def test_optout_hashtags_match_after_normalisation(tag):
    assert decide(post(hashtags=(tag,)), ConsentPolicy()) == ["optout_hashtag"]


def test_optout_hashtag_in_the_caption_counts_even_when_hashtags_are_given():
    p = post(caption="my cat #NoAI", hashtags=("cat",))
    assert decide(p, ConsentPolicy()) == ["optout_hashtag"]


def test_optout_lists_inline_and_from_files(tmp_path):
    f = tmp_path / "optout.txt"
    f.write_text("# people who left\nbob\nauthor:carol  # by mail\npost:s/p9\n")
    policy = ConsentPolicy(optout_authors=("alice",), optout_files=(str(f),))
    assert decide(post(), policy) == ["author_opted_out"]
    assert decide(post(author_id="bob"), policy) == ["author_opted_out"]
    assert decide(post(author_id="carol"), policy) == ["author_opted_out"]
    assert decide(post(author_id="dan", post_id="p9"), policy) == ["post_opted_out"]
    assert decide(post(author_id="dan"), policy) == []


def test_every_reason_is_reported_in_a_fixed_order():
    policy = ConsentPolicy(optout_authors=("alice",), excluded_regions=("de",))
    p = post(visibility="private", consent_ai_training=False, hashtags=("noai",), region="DE")
    assert decide(p, policy) == ["visibility_private", "consent_refused", "author_opted_out",
                                 "optout_hashtag", "region_excluded"]


def test_policy_from_yaml_resolves_optout_files_relative_to_the_policy(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "out.txt").write_text("zed\n")
    path = tmp_path / "policy.yaml"
    path.write_text("allowed_visibility: [public, unlisted]\noptout_files: [lists/out.txt]\nblur_faces: true\n")
    policy = ConsentPolicy.from_yaml(path)
    assert policy.allowed_visibility == ("public", "unlisted") and policy.blur_faces
    assert policy.optouts.authors == frozenset({"zed"})
    assert policy.to_dict()["optout_authors"] == 1


@pytest.mark.parametrize("text, message", [
    ("allowed_visibility: [public, secret]\n", "unknown values"),
    ("optout_files: [missing.txt]\n", "does not exist"),
    ("colour: blue\n", "unknown policy keys"),
    ("allowed_visibility: public\n", "list of strings"),
])
def test_bad_policy_files_fail_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ConsentPolicy.from_yaml(path)


def test_tag_key_and_optout_union():
    assert tag_key("#No_AI\u200b") == "noai"
    merged = OptOuts(frozenset({"a"})) | OptOuts(frozenset({"b"}), frozenset({"p"}))
    assert merged.authors == {"a", "b"} and merged.posts == {"p"}


@pytest.mark.parametrize("flags", [{"sensitive": True}, {"content_warning": "eye surgery"},
                                   {"sensitive": True, "content_warning": "spiders"}])
def test_sensitive_posts_and_content_warnings_are_excluded_by_default(flags):
    assert decide(post(**flags), ConsentPolicy()) == ["sensitive_content"]


def test_exclude_sensitive_false_keeps_them():
    policy = ConsentPolicy(exclude_sensitive=False)
    assert decide(post(sensitive=True, content_warning="spiders"), policy) == []


def test_exclude_sensitive_comes_from_yaml_and_must_be_a_bool(tmp_path):
    f = tmp_path / "policy.yaml"
    f.write_text("exclude_sensitive: false\n")
    assert ConsentPolicy.from_yaml(f).exclude_sensitive is False
    assert ConsentPolicy().to_dict()["exclude_sensitive"] is True
    with pytest.raises(ValueError, match="exclude_sensitive"):
        ConsentPolicy(exclude_sensitive="no")


def test_sensitive_content_sits_between_optout_hashtag_and_region():
    policy = ConsentPolicy(excluded_regions=("de",))
    p = post(hashtags=("noai",), sensitive=True, region="DE")
    assert decide(p, policy) == ["optout_hashtag", "sensitive_content", "region_excluded"]
