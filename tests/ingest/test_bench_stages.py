"""bench/ingest/run.py's cost split follows the ingest code: every image step and stage is found and timed."""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import sys
from pathlib import Path

import pytest

from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ingest_run", REPO / "bench" / "ingest" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ingest_run"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def photos(tmp_path, make_picture) -> Path:
    root = tmp_path / "photos"
    for i in range(11):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        make_picture(i, (60, 45)).save(root / f"c{i % 2}" / f"{i}.jpg")
    return root


def test_the_image_steps_are_timed_batch_by_batch(bench, photos):
    files = sorted(photos.rglob("*.jpg"))
    costs = dict(bench.stage_costs(files, photos, argparse.Namespace(max_side=32, jpeg_quality=90)))
    assert set(costs) == {label for label, _ in bench.IMAGE_STAGES} | {"sha256 of the input bytes"}
    assert all(ms >= 0 for ms in costs.values()) and costs["decode (simplejpeg or Pillow, the same pixels)"] > 0


def test_the_profile_split_finds_every_stage_of_ingest(bench, photos, tmp_path):
    profiler = cProfile.Profile()
    cfg = IngestConfig(workers=1, samples_per_shard=5, image=ImageConfig(max_side=32))
    profiler.runcall(ingest, open_source(photos, "folder"), tmp_path / "ds", None, cfg)
    stages = dict(bench.profile_stages(pstats.Stats(profiler).stats))
    for label in ("decode (simplejpeg or Pillow, the same pixels)", "resize (area)", "perceptual hash",
                  "header + metadata checks", "read file + path safety checks", "sha256 of the input bytes", "per-image overhead (result dict, warnings)",
                  "shards: tar writing, fsync, shard sha256", "catalog: 5 Parquet tables"):
        assert stages[label] > 0, label
