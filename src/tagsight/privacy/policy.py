"""The consent gate: pure eligibility rules over a Post, configured by a YAML-loadable dataclass.

The default is the safe one: only ``public`` posts, an explicit ``consent.ai_training: false``
always wins, opted-out authors and posts are excluded, opt-out hashtags (``#noai`` ...) are
honoured after Unicode normalisation, and posts their authors marked sensitive or put behind a
content warning are left out. Every exclusion gets a stable reason code.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tagsight.config import apply_override, from_mapping, load_mapping, source_of
from tagsight.schema.posts import VISIBILITIES, Post
from tagsight.schema.text import fold_hashtag, parse_hashtags
from tagsight.storage import dataset_path, is_url, read_bytes

DEFAULT_OPTOUT_HASHTAGS = ("noai", "noaitraining", "nomachinelearning")


def tag_key(tag: str) -> str:
    """Hashtag comparison key for opt-out matching: folded, then letters and digits only (#No_AI == #noai)."""
    return re.sub(r"[\W_]+", "", fold_hashtag(tag))


@dataclass(frozen=True)
class OptOuts:
    """Authors and posts that asked to be left out; post entries are ``source/post_id`` or bare post ids."""

    authors: frozenset[str] = frozenset()
    posts: frozenset[str] = frozenset()

    @classmethod
    def from_file(cls, path: str | Path) -> "OptOuts":
        """One entry per line: ``author:ID``, ``post:ID`` or a bare author id; ``#`` starts a comment. ``path`` is a
        local file or an fsspec URL."""
        authors: set[str] = set()
        posts: set[str] = set()
        for raw in read_bytes(path).decode("utf-8").splitlines():   # a local file or a URL, retried
            line = raw.split("#", 1)[0].strip()
            if line.startswith("post:"):
                posts.add(line[5:].strip())
            elif line:
                authors.add(line[7:].strip() if line.startswith("author:") else line)
        return cls(frozenset(authors), frozenset(posts))

    def __or__(self, other: "OptOuts") -> "OptOuts":
        return OptOuts(self.authors | other.authors, self.posts | other.posts)


@dataclass(frozen=True)
class ConsentPolicy:
    """Which posts may be used for training. Validated at construction."""

    allowed_visibility: tuple[str, ...] = ("public",)
    require_opt_in: bool = False
    optout_authors: tuple[str, ...] = ()
    optout_posts: tuple[str, ...] = ()
    optout_files: tuple[str, ...] = ()
    optout_hashtags: tuple[str, ...] = DEFAULT_OPTOUT_HASHTAGS
    excluded_regions: tuple[str, ...] = ()
    exclude_sensitive: bool = True
    blur_faces: bool = False
    _optouts: OptOuts = field(default=OptOuts(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("allowed_visibility", "optout_authors", "optout_posts", "optout_files",
                     "optout_hashtags", "excluded_regions"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"policy.{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("require_opt_in", "exclude_sensitive", "blur_faces"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"policy.{name} must be true or false, got {getattr(self, name)!r}")
        bad = [v for v in self.allowed_visibility if v not in VISIBILITIES]
        if bad:
            raise ValueError(f"policy.allowed_visibility has unknown values {bad}; known: {VISIBILITIES}")
        object.__setattr__(self, "excluded_regions", tuple(r.upper() for r in self.excluded_regions))
        object.__setattr__(self, "_optouts", self._load_optouts())

    def _load_optouts(self) -> OptOuts:
        optouts = OptOuts(frozenset(self.optout_authors), frozenset(self.optout_posts))
        for path in self.optout_files:
            try:
                optouts = optouts | OptOuts.from_file(dataset_path(path))
            except (FileNotFoundError, IsADirectoryError):
                raise ValueError(f"policy.optout_files: {path} does not exist") from None
        return optouts

    @property
    def optouts(self) -> OptOuts:
        return self._optouts

    config_label = "policy"   # "unknown policy keys" (tagsight.config)

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Iterable[str] = ()) -> "ConsentPolicy":
        """The policy of a YAML file (None: the defaults) with ``key=value`` overrides; its ``optout_files``
        are relative to the file's folder (a URL beside a policy at a URL), absolute paths and URLs as they are."""
        overrides = list(overrides)
        data = load_mapping(path)
        if path is not None and isinstance(data.get("optout_files"), list):
            data["optout_files"] = [beside(path, f) if isinstance(f, str) else f for f in data["optout_files"]]
        for item in overrides:
            apply_override(data, item)
        return from_mapping(cls, data, source_of(path, overrides))

    def to_dict(self) -> dict[str, Any]:
        """The policy as recorded in a manifest: opt-out lists by size and content hash, not by name."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["optout_authors"] = len(self.optouts.authors)
        d["optout_posts"] = len(self.optouts.posts)
        d["optout_files"] = len(self.optout_files)
        return d


def beside(policy_file: str | Path, name: str) -> str:
    """An opt-out list a policy file names: a URL or an absolute path as it is, a relative one in the policy's folder
    (a local folder, or the URL's "folder" for a policy at a URL)."""
    where = dataset_path(name)
    if is_url(where) or (isinstance(where, Path) and where.is_absolute()):
        return str(where)
    base = dataset_path(policy_file) if isinstance(policy_file, str) else policy_file
    if isinstance(base, str):
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{posixpath.normpath(posixpath.join(posixpath.dirname(rest), name))}"
    return str(base.parent / name)


def decide(post: Post, policy: ConsentPolicy) -> list[str]:
    """Every reason ``post`` may not be used, in a fixed order; empty when it is eligible."""
    reasons: list[str] = []
    if post.visibility not in policy.allowed_visibility:
        reasons.append(f"visibility_{post.visibility}")
    if post.consent_ai_training is False:
        reasons.append("consent_refused")
    elif policy.require_opt_in and post.consent_ai_training is not True:
        reasons.append("consent_not_given")
    if post.author_id in policy.optouts.authors:
        reasons.append("author_opted_out")
    if post.post_id in policy.optouts.posts or post.key in policy.optouts.posts:
        reasons.append("post_opted_out")
    optout_keys = {tag_key(t) for t in policy.optout_hashtags}
    if any(tag_key(t) in optout_keys for t in post.hashtags) or _caption_optout(post, optout_keys):
        reasons.append("optout_hashtag")
    if policy.exclude_sensitive and (post.sensitive or post.content_warning):
        reasons.append("sensitive_content")
    if post.region and post.region.upper() in policy.excluded_regions:
        reasons.append("region_excluded")
    return reasons


def _caption_optout(post: Post, optout_keys: set[str]) -> bool:
    return any(tag_key(t) in optout_keys for t in parse_hashtags(post.caption))
