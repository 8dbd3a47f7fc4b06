"""The clean-label twin of a social-imagenette split: the same posts, hashtags replaced by the true class.

The transfer experiment's upper bound (docs/results.md) pretrains on exactly the photos and posts of
the noisy corpus, with the only difference that each post's hashtags are the one word naming its
true class (from ``truth.jsonl``). Everything the consent gate reads is kept unchanged (post and
author ids, visibility, consent, region, licence, dates, the ``#noai``-style opt-out tags and the
split's ``optout.txt``), so ``tagsight ingest`` keeps and rejects the same posts for the same
reasons and ``tagsight vocab build`` builds its vocabulary the same way.

The class word is the synset's first lemma, lower case and joined (``french_horn.n.01`` gives
``frenchhorn``): a spelling the noisy corpus also uses, which the default vocabulary maps back to
the class synset.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from tagsight.datasets.harrison_stats import DatasetError
from tagsight.datasets.social_imagenette import link_photo
from tagsight.fsio import atomic_write_text

log = logging.getLogger(__name__)

POSTS, TRUTH, OPTOUT = "posts.jsonl", "truth.jsonl", "optout.txt"


def class_hashtag(synset: str) -> str:
    """The hashtag naming a WordNet synset: its first lemma, lower case, words joined (``chain_saw.n.01`` -> ``chainsaw``)."""
    lemma = synset.split(".")[0] if synset.count(".") >= 2 else ""
    word = "".join(ch for ch in lemma.lower() if ch.isalnum())
    if not word:
        raise DatasetError("bad_synset", f"cannot make a hashtag from synset {synset!r} (expected e.g. 'tench.n.01')")
    return word


def optout_tags(truth: Mapping[str, Any]) -> list[str]:
    """The post's ``#noai``-style tags, in order (kind ``optout`` in its truth line)."""
    return [t["tag"] for t in truth.get("tags", []) if t.get("kind") == "optout"]


def ground_truth_post(post: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
    """``post`` with its hashtags (and caption) replaced by its true class word plus its opt-out tags."""
    if truth.get("post_id") != post.get("post_id"):
        raise DatasetError("truth_mismatch", f"truth line {truth.get('post_id')!r} paired with post {post.get('post_id')!r}")
    media = [m.get("path") for m in post.get("media", [])]
    if truth.get("media") not in media:
        raise DatasetError("truth_mismatch", f"post {post['post_id']}: truth media {truth.get('media')!r} "
                                             f"is not among the post's media {media}")
    if "synset" not in truth:
        raise DatasetError("truth_mismatch", f"post {post['post_id']}: truth line has no 'synset'")
    hashtags = [class_hashtag(truth["synset"]), *optout_tags(truth)]
    return {**post, "hashtags": hashtags, "caption": " ".join(f"#{t}" for t in hashtags)}


@dataclass(frozen=True)
class GroundTruthSummary:
    """Counts of one converted split: every post written once, with its class."""

    split_dir: str
    out_dir: str
    posts: int
    classes: dict[str, int]
    optout_tag_posts: int
    photos: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(self.classes.items()))
        photos = ", ".join(f"{v} {k}" for k, v in sorted(self.photos.items()))
        return (f"ground truth of {self.split_dir} in {self.out_dir}: {self.posts} posts, one class tag each "
                f"({classes}); {self.optout_tag_posts} keep their opt-out tags; photos: {photos}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path`` (blank lines skipped); DatasetError naming the line when one is not JSON."""
    if not path.is_file():
        raise DatasetError("split_missing", f"{path} not found")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError("bad_jsonl", f"{path}:{number}: {exc}") from None
    return records


def pair_with_truth(posts: list[dict[str, Any]], truths: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(post, truth) for every post; DatasetError when a post has no truth line or a truth line no post."""
    by_id = {t.get("post_id"): t for t in truths}
    ids = [p.get("post_id") for p in posts]
    missing = [i for i in ids if i not in by_id]
    extra = sorted(set(by_id) - set(ids), key=str)
    if missing or extra:
        raise DatasetError("truth_mismatch", f"{len(missing)} posts without a truth line (e.g. {missing[:3]}), "
                                             f"{len(extra)} truth lines without a post (e.g. {extra[:3]})")
    return ((p, by_id[p["post_id"]]) for p in posts)


def write_ground_truth_split(split_dir: str | Path, out_dir: str | Path) -> GroundTruthSummary:
    """Write the clean-label twin of a social-imagenette split folder into ``out_dir``.

    ``out_dir`` receives ``posts.jsonl`` (hashtags = the true class word + opt-out tags), the same
    ``truth.jsonl`` and ``optout.txt``, and the photos hard-linked (copied when linking fails) at the
    same relative paths, so that ``tagsight ingest OUT/posts.jsonl --optout OUT/optout.txt`` sees the
    same media. Rewriting an existing folder gives byte-identical files.
    """
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    if split_dir.resolve() == out_dir.resolve():
        raise DatasetError("same_folder", f"the ground-truth split must go to another folder than {split_dir}")
    posts = read_jsonl(split_dir / POSTS)
    truth_lines = read_jsonl(split_dir / TRUTH)
    if not posts:
        raise DatasetError("empty_split", f"{split_dir / POSTS} holds no posts")
    converted: list[dict[str, Any]] = []
    classes: Counter[str] = Counter()
    photos: Counter[str] = Counter()
    for post, truth in pair_with_truth(posts, truth_lines):
        converted.append(ground_truth_post(post, truth))
        classes[truth.get("class_name", truth["synset"])] += 1
        for m in post.get("media", []):
            photos[link_photo(split_dir / m["path"], out_dir / m["path"])] += 1
    atomic_write_text(out_dir / POSTS, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in converted))
    atomic_write_text(out_dir / TRUTH, (split_dir / TRUTH).read_text(encoding="utf-8"))
    optout = split_dir / OPTOUT
    atomic_write_text(out_dir / OPTOUT, optout.read_text(encoding="utf-8") if optout.is_file() else "")
    summary = GroundTruthSummary(str(split_dir), str(out_dir), len(converted), dict(classes),
                                 sum(1 for p in converted if len(p["hashtags"]) > 1), dict(photos))
    log.info("%s", summary.format())
    return summary


def write_verified_labels(split_dir: str | Path, out_path: str | Path, source: str = "posts") -> int:
    """Write a verified-labels file (``tagsight.apps.verified``) from a split's ``truth.jsonl``: one row per post,
    ``{"post_key": "SOURCE/POST_ID", "labels": [true class synset]}``. ``source`` is the name ingest gave the
    posts file (its stem: ``posts`` for posts.jsonl). Returns the number of rows written."""
    split_dir = Path(split_dir)
    truths = read_jsonl(split_dir / TRUTH)
    if not truths:
        raise DatasetError("empty_split", f"{split_dir / TRUTH} holds no truth lines")
    rows = []
    for number, t in enumerate(truths, 1):
        if not t.get("post_id") or not t.get("synset"):
            raise DatasetError("bad_truth", f"{split_dir / TRUTH}:{number}: needs post_id and synset")
        rows.append(json.dumps({"post_key": f"{source}/{t['post_id']}", "labels": [t["synset"]]}) + "\n")
    atomic_write_text(Path(out_path), "".join(rows))
    return len(rows)
