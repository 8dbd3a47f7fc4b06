"""Writing a split (posts, media links, opt-outs, ground truth), its summary, and the whole build."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from tagsight.fsio import atomic_write_text
from tagsight.datasets.audience import pick_opted_out
from tagsight.datasets.harrison_stats import COMPOUND_TEMPLATES
from tagsight.datasets.social_imagenette.calibration import Calibration, calibrate, related_synsets
from tagsight.datasets.social_imagenette.concepts import load_concept
from tagsight.datasets.social_imagenette.config import (HARRISON_DIR, HYPERNYM_TAGS, IMAGENETTE_DIR,
    SocialImagenetteConfig, TAG_KINDS, resolve_data_root)
from tagsight.datasets.social_imagenette.hashtags import ConceptWriter
from tagsight.datasets.social_imagenette.posts import Photo, PlannedPost, PostContext, plan_split, scan_split

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- writing

def link_photo(src: Path, dst: Path) -> str:
    """Place ``src`` at ``dst`` by hard link, or a copy when linking fails; returns linked/copied/kept."""
    if dst.is_symlink() or (dst.exists() and not os.path.samefile(src, dst)):
        dst.unlink()
    elif dst.exists():
        return "kept"
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "linked"
    except OSError as exc:
        log.debug("hard link %s -> %s failed (%s); copying", src, dst, exc)
        shutil.copyfile(src, dst)
        return "copied"


def _prune_media(media_dir: Path, keep: set[Path]) -> int:
    """Remove files under ``media_dir`` that no post refers to (left by an earlier, larger build)."""
    stale = [p for p in sorted(media_dir.rglob("*")) if (p.is_file() or p.is_symlink()) and p not in keep]
    for p in stale:
        p.unlink()
    if stale:
        log.info("removed %d stale media files under %s", len(stale), media_dir)
    return len(stale)


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write a text file of lines atomically."""
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _jsonl(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    return (json.dumps(r, ensure_ascii=False) for r in records)


def write_split(split_dir: Path, split: str, posts: list[PlannedPost], opted_out: list[str]) -> Counter[str]:
    """Photos, posts.jsonl, truth.jsonl and optout.txt of one split; returns link outcome counts."""
    from tagsight.progress import Progress

    outcomes: Counter[str] = Counter()
    keep: set[Path] = set()
    with Progress(len(posts), f"{split}: placing photos", unit="photo") as progress:
        for post in posts:
            dst = split_dir / post.photo.rel
            outcomes[link_photo(post.photo.src, dst)] += 1
            keep.add(dst)
            progress.update()
    outcomes["stale_removed"] = _prune_media(split_dir / "media", keep)
    _write_lines(split_dir / "posts.jsonl", _jsonl(p.post_dict() for p in posts))
    _write_lines(split_dir / "truth.jsonl", _jsonl(p.truth_dict(split) for p in posts))
    header = [f"# social-imagenette/{split}: simulated authors who asked to be left out (one id per line)"]
    _write_lines(split_dir / "optout.txt", header + opted_out)
    return outcomes


# ---------------------------------------------------------------- summary and the build

@dataclass(frozen=True)
class SplitSummary:
    """Counts of one written split; each can be checked against its files."""

    split: str
    posts: int
    classes: int
    authors: int
    max_posts_by_one_author: int
    single_post_authors: int
    concept_present: int
    wrong_concept: int
    hashtags: int                 # without opt-out tags
    mean_tags_per_post: float     # without opt-out tags
    tag_kinds: dict[str, int]
    true_forms: dict[str, int]
    visibility: dict[str, int]
    consent: dict[str, int]
    optout_tag_posts: int
    opted_out_authors: int
    photos_linked: int
    photos_copied: int
    photos_kept: int
    stale_media_removed: int
    skipped_files: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_split(split: str, posts: list[PlannedPost], opted_out: list[str], outcomes: Mapping[str, int],
                    skipped: int) -> SplitSummary:
    """Count what a split holds."""
    per_author = Counter(p.author_id for p in posts)
    kinds = Counter(t.kind for p in posts for t in p.tags)
    hashtags = sum(kinds.values()) - kinds["optout"]
    return SplitSummary(
        split=split, posts=len(posts), classes=len({p.concept.wnid for p in posts}), authors=len(per_author),
        max_posts_by_one_author=max(per_author.values(), default=0),
        single_post_authors=sum(1 for c in per_author.values() if c == 1),
        concept_present=sum(1 for p in posts if any(t.kind == "true_concept" for t in p.tags)),
        wrong_concept=sum(1 for p in posts if p.wrong is not None), hashtags=hashtags,
        mean_tags_per_post=round(hashtags / len(posts), 4) if posts else 0.0,
        tag_kinds={k: kinds[k] for k in TAG_KINDS},
        true_forms=dict(sorted(Counter(t.form for p in posts for t in p.tags
                                       if t.kind == "true_concept" and t.form is not None).items())),
        visibility=dict(sorted(Counter(p.audience.visibility for p in posts).items())),
        consent=dict(sorted(Counter(json.dumps(p.audience.consent_ai_training) for p in posts).items())),
        optout_tag_posts=sum(1 for p in posts if p.audience.optout_tag), opted_out_authors=len(opted_out),
        photos_linked=outcomes.get("linked", 0), photos_copied=outcomes.get("copied", 0),
        photos_kept=outcomes.get("kept", 0), stale_media_removed=outcomes.get("stale_removed", 0),
        skipped_files=skipped,
    )


@dataclass(frozen=True)
class BuildSummary:
    """What ``build_social_imagenette`` wrote, per split, and how long it took."""

    out_dir: Path
    splits: tuple[SplitSummary, ...]
    seconds: float

    def format(self) -> str:
        """Human-readable summary lines."""
        lines = [f"social-imagenette in {self.out_dir} ({self.seconds:.1f}s)"]
        for s in self.splits:
            lines += [
                f"  {s.split}: {s.posts} posts of {s.classes} classes by {s.authors} authors "
                f"(max {s.max_posts_by_one_author} posts by one, {s.single_post_authors} with one post)",
                f"    true concept on {s.concept_present} ({s.concept_present / max(s.posts, 1):.1%}), "
                f"wrong concept on {s.wrong_concept} ({s.wrong_concept / max(s.posts, 1):.1%}), "
                f"{s.mean_tags_per_post:.2f} tags/post; tag kinds {s.tag_kinds}",
                f"    true-concept forms {s.true_forms}",
                f"    visibility {s.visibility}; consent {s.consent}; #noai-style tags on {s.optout_tag_posts} "
                f"posts; {s.opted_out_authors} opted-out authors",
                f"    photos: {s.photos_linked} hard-linked, {s.photos_copied} copied, {s.photos_kept} already "
                f"there; {s.stale_media_removed} stale removed; {s.skipped_files} non-photo files skipped",
            ]
        return "\n".join(lines)


def _build_split(split: str, photos: list[Photo], skipped: int, ctx: PostContext,
                 cfg: SocialImagenetteConfig) -> SplitSummary:
    posts = plan_split(split, photos, ctx, cfg.limit)
    authors = sorted({p.author_id for p in posts})
    opted_out = pick_opted_out(authors, random.Random(f"social-imagenette/{cfg.seed}/{split}/optout"))
    split_dir = cfg.out_dir / split
    split_dir.mkdir(parents=True, exist_ok=True)
    outcomes = write_split(split_dir, split, posts, opted_out)
    summary = summarize_split(split, posts, opted_out, outcomes, skipped)
    log.info("%s: wrote %d posts to %s", split, summary.posts, split_dir)
    return summary


def build_context(cfg: SocialImagenetteConfig, wnids: list[str], wn: Any) -> tuple[PostContext, Calibration]:
    """Concepts of ``wnids``, the HARRISON calibration (excluding all Imagenette classes) and the writer."""
    concepts = {w: load_concept(w, wn) for w in wnids}
    everyone = [load_concept(w, wn) for w in sorted(set(wnids) | set(HYPERNYM_TAGS))]
    calibration = calibrate(cfg.data_root / HARRISON_DIR, everyone, wn)
    per_class = {w: frozenset(related_synsets([c], wn)) for w, c in concepts.items()}
    writer = ConceptWriter(cfg.noise, COMPOUND_TEMPLATES, calibration.template_weights)
    return PostContext(cfg.seed, cfg.noise, writer, calibration.sampler, concepts, per_class), calibration


def _noise_model_json(cfg: SocialImagenetteConfig, ctx: PostContext, calibration: Calibration,
                      splits: list[SplitSummary]) -> str:
    doc = {
        "dataset": "social-imagenette", "format_version": 1, "seed": cfg.seed, "limit": cfg.limit,
        "inputs": {"photos": IMAGENETTE_DIR, "hashtags": HARRISON_DIR},
        "noise_model": cfg.noise.to_dict(),
        "classes": [c.to_dict() for _, c in sorted(ctx.concepts.items())],
        "harrison": calibration.to_dict(),
        "splits": {s.split: {k: v for k, v in s.to_dict().items() if not k.startswith(("photos_", "stale_"))}
                   for s in splits},
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def build_social_imagenette(cfg: SocialImagenetteConfig, wn: Any = None) -> BuildSummary:
    """Build the corpus described in the module docstring; returns the counts (also logged)."""
    from tagsight.tags.wordnet import load_wordnet

    start = time.monotonic()
    resolve_data_root(cfg.data_root)
    wn = wn or load_wordnet()
    scanned = {s: scan_split(cfg.data_root / IMAGENETTE_DIR, s) for s in cfg.splits}
    wnids = sorted({p.wnid for photos, _ in scanned.values() for p in photos})
    ctx, calibration = build_context(cfg, wnids, wn)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    splits = [_build_split(s, photos, len(skipped), ctx, cfg) for s, (photos, skipped) in scanned.items()]
    _write_lines(cfg.out_dir / "noise_model.json", [_noise_model_json(cfg, ctx, calibration, splits)])
    summary = BuildSummary(cfg.out_dir, tuple(splits), round(time.monotonic() - start, 2))
    for line in summary.format().splitlines():
        log.info("%s", line)
    return summary
