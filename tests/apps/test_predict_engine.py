"""Batch predict on an engine: blocks of files answered on the workers, the same rows and counts as in one process."""

from __future__ import annotations

import pytest
from PIL import Image

from tagsight.apps import predict
from tagsight.apps.predict import PredictConfig, predict_files
from tagsight.engines import EngineConfig, create_engine

CFG = PredictConfig(apps=("hashtags", "alt-text"), batch_size=2)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(7):
        Image.new("RGB", (40, 30), (30 * i, 90, 200 - 20 * i)).save(folder / f"{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.mark.slow
def test_the_local_pool_answers_blocks_with_the_same_rows_and_counts(tiny_bundle, photos, tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "BLOCK_BATCHES", 1)  # blocks of 2 files: 4 blocks, answered out of order
    alone = predict_files([photos], tiny_bundle, CFG, tmp_path / "alone.jsonl")
    with create_engine(EngineConfig(workers=2, start_method="spawn")) as engine:
        blocks = predict_files([photos], tiny_bundle, CFG, tmp_path / "engine.jsonl", engine)
        with pytest.raises(ValueError, match="device"):
            predict_files([photos], tiny_bundle, PredictConfig(apps=("hashtags",), device="cuda"), None, engine)
    assert blocks == alone == {"images": 8, "answered": 7, "unreadable": 1}
    assert (tmp_path / "engine.jsonl").read_bytes() == (tmp_path / "alone.jsonl").read_bytes()


ray = pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")


@pytest.mark.ray
@pytest.mark.slow
def test_predict_on_ray_from_the_cli_writes_the_same_rows(tiny_bundle, photos, tmp_path, capsys):
    from tagsight.cli import main

    args = ["-q", "predict", str(photos), "--app", "hashtags", "--app", "alt-text", "--bundle", str(tiny_bundle),
            "--batch-size", "2"]
    assert main(args + ["--out", str(tmp_path / "local.jsonl")]) == 0
    assert main(args + ["--out", str(tmp_path / "ray.jsonl"), "--engine", "ray"]) == 0
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert "8 images (7 answered, 1 unreadable)" in capsys.readouterr().err
