"""A tiny feed dataset, its vocabulary and one tiny generator run (16 px, 2-level UNet), shared by the generate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsight.data.synthetic import FeedConfig, generate_feed
from tagsight.ingest.catalog import iter_kept_hashtags, manifest_version
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab
from tagsight.train.distributed import DistEnv
from tests.generate.tiny import tiny_config

@pytest.fixture(scope="session")
def gen_data(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, vocab.json): 80 synthetic posts at 32 px."""
    root = tmp_path_factory.mktemp("gen")
    generate_feed(root / "feed", FeedConfig(n_posts=80, n_authors=8, image_size=32, n_large=0, seed=3))
    ingest(open_source(root / "feed" / "posts.jsonl", "jsonl"), root / "ds",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    vocab = build_vocab(iter_kept_hashtags(root / "ds"), VocabConfig(min_count=2),
                        source={"manifest_version": manifest_version(root / "ds")})
    return root / "ds", vocab.save(root / "vocab")


@pytest.fixture(scope="session")
def base_run(gen_data, tmp_path_factory) -> Path:
    """A generator pretrained for 24 steps on ``gen_data`` (eval.json included)."""
    from tagsight.train.pretrain import pretrain

    dataset, vocab = gen_data
    run = tmp_path_factory.mktemp("runs") / "base"
    pretrain(dataset, vocab, run, tiny_config(), DistEnv())
    return run
