"""A synthetic feed ingested into a dataset with its vocabulary: the starting point of many tiny fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tagsight.data.index import SampleIndex
from tagsight.datasets.synthetic import FeedConfig, generate_feed
from tagsight.schema.catalog import iter_kept_hashtags, manifest_version
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab


def feed_dataset(root: Path, n_posts: int, n_authors: int, image_size: int, seed: int) -> tuple[Path, Path]:
    """(ROOT/ds, vocab.json): ``generate_feed`` into ROOT/feed, ingested at ``image_size``, vocabulary (min count 2)."""
    generate_feed(root / "feed", FeedConfig(n_posts=n_posts, n_authors=n_authors, image_size=image_size, n_large=0,
                                            seed=seed))
    ingest(open_source(root / "feed" / "posts.jsonl", "jsonl"), root / "ds",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=image_size)))
    vocab = build_vocab(iter_kept_hashtags(root / "ds"), VocabConfig(min_count=2),
                        source={"manifest_version": manifest_version(root / "ds")})
    return root / "ds", vocab.save(root / "vocab")


def calibration_dataset(train_dataset: Path, root: Path, duplicates: int = 0, untagged: int = 0
                        ) -> tuple[Path, set[str]]:
    """ROOT/ds: a separately ingested feed plus ``duplicates`` posts whose photos are ``train_dataset``'s
    (their post keys are returned), the first ``untagged`` of its own posts with only made-up hashtags."""
    generate_feed(root / "feed", FeedConfig(n_posts=60, n_authors=6, image_size=48, n_large=0, seed=11))
    own = [json.loads(line) for line in (root / "feed" / "posts.jsonl").read_text().splitlines()]
    for n, row in enumerate(own[:untagged]):
        row["hashtags"], row["caption"] = [f"zqx{n}word"], f"#zqx{n}word"
    kept = {k.split("/", 1)[1] for k in SampleIndex.build(train_dataset).post_keys}
    train_feed = train_dataset.parent / "feed"
    rows = [json.loads(line) for line in (train_feed / "posts.jsonl").read_text().splitlines()]
    copied = []
    for row in [r for r in rows if r["post_id"] in kept][:duplicates]:
        row["post_id"] = f"dup-{row['post_id']}"
        for m, media in enumerate(row["media"]):
            target = f"media/{row['post_id']}_{m}.jpg"
            shutil.copy(train_feed / media["path"], root / "feed" / target)
            media["path"] = target
        copied.append(json.dumps(row))
    lines = [json.dumps(row) for row in own] + copied
    (root / "feed" / "posts.jsonl").write_text("".join(line + "\n" for line in lines))
    ingest(open_source(root / "feed" / "posts.jsonl", "jsonl"), root / "ds",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=64)))   # other settings than the run's
    return root / "ds", {f"posts/{json.loads(line)['post_id']}" for line in copied}
