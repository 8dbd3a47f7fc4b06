"""Decontamination: eval images found in the pretraining pool (exact or near pHash) are removed and counted."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tagsight.eval import decontaminate as dc
from tagsight.eval.datasets import open_labelled
from tagsight.eval.transfer import TransferInputs, open_sets, resolve_pool
from tagsight.fsio import ReasonError
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.train.distributed import DistEnv


def picture(seed: int, size=(200, 160)) -> Image.Image:
    """A distinct textured picture per seed (a 10 x 10 colour grid, smoothly upscaled)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """An ingested pool of 4 distinct photos (folder source), and the source folder."""
    root = tmp_path_factory.mktemp("pool")
    for i in range(4):
        (root / "src").mkdir(exist_ok=True)
        picture(100 + i).save(root / "src" / f"p{i}.jpg", quality=92)
    ingest(open_source(root / "src", "folder"), root / "ds",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=64)))
    return root / "ds", root / "src"


def eval_set(root: Path, src: Path) -> Path:
    """cat: an exact copy and a re-encoded, resized copy of pool photos; dog: two photos not in the pool."""
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    shutil.copy(src / "p0.jpg", root / "cat" / "copied.jpg")
    with Image.open(src / "p1.jpg") as img:
        img.resize((180, 144), Image.Resampling.LANCZOS).save(root / "cat" / "reencoded.jpg", quality=75)
    picture(500).save(root / "dog" / "other1.jpg", quality=92)
    picture(501).save(root / "dog" / "other2.jpg", quality=92)
    return root


def test_copied_and_reencoded_images_are_found_a_different_one_is_not(pool, tmp_path):
    dataset, src = pool
    images = open_labelled(eval_set(tmp_path / "val", src))
    kept, report = dc.decontaminate(images, dc.Pool.from_dataset(dataset))
    matches = {m["image"]: m for m in report["matches"]}
    assert set(matches) == {"cat/copied.jpg", "cat/reencoded.jpg"}
    assert matches["cat/copied.jpg"]["kind"] == "exact" and matches["cat/copied.jpg"]["pool"].endswith("#0")
    assert matches["cat/reencoded.jpg"]["kind"] == "near" and matches["cat/reencoded.jpg"]["distance"] <= 3
    assert (report["images"], report["found"], report["exact"], report["near"], report["removed"], report["kept"]) \
        == (4, 2, 1, 1, 2, 2)
    assert len(kept) == 2 and [kept.name(i) for i in range(2)] == ["dog/other1.jpg", "dog/other2.jpg"]
    assert kept.classes == images.classes and kept.labels.tolist() == [1, 1] and kept.identity != images.identity


def test_pool_uses_ingest_default_radius_and_image_settings(pool):
    p = dc.Pool.from_dataset(pool[0])
    assert p.radius == IngestConfig().near_duplicate_radius and p.image_config.max_side == 64
    assert len(p.keys) == 4


def test_an_image_ingest_rejects_is_kept_and_counted_unchecked(pool, tmp_path):
    root = eval_set(tmp_path / "val", pool[1])
    Image.new("RGB", (4, 4), "red").save(root / "dog" / "tiny.png")
    kept, report = dc.decontaminate(open_labelled(root), dc.Pool.from_dataset(pool[0]))
    assert report["unchecked"] == 1 and report["unchecked_reasons"] == {"tiny_image": 1}
    assert report["checked"] + report["unchecked"] == report["images"] == 5 and len(kept) == 3


def test_hashes_are_cached_per_dataset(pool, tmp_path, monkeypatch):
    images = open_labelled(eval_set(tmp_path / "val", pool[1]))
    p = dc.Pool.from_dataset(pool[0])
    first = dc.find_matches(images, p, cache_dir=tmp_path / "cache")[1]
    monkeypatch.setattr(dc, "hash_bytes", lambda *a: pytest.fail("hashed again instead of reading the cache"))
    assert dc.find_matches(images, p, cache_dir=tmp_path / "cache")[1] == first


def test_hashing_in_worker_processes_gives_the_same_matches(pool, tmp_path):
    images = open_labelled(eval_set(tmp_path / "val", pool[1]))
    p = dc.Pool.from_dataset(pool[0])
    assert dc.find_matches(images, p, workers=2)[1] == dc.find_matches(images, p, workers=0)[1]


def test_missing_pool_has_a_reason(tmp_path):
    with pytest.raises(ReasonError) as info:
        dc.Pool.from_dataset(tmp_path / "nothing")
    assert info.value.reason == "missing_pool"


def fake_run(root: Path, dataset: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("{}\n")
    (root / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {"path": str(dataset)}}))
    return root


def test_default_on_for_a_run_backbone_off_on_request_and_pool_required_when_forced(pool, tmp_path):
    dataset, _ = pool
    run = fake_run(tmp_path / "run", dataset)
    base = dict(train=tmp_path, val=tmp_path)
    assert resolve_pool(TransferInputs(backbone=str(run), **base)) == dataset
    assert resolve_pool(TransferInputs(backbone=str(run / "checkpoints" / "step-1"), **base)) is None  # not a folder
    assert resolve_pool(TransferInputs(backbone=str(run), decontaminate=False, **base)) is None
    assert resolve_pool(TransferInputs(backbone="timm:test_vit", **base)) is None
    assert resolve_pool(TransferInputs(backbone="timm:test_vit", pool=dataset, **base)) == dataset
    with pytest.raises(ReasonError) as info:
        resolve_pool(TransferInputs(backbone="timm:test_vit", decontaminate=True, **base))
    assert info.value.reason == "no_pool"


def test_open_sets_removes_matches_from_train_and_val_and_reports_both(pool, tmp_path):
    dataset, src = pool
    train, val = eval_set(tmp_path / "train", src), tmp_path / "val"
    shutil.copytree(train / "dog", val / "dog")
    (val / "cat").mkdir()
    shutil.copy(src / "p2.jpg", val / "cat" / "leak.jpg")
    inputs = TransferInputs(backbone="timm:test_vit", train=train, val=val, pool=dataset, workers=0)
    sets, report = open_sets(inputs, DistEnv())
    assert report["enabled"] and report["pool"]["hashed_media"] == 4
    # only the scored split is decontaminated; the train split's overlap is counted, not removed
    assert (report["train"]["found"], report["train"]["removed"], report["val"]["removed"]) == (2, 0, 1)
    assert (len(sets["train"]), len(sets["val"])) == (4, 2) and sets["val"].classes == sets["train"].classes


def test_shard_datasets_hash_their_stored_jpegs(pool, tmp_path):
    """An ingested eval set: its stored (re-encoded) JPEGs still match the pool by pHash."""
    dataset, src = pool
    (tmp_path / "src" / "cat").mkdir(parents=True)
    shutil.copy(src / "p3.jpg", tmp_path / "src" / "cat" / "p3.jpg")
    ingest(open_source(tmp_path / "src", "folder"), tmp_path / "ds",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=96)))
    images = open_labelled(tmp_path / "ds")
    assert Image.open(io.BytesIO(images.read_bytes(0))).size[0] == 96  # stored re-encoded, smaller
    _, report = dc.decontaminate(images, dc.Pool.from_dataset(dataset))
    assert report["found"] == 1 and report["matches"][0]["kind"] == "near"
