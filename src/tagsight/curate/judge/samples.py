"""Generated sample folders and their pairing.

``tagsight generate ... --out DIR`` writes ``DIR/0000.png, 0001.png, ...`` and ``DIR/samples.jsonl``
with one row per image::

    {"file": "0000.png", "prompt": str, "tokens_used": [...], "tokens_unknown": [...], "seed": int,
     "steps": int, "guidance": float, "model": {"run": str, "step": int, "kind": "pretrain"|"tune"},
     "size": int}

A "before" folder (the base model) and an "after" folder (the quality-tuned model) made with the
same prompts and seeds pair up by ``(prompt, seed)``. Pairing is exact or refused: a sample with no
partner, a pair whose sampler settings (steps, guidance, size) differ, or an image whose pixels do
not have the size its row says is reported, every one of them, in one ``ReasonError``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tagsight.fsio import ReasonError

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
MATCHED = ("steps", "guidance", "size")     # sampler settings both sides of a pair must share
_TYPES: dict[str, type | tuple[type, ...]] = {"file": str, "prompt": str, "seed": int, "steps": int, "guidance": (int, float), "size": int, "model": dict}
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class Sample:
    """One generated image and its row of ``samples.jsonl``."""

    dir: Path
    row: dict[str, Any]

    @property
    def file(self) -> str:
        return str(self.row["file"])

    @property
    def path(self) -> Path:
        return self.dir / self.file

    @property
    def prompt(self) -> str:
        return str(self.row["prompt"])

    @property
    def seed(self) -> int:
        return int(self.row["seed"])

    @property
    def key(self) -> tuple[str, int]:
        return (self.prompt, self.seed)

    @property
    def model(self) -> dict[str, Any]:
        model: dict[str, Any] = self.row["model"]
        return model


@dataclass(frozen=True)
class SamplePair:
    before: Sample
    after: Sample

    @property
    def prompt(self) -> str:
        return self.before.prompt

    @property
    def seed(self) -> int:
        return self.before.seed


def _check_row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ReasonError("bad_samples_row", f"{where}: a row must be a JSON object")
    for name, kind in _TYPES.items():
        value = row.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ReasonError("bad_samples_row", f"{where}: {name!r} must be {getattr(kind, '__name__', 'a number')}, "
                                                 f"got {value!r}")
    name = row["file"]
    if Path(name).name != name or name in ("", ".", "..") or "\\" in name:
        raise ReasonError("bad_samples_row", f"{where}: file {name!r} must be a plain file name inside the folder")
    return row


def read_samples(sample_dir: str | Path) -> list[Sample]:
    """The validated rows of one folder (ReasonError for a missing folder, a bad row, a missing image or a
    repeated ``(prompt, seed)``)."""
    sample_dir = Path(sample_dir).resolve()
    path = sample_dir / SAMPLES_FILE
    if not path.is_file():
        raise ReasonError("not_a_sample_dir",
                          f"{sample_dir}: no {SAMPLES_FILE} (made by 'tagsight generate --out DIR')")
    samples: list[Sample] = []
    seen: dict[tuple[str, int], int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = _check_row(json.loads(line), where)
        except json.JSONDecodeError as exc:
            raise ReasonError("bad_samples_row", f"{where}: not JSON ({exc.msg})") from None
        sample = Sample(sample_dir, row)
        if not sample.path.is_file():
            raise ReasonError("missing_image", f"{where}: {sample.file} is not in {sample_dir}")
        if sample.key in seen:
            raise ReasonError("duplicate_sample", f"{where}: prompt {sample.prompt!r} seed {sample.seed} already "
                                                  f"on line {seen[sample.key]}")
        seen[sample.key] = n
        samples.append(sample)
    if not samples:
        raise ReasonError("no_samples", f"{path} has no rows")
    return samples


def _size_problem(s: Sample, side: str) -> str | None:
    with Image.open(s.path) as img:
        size = img.size
    return None if max(size) == s.row["size"] else (f"image_size: {side} {s.file} is {size[0]}x{size[1]} but its row "
                                                    f"says size {s.row['size']}")


def _describe(key: tuple[str, int]) -> str:
    return f"prompt {key[0]!r} seed {key[1]}"


def pair_problems(before: list[Sample], after: list[Sample]) -> list[str]:
    """Every reason the two folders do not pair up exactly (empty when they do)."""
    a, b = {s.key: s for s in before}, {s.key: s for s in after}
    problems = [f"missing_after: {_describe(k)} has no after sample" for k in a if k not in b]
    problems += [f"missing_before: {_describe(k)} has no before sample" for k in b if k not in a]
    for k in (k for k in a if k in b):
        diff = [f"{m} {a[k].row[m]!r} vs {b[k].row[m]!r}" for m in MATCHED if a[k].row[m] != b[k].row[m]]
        if diff:
            problems.append(f"settings_mismatch: {_describe(k)}: " + ", ".join(diff))
    problems += [p for s, side in [(s, "before") for s in before] + [(s, "after") for s in after]
                 if (p := _size_problem(s, side))]
    return problems


def pair_samples(before_dir: str | Path, after_dir: str | Path) -> list[SamplePair]:
    """The pairs of two folders in the before folder's order, or a ReasonError listing every mismatch."""
    before, after = read_samples(before_dir), read_samples(after_dir)
    problems = pair_problems(before, after)
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise ReasonError("unpaired_samples", f"{before_dir} and {after_dir} do not pair up by (prompt, seed) with the "
                                              f"same steps, guidance and size ({len(problems)} problems):\n  "
                                              f"{shown}{more}")
    if before[0].model == after[0].model:
        log.warning("before and after samples come from the same model %s: this measures noise only", before[0].model)
    by_key = {s.key: s for s in after}
    return [SamplePair(s, by_key[s.key]) for s in before]


def models(pairs: list[SamplePair]) -> dict[str, list[dict[str, Any]]]:
    """The distinct models on each side (normally one each)."""
    out: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for p in pairs:
        for side in out:
            m = getattr(p, side).model
            if m not in out[side]:
                out[side].append(m)
    return out
