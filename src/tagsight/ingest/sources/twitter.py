"""An X/Twitter account archive ("Download an archive of your data"): the account's own tweets and photos."""

from __future__ import annotations

import bisect
import datetime as dt
import html
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterator, TypeVar

from tagsight.ingest.sources.base import SOURCES, Item, Rejected, Source, SourceError, check_visibility
from tagsight.ingest.sources.instagram import MAX_JSON_BYTES
from tagsight.ingest.sources.jsonl import record_to_item
from tagsight.ingest.tree import Tree, sniff_tree

log = logging.getLogger(__name__)
J = TypeVar("J")   # the JSON type a .js file must hold (list or dict)

# era -> (tweets file stem in data/, media folder in data/)
ERAS = {"2022+": ("tweets", "data/tweets_media"), "2019-2022": ("tweet", "data/tweet_media")}
MANIFEST = "data/manifest.js"
GRAILBIRD_MARKERS = ("data/js/tweet_index.js", "data/js/user_details.js")
_GRAILBIRD_MONTH = re.compile(r"data/js/tweets/\d{4}_\d{2}\.js")
_YTD_PREFIX = re.compile(r"^\s*window\.YTD\.[A-Za-z0-9_]+\.part\d+\s*=\s*")
_MANIFEST_PREFIX = re.compile(r"^\s*window\.__THAR_CONFIG\s*=\s*")
_TWEETS_PART = re.compile(r"-part(\d+)\.js$")
_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"


def tweet_era(tree: Tree) -> str | None:
    """``2022+``, ``2019-2022``, ``before-2019`` (Grailbird) or None when this is not a Twitter archive."""
    for era, (stem, _) in ERAS.items():
        if tree.is_file(f"data/{stem}.js"):
            return era
    if any(tree.is_file(p) for p in GRAILBIRD_MARKERS) or (
            any(_GRAILBIRD_MONTH.fullmatch(f"data/js/tweets/{name}") for name in tree.listdir("data/js/tweets"))):
        return "before-2019"
    return None


def parse_js(data: bytes, rel: str, prefix: re.Pattern[str], what: str, kind: type[J]) -> J:
    """The JSON value assigned in an archive ``.js`` file (``<what> = <JSON>``); SourceError when it is not one."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{rel} is not UTF-8: {exc}") from None
    match = prefix.match(text)
    if not match:
        raise SourceError(f"{rel} does not start with '{what} =': not an archive data file")
    try:
        value = json.loads(text[match.end():].rstrip().rstrip(";"))
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{rel} does not hold valid JSON after its '{what} =': {exc}") from None
    if not isinstance(value, kind):
        raise SourceError(f"{rel} should hold a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def parse_ytd(data: bytes, rel: str) -> list[Any]:
    """The JSON list of a ``window.YTD.<name>.partN = [...]`` file; SourceError when it is not one."""
    return parse_js(data, rel, _YTD_PREFIX, "window.YTD.<name>.partN", list)


def manifest_tweets(manifest: dict[str, Any], stem: str) -> tuple[list[tuple[str, int | None]], str | None]:
    """``([(tweets file, count it declares)], media folder)`` from ``data/manifest.js``; empty when absent."""
    entry = (manifest.get("dataTypes") or {}).get(stem) if isinstance(manifest.get("dataTypes"), dict) else None
    if not isinstance(entry, dict):
        return [], None
    files = []
    listed = entry.get("files")
    for f in listed if isinstance(listed, list) else []:
        name, count = (f.get("fileName"), f.get("count")) if isinstance(f, dict) else (None, None)
        if isinstance(name, str) and name.endswith(".js"):
            files.append((name.removeprefix("./"), int(count) if isinstance(count, str) and count.isdigit() else None))
    media = entry.get("mediaDirectory")
    return files, media.strip("/") if isinstance(media, str) and media.strip("/") else None


def twitter_time(value: Any) -> Any:
    """``Wed Oct 10 20:19:24 +0000 2018`` as ISO 8601; anything else unchanged (the schema judges it)."""
    if isinstance(value, str):
        try:
            return dt.datetime.strptime(value, _TIME_FORMAT).isoformat()
        except ValueError:
            return value
    return value


class ProtectedPeriods:
    """When the account was protected, from ``protected-history.js`` (``Protect``/``Unprotect`` actions)."""

    def __init__(self, entries: list[Any]) -> None:
        changes = []
        for entry in entries:
            rec = entry.get("protectedHistory") if isinstance(entry, dict) else None
            if isinstance(rec, dict) and isinstance(rec.get("protectedAt"), str) and isinstance(rec.get("action"), str):
                try:
                    at = dt.datetime.fromisoformat(rec["protectedAt"].replace("Z", "+00:00"))
                except ValueError:
                    log.warning("protected-history: cannot read the time %r; treating the account as protected",
                                rec["protectedAt"])
                    at = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
                changes.append((_utc(at), rec["action"].lower() == "protect"))
        changes.sort()
        self.times = [t for t, _ in changes]
        self.states = [s for _, s in changes]

    @property
    def now(self) -> bool:
        """Protected today (the last action was Protect)."""
        return bool(self.states) and self.states[-1]

    def covers(self, iso_time: str) -> bool:
        """True when a tweet made at ``iso_time`` is followers-only: protected then or now."""
        if self.now:
            return True
        try:
            at = _utc(dt.datetime.fromisoformat(iso_time))
        except (TypeError, ValueError):
            return bool(self.states)  # unknown time and some protected period: the safe answer
        i = bisect.bisect_right(self.times, at)
        return i > 0 and self.states[i - 1]


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def is_retweet(tweet: dict[str, Any]) -> bool:
    text = tweet.get("full_text", tweet.get("text"))
    return "retweeted_status" in tweet or (isinstance(text, str) and text.startswith("RT @"))


def tweet_caption(tweet: dict[str, Any]) -> Any:
    """``full_text`` with entities unescaped and the t.co links of attached media removed."""
    text = tweet.get("full_text", tweet.get("text", ""))
    if not isinstance(text, str):
        return text  # the schema rejects it with invalid_field:caption
    for m in _media_entries(tweet, "entities") + _media_entries(tweet, "extended_entities"):
        if isinstance(m.get("url"), str) and m["url"]:
            text = text.replace(m["url"], "")
    return re.sub(r"[ \t]+\n", "\n", html.unescape(text)).strip()


def tweet_hashtags(tweet: dict[str, Any]) -> list[Any]:
    """``entities.hashtags[].text`` (never parsed from the text: the archive lists them)."""
    entities = tweet.get("entities")
    tags = entities.get("hashtags") if isinstance(entities, dict) else None
    return [t.get("text") for t in tags if isinstance(t, dict)] if isinstance(tags, list) else []


def _media_entries(tweet: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entities = tweet.get(key)
    media = entities.get("media") if isinstance(entities, dict) else None
    return [m for m in media if isinstance(m, dict)] if isinstance(media, list) else []


def media_file_name(m: dict[str, Any]) -> str | None:
    """The file name part after ``<tweet id>-`` in the media folder: photo URL basename, or the video's."""
    url = m.get("media_url_https") or m.get("media_url")
    if m.get("type") in ("video", "animated_gif"):
        variants = (m.get("video_info") or {}).get("variants") if isinstance(m.get("video_info"), dict) else None
        best = max((v for v in variants or [] if isinstance(v, dict) and isinstance(v.get("url"), str)
                    and v.get("content_type") == "video/mp4"), key=lambda v: int(v.get("bitrate") or 0), default=None)
        url = best["url"] if best else url
    if not isinstance(url, str) or not url:
        return None
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None


@SOURCES.register("twitter")
class TwitterSource(Source):
    """Tweets with their photos from an X/Twitter archive, a folder or the downloaded ``.zip``.

    * Eras: ``2022+`` (``data/tweets.js``, ``tweets-part1.js``..., media in ``data/tweets_media/``) and
      ``2019-2022`` (``data/tweet.js``, ``data/tweet_media/``; entries with or without the ``{"tweet": ...}``
      wrapper). When ``data/manifest.js`` lists the tweets files and media folder, that list is read and each
      file's declared count checked (a mismatch is logged). The Grailbird archive of before 2019
      (``data/js/tweets/YYYY_MM.js``) is recognised and refused: it holds no photos; request a new archive.
    * ``post_id`` = ``id_str``; ``author_id`` = ``account.js`` ``username``, else ``author``, else the folder
      name; ``created_at`` from ``created_at``; ``likes`` = ``favorite_count``.
    * Caption = ``full_text`` with HTML entities unescaped and the t.co links of its media removed; hashtags
      from ``entities.hashtags[].text`` only.
    * Media = ``extended_entities.media[]`` (else ``entities.media[]``): ``data/<media folder>/<id_str>-<file>``
      where ``<file>`` is the basename of ``media_url_https`` (of the best mp4 variant for videos, which the
      pipeline then rejects as not an image). Media whose ``source_status_id_str`` names another tweet belong
      to someone else's post and are left out (counted in ``extra["dropped_media"]``).
    * Retweets (``retweeted_status``, or text starting ``RT @``) are Rejected ``not_authored``; replies are kept.
    * Visibility: ``followers`` for tweets made while the account was protected, and for every tweet when the
      account is protected now (``protected-history.js``); otherwise ``visibility`` when given, else
      ``public`` when the archive holds ``protected-history.js`` and ``followers`` when it does not (it then
      cannot tell). Deleted tweets (``deleted-tweets.js``), note tweets, community tweets and direct messages
      are not read.
    """

    format = "twitter"
    user_options = ("author", "visibility")

    def __init__(self, path: str | Path, *, name: str | None = None, author: str | None = None,
                 visibility: str | None = None) -> None:
        super().__init__(path, name=name)
        check_visibility(visibility)
        era = tweet_era(self.tree)
        if era is None:
            raise SourceError(f"{self.path} is not an X/Twitter archive (no data/tweets.js or data/tweet.js)")
        self.era: str = era
        if self.era == "before-2019":
            raise SourceError(f"{self.path} is an X/Twitter archive from before 2019 (Grailbird: data/js/tweets/"
                              "YYYY_MM.js), which tagsight does not read: it does not include the photos. "
                              "Request a new archive (Settings > Your account > Download an archive of your data)")
        self.author = self._username() or author or self.name
        self.protected, self.default_visibility = self._visibility_rules(visibility)
        self.media_folder, self.files = self._tweets()

    @classmethod
    def sniff(cls, path: Path) -> bool:
        tree = sniff_tree(Path(path))
        try:
            return tree is not None and tweet_era(tree) is not None
        except (OSError, SourceError):
            return False

    def describe(self) -> dict[str, str]:
        protected = "protected now" if self.protected.now else (
            "protected at times" if self.protected.states else "never protected")
        return {**super().describe(), "export": "X/Twitter archive", "era": self.era, "account": self.author,
                "visibility": f"{self.default_visibility}, followers while protected ({protected})",
                "files": ", ".join(rel for rel, _ in self.files)}

    # ------------------------------------------------------------------ reading the archive
    def _is_file(self, rel: str) -> bool:
        return self.tree.is_file(rel)

    def _read(self, rel: str) -> bytes:
        try:
            return self.tree.read_bytes(rel, MAX_JSON_BYTES)
        except (OSError, SourceError) as exc:
            raise SourceError(f"cannot read {rel} in {self.path}: {exc}") from None

    def _tweets(self) -> tuple[str, list[tuple[str, list[Any]]]]:
        """The media folder and the tweets files with their entries: as ``data/manifest.js`` lists them
        (counts checked), else ``data/<stem>.js`` and its ``-partN.js`` files."""
        stem, media = ERAS[self.era]
        listed, listed_media = manifest_tweets(self._manifest(), stem)
        listed = [(rel, count) for rel, count in listed if self._is_file(rel)]
        files = []
        for rel, count in listed or [(rel, None) for rel in self._tweet_files(stem)]:
            items = parse_ytd(self._read(rel), rel)
            if count is not None and count != len(items):
                log.warning("%s holds %d entries where data/manifest.js says %d: the archive may be incomplete",
                            rel, len(items), count)
            files.append((rel, items))
        return (listed_media if listed_media and self.tree.is_dir(listed_media) else media), files

    def _manifest(self) -> dict[str, Any]:
        if not self._is_file(MANIFEST):
            return {}
        try:
            return parse_js(self._read(MANIFEST), MANIFEST, _MANIFEST_PREFIX, "window.__THAR_CONFIG", dict)
        except SourceError as exc:
            log.warning("%s; finding the tweets files by name", exc)
            return {}

    def _tweet_files(self, stem: str) -> list[str]:
        parts = [(int(m.group(1)), f"data/{name}") for name in self.tree.listdir("data")
                 if (m := _TWEETS_PART.search(name)) and name == f"{stem}-part{m.group(1)}.js"]
        return [f"data/{stem}.js"] + [rel for _, rel in sorted(parts)]

    def _optional(self, rel: str) -> list[Any] | None:
        if not self._is_file(rel):
            return None
        try:
            return parse_ytd(self._read(rel), rel)
        except SourceError as exc:
            log.warning("%s", exc)
            return None

    def _username(self) -> str | None:
        for entry in self._optional("data/account.js") or []:
            account = entry.get("account") if isinstance(entry, dict) else None
            name = account.get("username") if isinstance(account, dict) else None
            if isinstance(name, str) and name.strip():
                return name
        return None

    def _visibility_rules(self, visibility: str | None) -> tuple[ProtectedPeriods, str]:
        history = self._optional("data/protected-history.js")
        if history is None and visibility is None:
            log.warning("%s: no readable data/protected-history.js, so the archive does not say whether the "
                        "account was protected; tweets are marked 'followers' (pass visibility='public' to "
                        "state that the account was public)", self.path)
        return ProtectedPeriods(history or []), visibility or ("public" if history is not None else "followers")

    # ------------------------------------------------------------------ tweets
    def __iter__(self) -> Iterator[Item]:
        for rel, items in self.files:
            for i, entry in enumerate(items):
                yield self._item(entry, f"{rel}[{i}]")

    def _item(self, entry: Any, ref: str) -> Item:
        tweet = entry.get("tweet", entry) if isinstance(entry, dict) else entry
        if not isinstance(tweet, dict):
            return Rejected(ref, "invalid_record", f"a tweet must be a JSON object, got {type(tweet).__name__}",
                            author_id=self.author)
        tweet_id = tweet.get("id_str", tweet.get("id"))
        tweet_id = str(tweet_id) if isinstance(tweet_id, (str, int)) and not isinstance(tweet_id, bool) else None
        if is_retweet(tweet):
            return Rejected(ref, "not_authored", "a retweet of another account's post is not the author's own post",
                            tweet_id, self.author)
        media, dropped = self._media(tweet, tweet_id or "")
        created = twitter_time(tweet.get("created_at"))
        record = {"post_id": tweet_id, "author_id": self.author, "created_at": created,
                  "visibility": "followers" if self.protected.covers(str(created)) else self.default_visibility,
                  "caption": tweet_caption(tweet), "hashtags": tweet_hashtags(tweet), "media": media,
                  "likes": _count(tweet.get("favorite_count"))}
        extra = {k: v for k, v in (("dropped_media", dropped),
                                   ("in_reply_to", tweet.get("in_reply_to_status_id_str"))) if v}
        return record_to_item(record, ref, self.name, extra or None)

    def _media(self, tweet: dict[str, Any], tweet_id: str) -> tuple[list[dict[str, str]], int]:
        entries = _media_entries(tweet, "extended_entities") or _media_entries(tweet, "entities")
        media, dropped = [], 0
        for m in entries:
            source = m.get("source_status_id_str")
            name = media_file_name(m)
            if (source and str(source) != tweet_id) or name is None:
                dropped += 1
                continue
            media.append({"path": f"{self.media_folder}/{tweet_id}-{name}"})
        return media, dropped


def _count(value: Any) -> int | None:
    """``favorite_count`` ("3" in archives) as an int, None when absent or not a count."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
