"""A tiny dataset whose pictures show their class by colour, with wrong and irrelevant hashtags mixed in."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tagsight.schema.catalog import iter_kept_hashtags
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab

CLASSES = {"dog": (200, 30, 30), "car": (30, 200, 30), "tree": (30, 30, 200)}
NOISE = "ball"
POSTS = 60


def colour_picture(rgb: tuple[int, int, int], seed: int) -> Image.Image:
    noise = np.random.default_rng(seed).integers(-25, 26, (24, 24, 3))
    return Image.fromarray(np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8))


def post_tags(p: int) -> tuple[str, list[tuple[str, str]]]:
    """(class, [(hashtag, kind)]) of post p: its class tag, a wrong class every 4th, 'ball' every 2nd."""
    names = list(CLASSES)
    cls = names[p % 3]
    tags = [(cls if p % 5 else cls.capitalize(), "true_concept")]
    if p % 4 == 1:
        tags.append((names[(p + 1) % 3], "wrong_concept"))
    if p % 2 == 0:
        tags.append((NOISE, "nonvisual_noise"))
    return cls, tags


@pytest.fixture(scope="session")
def colour_dataset(tmp_path_factory) -> dict:
    """{"dataset", "vocab", "vocab_path", "truth", "classes", "root"} of a 60-post dataset (post p7 has 2 images)."""
    root = tmp_path_factory.mktemp("relevance")
    media, lines, truth = root / "src" / "media", [], []
    media.mkdir(parents=True)
    classes = []
    for p in range(POSTS):
        cls, tags = post_tags(p)
        files = []
        for m in range(2 if p == 7 else 1):
            colour_picture(CLASSES[cls], 1000 * m + p).save(media / f"{p}-{m}.jpg", quality=95)
            files.append(f"media/{p}-{m}.jpg")
        classes.append(cls)
        lines.append(json.dumps({"post_id": f"p{p:02d}", "author_id": f"a{p % 7}", "created_at": "2024-01-01T00:00:00Z",
                                 "visibility": "public", "media": files, "hashtags": [t for t, _ in tags]}))
        truth.append(json.dumps({"post_id": f"p{p:02d}", "tags": [{"tag": t, "kind": k} for t, k in tags]}))
    (root / "src" / "posts.jsonl").write_text("\n".join(lines) + "\n")
    (root / "truth.jsonl").write_text("\n".join(truth) + "\n")
    cfg = IngestConfig(workers=1, samples_per_shard=16, near_duplicate_radius=None, image=ImageConfig(max_side=32))
    ingest(open_source(root / "src" / "posts.jsonl", "jsonl"), root / "ds", cfg=cfg)
    vocab = build_vocab(iter_kept_hashtags(root / "ds"), VocabConfig(min_count=1))
    vocab.save(root / "vocab")
    return {"dataset": root / "ds", "vocab": vocab, "vocab_path": root / "vocab", "truth": root / "truth.jsonl",
            "classes": classes, "root": root}


@pytest.fixture(scope="session")
def colour_features(colour_dataset) -> np.ndarray:
    """Features that carry each sample's mean colour (what a good backbone would see), plus fixed noise."""
    import io

    from tagsight.data.index import SampleIndex

    index = SampleIndex.build(colour_dataset["dataset"])
    rows = []
    for i in range(len(index)):
        with Image.open(io.BytesIO(index.read_jpeg(i))) as img:
            rows.append(np.asarray(img.convert("RGB"), dtype=np.float32).mean((0, 1)) / 255.0)
    rng = np.random.default_rng(0)
    return np.hstack([np.array(rows), 0.05 * rng.standard_normal((len(rows), 5))]).astype(np.float32)
