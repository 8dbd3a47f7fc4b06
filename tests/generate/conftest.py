"""A tiny feed dataset, its vocabulary and one tiny generator run (16 px, 2-level UNet), shared by the generate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsight.train.distributed import DistEnv
from tests.feeds import feed_dataset
from tests.generate.tiny import tiny_config

@pytest.fixture(scope="session")
def gen_data(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, vocab.json): 80 synthetic posts at 32 px."""
    return feed_dataset(tmp_path_factory.mktemp("gen"), n_posts=80, n_authors=8, image_size=32, seed=3)


@pytest.fixture(scope="session")
def base_run(gen_data, tmp_path_factory) -> Path:
    """A generator pretrained for 24 steps on ``gen_data`` (eval.json included)."""
    from tagsight.train.pretrain import pretrain

    dataset, vocab = gen_data
    run = tmp_path_factory.mktemp("runs") / "base"
    pretrain(dataset, vocab, run, tiny_config(), DistEnv())
    return run
