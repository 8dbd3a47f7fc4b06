import json
from pathlib import Path
from typing import Any

import pytest

from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import Rejected, SourceError, open_source, sniff_format
from tagsight.ingest.sources.twitter import ProtectedPeriods, TwitterSource, parse_ytd
from tagsight.privacy.policy import ConsentPolicy
from PIL import Image


def write_image(path: Path, color: tuple[int, int, int] = (200, 80, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), color).save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")


def ytd(name: str, items: list[Any], part: int = 0) -> str:
    """An archive data file as X writes it: a JavaScript assignment of a JSON list."""
    return f"window.YTD.{name}.part{part} = " + json.dumps(items, indent=2)


def tweet(n: int, text: str = "", *, tags: tuple[str, ...] = (), photos: int = 1, **patch: Any) -> dict[str, Any]:
    """One tweet of an invented account, with ``photos`` attached photos (t.co link at the end of the text)."""
    tid = f"15000000000000000{n:02d}"
    media = [{"expanded_url": f"https://x.com/inventedcat/status/{tid}/photo/{k + 1}",
              "indices": ["40", "63"], "url": f"https://t.co/Ab{n}x", "id_str": f"16{n}{k}",
              "media_url": f"http://pbs.twimg.com/media/F{n}k{k}Xyz.jpg",
              "media_url_https": f"https://pbs.twimg.com/media/F{n}k{k}Xyz.jpg", "type": "photo",
              "display_url": "pic.x.com/Ab", "sizes": {"large": {"w": "32", "h": "32", "resize": "fit"}}}
             for k in range(photos)]
    full = text + (f" https://t.co/Ab{n}x" if photos else "")
    t = {"edit_info": {"initial": {"editTweetIds": [tid], "editableUntil": "2022-11-01T10:00:00.000Z",
                                   "editsRemaining": "5", "isEditEligible": True}},
         "retweeted": False, "source": '<a href="https://mobile.x.com" rel="nofollow">X Web App</a>',
         "entities": {"hashtags": [{"text": t, "indices": ["0", "4"]} for t in tags], "symbols": [],
                      "user_mentions": [], "urls": [], **({"media": media[:1]} if photos else {})},
         "display_text_range": ["0", str(len(text))], "favorite_count": str(n), "id_str": tid, "truncated": False,
         "retweet_count": "0", "id": tid, "possibly_sensitive": False,
         "created_at": f"Tue Nov 0{n % 9 + 1} 10:00:00 +0000 2022", "favorited": False, "full_text": full,
         "lang": "en", **({"extended_entities": {"media": media}} if photos else {})}
    t.update(patch)
    return t


def make_archive(root: Path, tweets: list[dict[str, Any]], *, era: str = "2022+", protected: list | None = None,
                 username: str | None = "inventedcat", wrap: bool = True) -> Path:
    """An archive folder: tweets file, account.js, protected-history.js and the photo files."""
    stem, media_dir = {"2022+": ("tweets", "tweets_media"), "2019-2022": ("tweet", "tweet_media")}[era]
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / f"{stem}.js").write_text(ytd(stem, [{"tweet": t} if wrap else t for t in tweets]))
    if username:
        (data / "account.js").write_text(ytd("account", [{"account": {
            "email": "cat@example.com", "createdVia": "web", "username": username, "accountId": "987654321",
            "createdAt": "2015-01-01T00:00:00.000Z", "accountDisplayName": "Invented Cat"}}]))
    if protected is not None:
        (data / "protected-history.js").write_text(ytd("protected_history", [
            {"protectedHistory": {"protectedAt": at, "action": action}} for at, action in protected]))
    for i, t in enumerate(tweets):
        for k, m in enumerate(t.get("extended_entities", {}).get("media", [])):
            if not m.get("source_status_id_str"):
                write_image(data / media_dir / f"{t['id_str']}-{m['media_url_https'].rsplit('/', 1)[-1]}",
                            (30 * i % 256, 90 * k % 256, 200 - 10 * i))
    (root / "Your archive.html").write_text("<html><body>Your archive</body></html>")
    return root


def standard(root: Path, **kw: Any) -> Path:
    return make_archive(root, [
        tweet(1, "Morning light &amp; coffee #Sunrise #café", tags=("Sunrise", "café")),
        tweet(2, "RT @someone: their photo #nice", tags=("nice",)),
        tweet(3, "@friend look at this, #notatag in text only", photos=2,
              in_reply_to_status_id_str="1499999999999999999", in_reply_to_screen_name="friend"),
        tweet(4, "just words", photos=0),
    ], **kw)


def test_an_archive_yields_the_accounts_tweets_with_photos_and_entity_hashtags(tmp_path):
    root = standard(tmp_path / "twitter-2022-11-30", protected=[])
    src = TwitterSource(root)
    first, rt, reply, words = src
    assert src.era == "2022+" and first.source == "twitter-2022-11-30"
    assert (first.post_id, first.author_id, first.created_at) == ("1500000000000000001", "inventedcat",
                                                                   "2022-11-02T10:00:00Z")
    assert first.caption == "Morning light & coffee #Sunrise #café" and first.hashtags == ("Sunrise", "café")
    assert first.media == (Media(path="data/tweets_media/1500000000000000001-F1k0Xyz.jpg"),)
    assert (root / first.media[0].path).is_file() and first.likes == 1 and first.visibility == "public"
    assert isinstance(rt, Rejected) and (rt.reason, rt.post_id, rt.author_id) == (
        "not_authored", "1500000000000000002", "inventedcat")
    assert isinstance(reply, Post) and reply.hashtags == () and len(reply.media) == 2  # #notatag: not an entity
    assert reply.extra["in_reply_to"] == "1499999999999999999" and "t.co" not in reply.caption
    assert isinstance(words, Post) and words.media == () and words.caption == "just words"


def test_old_era_archive_without_the_tweet_wrapper_is_read(tmp_path):
    root = make_archive(tmp_path / "a", [tweet(1, "old #one", tags=("one",))], era="2019-2022", wrap=False,
                        protected=[])
    (post,) = TwitterSource(root)
    assert post.media[0].path == "data/tweet_media/1500000000000000001-F1k0Xyz.jpg" and post.hashtags == ("one",)
    assert (root / post.media[0].path).is_file()


def test_part_files_are_read_in_order(tmp_path):
    root = make_archive(tmp_path / "a", [tweet(1, "a")], protected=[])
    (root / "data/tweets-part2.js").write_text(ytd("tweets", [{"tweet": tweet(3, "c", photos=0)}], 2))
    (root / "data/tweets-part1.js").write_text(ytd("tweets", [{"tweet": tweet(2, "b", photos=0)}], 1))
    assert [p.caption for p in TwitterSource(root)] == ["a", "b", "c"]


def test_protected_account_keeps_no_post_under_the_default_policy(tmp_path):
    root = standard(tmp_path / "a", protected=[("2021-01-01T00:00:00.000Z", "Protect")])
    posts = [p for p in TwitterSource(root, visibility="public") if isinstance(p, Post)]
    assert {p.visibility for p in posts} == {"followers"}
    summary = ingest(TwitterSource(root), tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.posts_kept == 0 and summary.posts_in == 4 and summary.reconciles()
    assert summary.post_reasons == {"visibility_followers": 3, "not_authored": 1}


def test_only_tweets_of_protected_periods_are_followers_only(tmp_path):
    history = [("2022-11-03T00:00:00.000Z", "Protect"), ("2022-11-04T12:00:00.000Z", "Unprotect")]
    root = standard(tmp_path / "a", protected=history)
    vis = {p.post_id[-1]: p.visibility for p in TwitterSource(root) if isinstance(p, Post)}
    assert vis == {"1": "public", "3": "followers", "4": "public"}  # tweet 3: Nov 4 10:00, inside the period


def test_without_protected_history_tweets_are_followers_unless_told(tmp_path, caplog):
    root = standard(tmp_path / "a", protected=None)
    assert {p.visibility for p in TwitterSource(root) if isinstance(p, Post)} == {"followers"}
    assert "protected-history" in caplog.text
    assert {p.visibility for p in TwitterSource(root, visibility="public") if isinstance(p, Post)} == {"public"}
    with pytest.raises(ValueError, match="visibility"):
        TwitterSource(root, visibility="everyone")


def test_protected_periods():
    periods = ProtectedPeriods([
        {"protectedHistory": {"protectedAt": "2020-01-01T00:00:00.000Z", "action": "Protect"}},
        {"protectedHistory": {"protectedAt": "2020-06-01T00:00:00.000Z", "action": "Unprotect"}}, "junk"])
    assert not periods.now
    assert periods.covers("2020-03-01T00:00:00+00:00") and not periods.covers("2021-01-01T00:00:00+00:00")
    assert not periods.covers("2019-01-01T00:00:00+00:00")
    assert ProtectedPeriods([{"protectedHistory": {"protectedAt": "2020-01-01T00:00:00Z", "action": "Protect"}}]).now


def test_media_of_another_tweet_and_videos(tmp_path):
    video = {"url": "https://t.co/v", "media_url_https": "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/T.jpg",
             "type": "video", "video_info": {"variants": [
                 {"bitrate": "256000", "content_type": "video/mp4", "url": "https://video.twimg.com/low.mp4?tag=12"},
                 {"bitrate": "2176000", "content_type": "video/mp4", "url": "https://video.twimg.com/high.mp4?tag=12"},
                 {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/pl.m3u8"}]}}
    t = tweet(1, "mixed")
    foreign = dict(t["extended_entities"]["media"][0], source_status_id_str="42", media_url_https="https://p/o.jpg")
    t["extended_entities"]["media"] += [foreign, video]
    (post,) = TwitterSource(make_archive(tmp_path / "a", [t], protected=[]))
    assert [m.path.rsplit("/", 1)[-1] for m in post.media] == ["1500000000000000001-F1k0Xyz.jpg",
                                                               "1500000000000000001-high.mp4"]
    assert post.extra["dropped_media"] == 1


def test_bad_entries_are_rejected_with_their_place(tmp_path):
    root = make_archive(tmp_path / "a", [tweet(1, "ok")], protected=[])
    (root / "data/tweets.js").write_text(ytd("tweets", [
        {"tweet": tweet(1, "ok")}, "junk", {"tweet": tweet(2, "x", created_at="yesterday")},
        {"tweet": tweet(3, "y", id_str=None, id=None)}]))
    got = [(i.ref, i.reason) for i in TwitterSource(root) if isinstance(i, Rejected)]
    assert got == [("data/tweets.js[1]", "invalid_record"), ("data/tweets.js[2]", "invalid_field:created_at"),
                   ("data/tweets.js[3]", "missing_field:post_id")]


def test_grailbird_archive_is_recognised_and_refused(tmp_path):
    root = tmp_path / "tweets-2016"
    (root / "data/js/tweets").mkdir(parents=True)
    (root / "data/js/tweets/2016_01.js").write_text('Grailbird.data.tweets_2016_01 = [ ]')
    (root / "tweets.csv").write_text('"tweet_id","text"\n')
    (root / "img").mkdir()
    write_image(root / "img/bg.png")
    assert sniff_format(root) == "twitter"  # not mistaken for an image folder
    with pytest.raises(SourceError, match="before 2019.*new archive"):
        open_source(root)


def test_unreadable_tweets_file_and_non_archives(tmp_path):
    root = make_archive(tmp_path / "a", [tweet(1, "x")], protected=[])
    (root / "data/tweets.js").write_text("var tweets = []")
    with pytest.raises(SourceError, match="window.YTD"):
        TwitterSource(root)
    (root / "data/tweets.js").write_text("window.YTD.tweets.part0 = [{")
    with pytest.raises(SourceError, match="valid JSON"):
        TwitterSource(root)
    with pytest.raises(SourceError, match="not an X/Twitter archive"):
        TwitterSource(root / "data")
    assert not TwitterSource.sniff(root / "data/account.js") and not TwitterSource.sniff(tmp_path / "missing")
    assert parse_ytd(b"\xef\xbb\xbfwindow.YTD.x.part0 = [1];\n", "x.js") == [1]


@pytest.mark.parametrize("era", ["2022+", "2019-2022"])
def test_archive_is_sniffed_and_ingested_with_counts_that_reconcile(tmp_path, era):
    root = standard(tmp_path / "a", protected=[], era=era)
    assert sniff_format(root) == "twitter"
    summary = ingest(open_source(root), tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.reconciles() and summary.posts_in == 4
    assert summary.posts_kept == 2 and summary.post_reasons == {"not_authored": 1, "no_media": 1}
    assert summary.media_kept == 3


def test_the_downloaded_zip_is_read_in_place(tmp_path):
    from tests.ingest.archives import zip_folder

    root = standard(tmp_path / "a", protected=[])
    out = zip_folder(root, tmp_path / "twitter-2022-11-30-abc.zip")
    assert sniff_format(out) == "twitter"
    src = open_source(out)
    assert src.name == "twitter-2022-11-30-abc"
    summary = ingest(src, tmp_path / "ds", ConsentPolicy(), IngestConfig(workers=1))
    assert summary.reconciles() and (summary.posts_in, summary.posts_kept, summary.media_kept) == (4, 2, 3)


def test_describe_names_the_era_and_the_protection(tmp_path):
    d = TwitterSource(standard(tmp_path / "a", protected=[("2021-01-01T00:00:00.000Z", "Protect")])).describe()
    assert d["format"] == "twitter" and d["era"] == "2022+" and d["account"] == "inventedcat"
    assert "protected now" in d["visibility"]


def manifest(files: list[tuple[str, str]], media: str = "data/tweets_media") -> str:
    """``data/manifest.js`` as the archive writes it (``window.__THAR_CONFIG``), listing the tweets files."""
    return "window.__THAR_CONFIG = " + json.dumps({
        "userInfo": {"accountId": "987654321", "userName": "inventedcat", "displayName": "Invented Cat"},
        "archiveInfo": {"sizeBytes": "1000", "generationDate": "2024-04-08T15:59:18.409Z", "isPartialArchive": False},
        "dataTypes": {"account": {"files": [{"fileName": "data/account.js", "globalName": "YTD.account.part0",
                                             "count": "1"}]},
                      "tweets": {"mediaDirectory": media, "files": [
                          {"fileName": name, "globalName": f"YTD.tweets.part{i}", "count": count}
                          for i, (name, count) in enumerate(files)]}}}, indent=2)


def test_the_manifest_lists_the_tweets_files_and_their_counts(tmp_path, caplog):
    root = make_archive(tmp_path / "a", [tweet(1, "a")], protected=[])
    (root / "data/tweets-part1.js").write_text(ytd("tweets", [{"tweet": tweet(2, "b", photos=0)}], 1))
    (root / "data/tweets-part7.js").write_text(ytd("tweets", [{"tweet": tweet(3, "not listed", photos=0)}], 7))
    (root / "data/manifest.js").write_text(manifest([("data/tweets.js", "1"), ("data/tweets-part1.js", "2")]))
    assert [p.caption for p in TwitterSource(root)] == ["a", "b"]
    assert "tweets-part1.js holds 1 entries where data/manifest.js says 2" in caplog.text


def test_a_broken_manifest_falls_back_to_the_file_names(tmp_path, caplog):
    root = make_archive(tmp_path / "a", [tweet(1, "a")], protected=[])
    (root / "data/manifest.js").write_text("window.__THAR_CONFIG = {")
    (post,) = TwitterSource(root)
    assert post.media[0].path.startswith("data/tweets_media/") and "finding the tweets files by name" in caplog.text
