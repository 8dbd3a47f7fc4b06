"""Tiny fixtures for the apps: a pretrained run on a synthetic feed (test_vit at 32 px, a few steps) and its bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tagsight.train.config import PretrainConfig
from tagsight.train.distributed import DistEnv
from tagsight.train.pretrain import pretrain
from tests.feeds import feed_dataset

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pretrain_cpu_small.yaml"
TINY = ["model.name=test_vit", "model.img_size=32", "data.workers=0", "data.epoch_length=64", "data.batch_size=16",
        "loop.epochs=2", "optim.base_lr=0.05", "data.holdout_fraction=0.3", "loop.log_every=100"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(dataset, vocab.json, run folder) of a few-step hashtag pretraining on a 120-post synthetic feed."""
    root = tmp_path_factory.mktemp("apps")
    dataset, vocab_path = feed_dataset(root, n_posts=120, n_authors=12, image_size=48, seed=5)
    pretrain(dataset, vocab_path, root / "run", PretrainConfig.from_yaml(CONFIG, TINY), DistEnv())
    return dataset, vocab_path, root / "run"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, tmp_path_factory) -> Path:
    """A bundle folder over the tiny run with calibration.json (lenient targets so some concepts qualify; no
    pictures of nothing, so no open-set guard: tests/apps/test_openset.py covers the guard)."""
    from tagsight.apps.bundle import init_bundle
    from tagsight.apps.calibration import CalibrationConfig, calibrate_run

    _, _, run = tiny_run
    bundle = init_bundle(tmp_path_factory.mktemp("bundle"), str(run))
    calibrate_run(run, bundle, CalibrationConfig(target_precision=0.3, min_support=1, z=0.0, rendered_unseen=0))
    return bundle


def coloured(colour: tuple[int, int, int], seed: int, size: int = 40) -> Image.Image:
    """A noisy image around ``colour``."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.asarray(colour)[None, None, :] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def colour_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int = 16) -> Path:
    for k, (name, colour) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coloured(colour, 1000 * k + i).save(root / name / f"{i:03d}.jpg", quality=95)
    return root


@pytest.fixture
def make_colour_folder():
    return colour_folder


@pytest.fixture
def make_coloured():
    return coloured
