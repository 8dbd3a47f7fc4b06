"""``tagsight judge aesthetic``: the curation aesthetic scorer on paired samples before and after quality-tuning.

Every image of both folders is scored with the scorer ``tagsight curate filter`` uses: the
classical prior (the mean of four measures in [0, 1]: sharpness, contrast, colour, exposure;
``tagsight.curate.filters.aesthetic``) or, with ``head``, a ridge head trained by ``tagsight curate
aesthetic-train`` (its predicted 1-5 rating rescaled to [0, 1]). Generated images are small, so the
prior's scale-dependent sharpness is taken after a bicubic resize to a 128 px long side
(``image_prior_measures``); the head embeds the image with its backbone's own eval transform.

The study's figures: the mean score on each side; the mean of the paired differences (after minus
before, same prompt and seed) with a percentile-bootstrap 95% interval over pairs; the share of pairs
where after scores higher (ties counted apart); the same per prompt; and, whatever the scorer, the
prior's four measures before and after, so a change can be traced to what moved.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.curate.filters.aesthetic import PRIOR_MEASURES, RidgeHead, image_prior_measures
from tagsight.curate.judge.samples import SamplePair, models, pair_samples
from tagsight.curate.judge.stats import bootstrap_mean_ci
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.progress import track
from tagsight.storage import dataset_path, exists, location

log = logging.getLogger(__name__)

AESTHETIC_FILE = "aesthetic.json"


@dataclass(frozen=True)
class AestheticStudyConfig:
    head: str | None = None        # a head from 'tagsight curate aesthetic-train' (default: the classical prior)
    resamples: int = 10_000        # bootstrap resamples of the pairs
    seed: int = 0                  # bootstrap seed

    def __post_init__(self) -> None:
        if self.resamples < 100:
            raise ValueError(f"judge aesthetic: resamples must be >= 100, got {self.resamples}")
        if self.head is not None and not exists(dataset_path(self.head)):   # a local file or a URL
            raise ReasonError("missing_head", f"aesthetic head {self.head} not found")


def _load(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def score_samples(paths: list[Path], head: str | None) -> list[dict[str, float]]:
    """Per image: ``aesthetic`` (the head's score, else the prior), ``prior`` and the prior's four measures."""
    images = [_load(p) for p in paths]
    rows = []
    for img in track(images, len(images), "aesthetic prior", "img"):
        measures = image_prior_measures(img)
        rows.append({"prior": float(np.mean(list(measures.values()))), **measures})
    scores = RidgeHead.load(head).score_images(images) if head else [r["prior"] for r in rows]
    return [{"aesthetic": float(s), **r} for s, r in zip(scores, rows)]


def _paired(before: np.ndarray, after: np.ndarray, cfg: AestheticStudyConfig) -> dict[str, Any]:
    diff = after - before
    lo, hi = bootstrap_mean_ci(diff, cfg.resamples, cfg.seed)
    return {"before": float(before.mean()), "after": float(after.mean()), "mean_diff": float(diff.mean()),
            "ci95": [lo, hi], "after_higher": int((diff > 0).sum()), "before_higher": int((diff < 0).sum()),
            "equal": int((diff == 0).sum()), "after_higher_share": float((diff > 0).mean())}


def _per_prompt(pairs: list[SamplePair], before: np.ndarray, after: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for prompt in dict.fromkeys(p.prompt for p in pairs):
        idx = [i for i, p in enumerate(pairs) if p.prompt == prompt]
        b, a = before[idx], after[idx]
        out.append({"prompt": prompt, "pairs": len(idx), "before": float(b.mean()), "after": float(a.mean()),
                    "mean_diff": float((a - b).mean()), "after_higher_share": float((a > b).mean())})
    return out


def _image_rows(pairs: list[SamplePair], before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"prompt": p.prompt, "seed": p.seed, "before": {"file": p.before.file, **b},
             "after": {"file": p.after.file, **a}} for p, b, a in zip(pairs, before, after)]


def aesthetic_study(before_dir: str | Path, after_dir: str | Path, out_dir: str | Path,
                    cfg: AestheticStudyConfig = AestheticStudyConfig()) -> dict[str, Any]:
    """Score both folders, write ``OUT/aesthetic.json`` and return its content."""
    pairs = pair_samples(before_dir, after_dir)
    log.info("scoring %d pairs (%s)", len(pairs), cfg.head or "classical prior")
    scored = score_samples([p.before.path for p in pairs] + [p.after.path for p in pairs], cfg.head)
    before, after = scored[:len(pairs)], scored[len(pairs):]
    col = {side: {m: np.array([r[m] for r in rows]) for m in ("aesthetic", *PRIOR_MEASURES)}
           for side, rows in (("before", before), ("after", after))}
    result = {
        "scorer": {"kind": "head" if cfg.head else "prior", "head": location(dataset_path(cfg.head)) if cfg.head else None,
                   "resize": "prior measures after a bicubic resize to a 128 px long side"},
        "config": asdict(cfg),
        "before": {"dir": location(before_dir), "models": models(pairs)["before"]},
        "after": {"dir": location(after_dir), "models": models(pairs)["after"]},
        "pairs": len(pairs), "prompts": len({p.prompt for p in pairs}),
        "aesthetic": _paired(col["before"]["aesthetic"], col["after"]["aesthetic"], cfg),
        "measures": {m: _paired(col["before"][m], col["after"][m], cfg) for m in PRIOR_MEASURES},
        "per_prompt": _per_prompt(pairs, col["before"]["aesthetic"], col["after"]["aesthetic"]),
        "images": _image_rows(pairs, before, after),
    }
    atomic_write_text(Path(out_dir) / AESTHETIC_FILE, json.dumps(result, indent=1))
    return result


def read_aesthetic(study_dir: str | Path) -> dict[str, Any] | None:
    path = Path(study_dir) / AESTHETIC_FILE
    return json.loads(path.read_text()) if path.is_file() else None
