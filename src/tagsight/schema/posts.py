"""The post record: one typed, validated type that every source adapter produces."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from tagsight.fsio import ReasonError
from tagsight.schema.text import parse_hashtags

VISIBILITIES = ("public", "unlisted", "followers", "private", "direct")
MAX_HASHTAGS = 512
MAX_FIELD_CHARS = 65_536


class SchemaError(ReasonError):
    """A record that cannot become a Post; ``reason`` is a stable code, the message says why."""


@dataclass(frozen=True)
class Media:
    """One image of a post: a path relative to the source root, or a URL."""

    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    alt_text: str | None = None

    def __post_init__(self) -> None:
        if not (self.path or self.url):
            raise SchemaError("invalid_field:media", "a media item needs a path or a url")
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
            raise SchemaError("invalid_field:media.sha256", f"sha256 {self.sha256!r} is not 64 hex digits")


@dataclass(frozen=True)
class Post:
    """A post as in design.md. ``source`` + ``post_id`` is the catalog key."""

    post_id: str
    author_id: str
    created_at: str
    visibility: str
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    media: tuple[Media, ...] = ()
    consent_ai_training: bool | None = None
    region: str | None = None
    license: str | None = None
    likes: int | None = None
    sensitive: bool = False
    content_warning: str | None = None
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("post_id", "author_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise SchemaError(f"missing_field:{name}", f"{name} must be a non-empty string")
        if self.visibility not in VISIBILITIES:
            raise SchemaError("invalid_field:visibility", f"visibility {self.visibility!r} is not one of {VISIBILITIES}")
        if len(self.caption) > MAX_FIELD_CHARS:
            raise SchemaError("invalid_field:caption", f"caption has {len(self.caption)} characters (max {MAX_FIELD_CHARS})")
        if len(self.hashtags) > MAX_HASHTAGS:
            raise SchemaError("too_many_hashtags", f"{len(self.hashtags)} hashtags (max {MAX_HASHTAGS})")
        if self.likes is not None and (not isinstance(self.likes, int) or self.likes < 0):
            raise SchemaError("invalid_field:likes", f"likes {self.likes!r} is not a non-negative integer")
        if not isinstance(self.sensitive, bool):
            raise SchemaError("invalid_field:sensitive", f"sensitive {self.sensitive!r} is not true or false")
        self._check_content_warning()
        object.__setattr__(self, "created_at", normalize_timestamp(self.created_at))

    def _check_content_warning(self) -> None:
        """A content warning is a non-blank string of bounded length, or None (blank becomes None)."""
        cw = self.content_warning
        if cw is None:
            return
        if not isinstance(cw, str):
            raise SchemaError("invalid_field:content_warning", f"content_warning {cw!r} is not a string")
        if len(cw) > MAX_FIELD_CHARS:
            raise SchemaError("invalid_field:content_warning",
                              f"content_warning has {len(cw)} characters (max {MAX_FIELD_CHARS})")
        if not cw.strip():
            object.__setattr__(self, "content_warning", None)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.post_id}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["hashtags"] = list(self.hashtags)
        d["media"] = [asdict(m) for m in self.media]
        d["consent"] = {"ai_training": d.pop("consent_ai_training")}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "", extra: Mapping[str, Any] | None = None) -> "Post":
        """Validate a mapping in our JSONL schema; raises SchemaError with a reason code."""
        if not isinstance(d, Mapping):
            raise SchemaError("invalid_record", f"a post must be a JSON object, got {type(d).__name__}")
        for name in ("post_id", "author_id", "created_at", "visibility"):
            if d.get(name) in (None, ""):
                raise SchemaError(f"missing_field:{name}", f"required field {name!r} is missing")
        caption = _opt_str(d, "caption") or ""
        hashtags = d.get("hashtags")
        if hashtags is None:
            hashtags = parse_hashtags(caption)
        elif not isinstance(hashtags, list) or not all(isinstance(t, str) for t in hashtags):
            raise SchemaError("invalid_field:hashtags", "hashtags must be a list of strings")
        hashtags = [t.lstrip("#＃") for t in hashtags]
        return cls(
            post_id=_id_str(d, "post_id"),
            author_id=_id_str(d, "author_id"),
            created_at=d["created_at"],
            visibility=str(d["visibility"]).lower(),
            caption=caption,
            hashtags=tuple(hashtags),
            media=tuple(_media(m) for m in _list(d, "media")),
            consent_ai_training=_consent(d.get("consent")),
            region=_opt_str(d, "region"),
            license=_opt_str(d, "license"),
            likes=_likes(d.get("likes")),
            sensitive=_sensitive(d.get("sensitive")),
            content_warning=_opt_str(d, "content_warning"),
            source=source,
            extra=dict(extra or {}),
        )


def normalize_timestamp(value: Any) -> str:
    """ISO 8601 string in UTC (``...Z``); accepts ISO strings and Unix seconds."""
    if isinstance(value, bool):
        raise SchemaError("invalid_field:created_at", f"created_at {value!r} is not a time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise SchemaError("invalid_field:created_at", f"created_at {value!r} is not finite")
        try:
            t = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise SchemaError("invalid_field:created_at", f"created_at {value!r} is out of range") from None
    elif isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SchemaError("invalid_field:created_at", f"created_at {value!r} is not ISO 8601") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
    else:
        raise SchemaError("invalid_field:created_at", f"created_at {value!r} is not a time")
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def _id_str(d: Mapping[str, Any], name: str) -> str:
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SchemaError(f"invalid_field:{name}", f"{name} must be a string or an integer")
    return str(value)


def _opt_str(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise SchemaError(f"invalid_field:{name}", f"{name} must be a string")
    return value


def _list(d: Mapping[str, Any], name: str) -> list[Any]:
    value = d.get(name) or []
    if not isinstance(value, list):
        raise SchemaError(f"invalid_field:{name}", f"{name} must be a list")
    return value


def _media(m: Any) -> Media:
    if isinstance(m, str):
        return Media(path=m)
    if not isinstance(m, Mapping):
        raise SchemaError("invalid_field:media", "each media item must be an object or a path string")
    fields = {k: m.get(k) for k in ("path", "url", "sha256", "alt_text")}
    if not all(v is None or isinstance(v, str) for v in fields.values()):
        raise SchemaError("invalid_field:media", "media fields must be strings")
    return Media(**fields)


def _consent(c: Any) -> bool | None:
    if c is None:
        return None
    if not isinstance(c, Mapping):
        raise SchemaError("invalid_field:consent", "consent must be an object like {\"ai_training\": true}")
    value = c.get("ai_training")
    if value is not None and not isinstance(value, bool):
        raise SchemaError("invalid_field:consent", "consent.ai_training must be true, false or null")
    return value


def _sensitive(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SchemaError("invalid_field:sensitive", "sensitive must be true or false")
    return value


def _likes(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError("invalid_field:likes", "likes must be an integer")
    return value
