"""Records and files: posts.jsonl, truth.jsonl, optout.txt, the summary, and ``generate_feed``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from tagsight.datasets.synthetic.config import CONCEPTS, FeedConfig, FeedSummary, MEDIA_NAME, TAG_KINDS
from tagsight.datasets.synthetic.encoding import media_filename, render_media
from tagsight.datasets.synthetic.plan import plan_feed
from tagsight.datasets.synthetic.records import FeedImage, FeedPost

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- records and files

def _post_record(post: FeedPost) -> dict[str, Any]:
    """The post as our JSONL schema has it (what a real export would hold)."""
    media = []
    for im in post.images:
        item = {"path": f"media/{media_filename(im)}"}
        if im.alt_text is not None:
            item["alt_text"] = im.alt_text
        media.append(item)
    rec: dict[str, Any] = {
        "post_id": post.post_id, "author_id": post.author.author_id, "created_at": post.created_at,
        "visibility": post.audience.visibility, "caption": post.caption,
    }
    if post.list_hashtags:
        rec["hashtags"] = [t.tag for t in post.tags]
    rec.update(media=media, consent={"ai_training": post.audience.consent_ai_training},
               region=post.author.region, license=post.author.license, likes=post.likes)
    return rec


def _image_truth(im: FeedImage, media_dir: Path) -> dict[str, Any]:
    data = (media_dir / media_filename(im)).read_bytes()
    return {
        "path": f"media/{media_filename(im)}", "concepts": list(im.concepts), "synsets": [CONCEPTS[c] for c in im.concepts],
        "width": im.size[0], "height": im.size[1], "format": im.fmt, "background": im.background,
        "gps": {"lat": im.gps[0], "lon": im.gps[1]} if im.gps else None, "orientation": im.orientation,
        "duplicate_of": {"path": f"media/{media_filename(im.duplicate_of[0])}", "kind": im.duplicate_of[1]}
        if im.duplicate_of else None,
        "corrupt": im.corrupt, "sha256": hashlib.sha256(data).hexdigest(),
    }


def _truth_record(post: FeedPost, opted_out: set[str], media_dir: Path) -> dict[str, Any]:
    """What is really in the post: concepts per image, the kind of every hashtag, audience facts."""
    concepts = list(dict.fromkeys(c for im in post.images for c in im.concepts))
    return {
        "post_id": post.post_id, "author_id": post.author.author_id,
        "concepts": concepts, "synsets": [CONCEPTS[c] for c in concepts],
        "images": [_image_truth(im, media_dir) for im in post.images],
        "tags": [{"tag": t.tag, "kind": t.kind, "concept": t.concept,
                  "synset": CONCEPTS[t.concept] if t.concept else None, "form": t.form} for t in post.tags],
        "hashtags_listed": post.list_hashtags, "visibility": post.audience.visibility,
        "consent_ai_training": post.audience.consent_ai_training, "optout_tag": post.audience.optout_tag,
        "author_opted_out": post.author.author_id in opted_out,
    }


def _write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")


def _write_optout(path: Path, opted_out: list[str]) -> None:
    lines = ["# Authors who asked that none of their posts be used for AI training.",
             "# One author id per line; lines starting with '#' are comments.", *opted_out]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _clear_stale_media(media_dir: Path) -> None:
    """Remove photos an earlier run wrote here (our file-name pattern only), so the folder matches the config."""
    stale = [p for p in media_dir.iterdir() if MEDIA_NAME.fullmatch(p.name)]
    for p in stale:
        p.unlink()
    if stale:
        log.info("removed %d photos of an earlier feed from %s", len(stale), media_dir)


def _summarize(posts: list[FeedPost], opted_out: list[str]) -> FeedSummary:
    images = [im for p in posts for im in p.images]
    kinds = {k: sum(t.kind == k for p in posts for t in p.tags) for k in TAG_KINDS}
    dup_kinds = [im.duplicate_of[1] for im in images if im.duplicate_of]
    return FeedSummary(
        n_posts=len(posts), n_authors=len({p.author.author_id for p in posts}), n_images=len(images),
        n_jpeg=sum(im.fmt == "jpeg" for im in images), n_png=sum(im.fmt == "png" for im in images),
        n_gps=sum(im.gps is not None for im in images), n_oriented=sum(bool(im.orientation) for im in images),
        n_large=sum(max(im.size) >= 640 for im in images), n_non_square=sum(im.size[0] != im.size[1] for im in images),
        n_multi_image_posts=sum(len(p.images) > 1 for p in posts),
        n_two_concept_images=sum(len(im.concepts) > 1 for im in images),
        n_exact_duplicates=dup_kinds.count("exact"), n_near_duplicates=dup_kinds.count("near"),
        n_corrupt=sum(im.corrupt is not None for im in images),
        n_hashtags_listed=sum(p.list_hashtags for p in posts),
        n_alt_text=sum(im.alt_text is not None for im in images), n_opted_out_authors=len(opted_out),
        n_posts_by_opted_out=sum(p.author.author_id in opted_out for p in posts),
        n_optout_tag_posts=sum(p.audience.optout_tag is not None for p in posts),
        n_public=sum(p.audience.visibility == "public" for p in posts),
        n_tags=sum(len(p.tags) for p in posts), tag_kinds=kinds,
    )


def generate_feed(out_dir: Path, cfg: FeedConfig = FeedConfig()) -> FeedSummary:
    """Write a synthetic feed (posts.jsonl, media/, optout.txt, truth.jsonl) into ``out_dir``; same cfg, same bytes."""
    out_dir = Path(out_dir)
    media_dir = out_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    _clear_stale_media(media_dir)
    posts, opted_out = plan_feed(cfg)
    render_media(cfg, posts, media_dir)
    _write_jsonl(out_dir / "posts.jsonl", (_post_record(p) for p in posts))
    _write_optout(out_dir / "optout.txt", opted_out)
    blocked = set(opted_out)
    _write_jsonl(out_dir / "truth.jsonl", (_truth_record(p, blocked, media_dir) for p in posts))
    summary = _summarize(posts, opted_out)
    log.info("synthetic feed in %s: %d posts, %d photos (%d GPS, %d reposts, %d corrupt)", out_dir,
             summary.n_posts, summary.n_images, summary.n_gps,
             summary.n_exact_duplicates + summary.n_near_duplicates, summary.n_corrupt)
    return summary
