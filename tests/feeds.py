"""A synthetic feed ingested into a dataset with its vocabulary: the starting point of many tiny fixtures."""

from __future__ import annotations

from pathlib import Path

from tagsight.data.synthetic import FeedConfig, generate_feed
from tagsight.ingest.catalog import iter_kept_hashtags, manifest_version
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
