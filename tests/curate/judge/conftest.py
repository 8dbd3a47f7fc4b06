"""Sample folders as 'tagsight generate --out DIR' writes them, built from constructed 32 px images."""

import json
from pathlib import Path

import pytest
from PIL import Image, ImageFilter, PngImagePlugin

PROMPTS = ("#beach #sunset", "#dog")


def write_samples(out: Path, pictures, prompts=PROMPTS, per_prompt: int = 3, kind: str = "pretrain", seed: int = 0,
                  steps: int = 20, guidance: float = 3.0, size: int = 32, tag: str | None = None) -> Path:
    """One folder: image i of prompt p uses seed ``seed + i``; ``pictures(p, i)`` draws it."""
    out.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for p, prompt in enumerate(prompts):
        for i in range(per_prompt):
            name = f"{n:04d}.png"
            info = PngImagePlugin.PngInfo()
            info.add_text("model", tag or kind)
            pictures(p, i).save(out / name, pnginfo=info)
            rows.append({"file": name, "prompt": prompt, "tokens_used": prompt.split(), "tokens_unknown": [],
                         "seed": seed + i, "steps": steps, "guidance": guidance,
                         "model": {"run": f"runs/{kind}", "step": 100, "kind": kind}, "size": size})
            n += 1
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.fixture
def sharp(make_photo):
    return lambda p, i: make_photo(10 * p + i, (32, 32))


@pytest.fixture
def dull(make_photo):
    return lambda p, i: make_photo(10 * p + i, (32, 32)).filter(ImageFilter.GaussianBlur(2)).convert("L").convert("RGB")


@pytest.fixture
def before_after(tmp_path, sharp, dull):
    """A blurred grey base model and a sharp colourful tuned one, same prompts and seeds."""
    return (write_samples(tmp_path / "before", dull, kind="pretrain"),
            write_samples(tmp_path / "after", sharp, kind="tune"))


def flat(colour) -> Image.Image:
    return Image.new("RGB", (32, 32), colour)
