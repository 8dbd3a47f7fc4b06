"""``tagsight judge pairs``: a blind pairwise-preference study of paired before/after samples.

The study folder holds what the rating page may show and, apart from it, what unblinds the votes:

- ``pairs.json`` (public, served): the pairs in presentation order (shuffled), each with an opaque
  pair id, the prompt, and the opaque ids of its left and right images;
- ``images/<id>.png``: copies of the samples re-encoded from their pixels (no PNG text chunks or
  other metadata of the generator survive), so names, metadata and later changes to the source
  folders cannot unblind or alter the study;
- ``unblind.json`` (never served): per pair, which model is on the left, and both source files.

Placement is randomised and balanced: exactly half of the pairs (rounded) show the after model on
the left, which half being drawn from ``seed``; the order, the ids and the placement all come from
that one seed, so the study is reproducible from its inputs. Raters all walk the same order, so
their votes overlap and agreement can be measured.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.curate.judge.samples import Sample, models, pair_samples
from tagsight.fsio import ReasonError, atomic_write_text, private_temp
from tagsight.progress import track
from tagsight.storage import location

log = logging.getLogger(__name__)

PAIRS_FILE = "pairs.json"
UNBLIND_FILE = "unblind.json"
IMAGES_DIR = "images"
SIDES = ("left", "right")


def _tokens(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        t = rng.bytes(nbytes).hex()
        if t not in out:
            out.append(t)
    return out


def _copy_pixels(sample: Sample, dest: Path) -> None:
    with Image.open(sample.path) as img:
        rgb = img.convert("RGB")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_temp(dest)
    rgb.save(tmp, format="PNG")
    tmp.replace(dest)


def _placements(rng: np.random.Generator, n: int) -> np.ndarray:
    """``after_left[i]``: True for exactly ceil(n / 2) pairs, which ones drawn at random."""
    after_left = np.arange(n) < (n + 1) // 2
    rng.shuffle(after_left)
    return after_left


def make_pair_study(before_dir: str | Path, after_dir: str | Path, out_dir: str | Path,
                    seed: int = 0) -> dict[str, Any]:
    """Write a new blind study to ``out_dir`` (refused when it already holds one: votes would be orphaned)."""
    out = Path(out_dir)
    if (out / PAIRS_FILE).exists():
        raise ReasonError("study_exists", f"{out} already holds a pair study ({PAIRS_FILE}); use a new folder")
    pairs = pair_samples(before_dir, after_dir)
    rng = np.random.default_rng(seed)
    pair_ids, image_ids = _tokens(rng, len(pairs), 6), _tokens(rng, 2 * len(pairs), 8)
    after_left, order = _placements(rng, len(pairs)), rng.permutation(len(pairs))
    shown, secret = [], {}
    for i in track(order.tolist(), len(pairs), "copy pair images", "pair"):
        p, pid = pairs[i], pair_ids[i]
        ids = {"before": image_ids[2 * i], "after": image_ids[2 * i + 1]}
        for side in ("before", "after"):
            _copy_pixels(getattr(p, side), out / IMAGES_DIR / f"{ids[side]}.png")
        left = "after" if after_left[i] else "before"
        right = "before" if left == "after" else "after"
        shown.append({"pair": pid, "prompt": p.prompt, "left": ids[left], "right": ids[right]})
        secret[pid] = {"left": left, "prompt": p.prompt, "seed": p.seed, "before_file": p.before.file,
                       "after_file": p.after.file, "before_image": ids["before"], "after_image": ids["after"]}
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    unblind = {"seed": seed, "created_at": created, "pairs": secret,
               "before": {"dir": location(before_dir), "models": models(pairs)["before"]},
               "after": {"dir": location(after_dir), "models": models(pairs)["after"]}}
    atomic_write_text(out / UNBLIND_FILE, json.dumps(unblind, indent=1))
    atomic_write_text(out / PAIRS_FILE, json.dumps({"created_at": created, "pairs": shown}, indent=1))
    return {"study": str(out), "pairs": len(shown), "after_left": int(after_left.sum()),
            "prompts": len({p.prompt for p in pairs})}


@dataclass(frozen=True)
class PairStudy:
    """A study folder as the page and the statistics see it."""

    dir: Path
    pairs: list[dict[str, Any]]          # public rows, in presentation order

    @classmethod
    def load(cls, study_dir: str | Path) -> PairStudy:
        d = Path(study_dir)
        if not (d / PAIRS_FILE).is_file():
            raise ReasonError("not_a_study", f"{d} has no {PAIRS_FILE} (made by 'tagsight judge pairs')")
        return cls(d, json.loads((d / PAIRS_FILE).read_text())["pairs"])

    def unblind(self) -> dict[str, Any]:
        """The secret half: never call this from the page's request handlers."""
        path = self.dir / UNBLIND_FILE
        if not path.is_file():
            raise ReasonError("no_unblinding", f"{path} is missing: the votes cannot be attributed to models")
        unblinding = json.loads(path.read_text())
        if not isinstance(unblinding, dict):
            raise ReasonError("no_unblinding", f"{path} is not a JSON object: the votes cannot be attributed to models")
        return unblinding


def chosen_model(choice: str, left: str) -> str:
    """The model a shown-side vote went to: ``after``, ``before`` or ``tie``."""
    if choice == "none":
        return "tie"
    if choice == "left":
        return left
    return "before" if left == "after" else "after"
