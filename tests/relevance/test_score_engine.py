"""relevance score's feature extraction on an engine: the same feature bits as one process, cached alike."""

from __future__ import annotations

import numpy as np
import pytest

from tagsight.data.index import SampleIndex
from tagsight.engines import EngineConfig, create_engine
from tagsight.relevance import score
from tagsight.relevance.score import ScoreConfig, dataset_features

CFG = ScoreConfig(backbone="timm:resnet18", img_size=32, folds=2, epochs=2)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32),
                                                                                      b.view(np.uint32))


@pytest.mark.slow
def test_the_local_pool_extracts_the_same_bits_block_by_block_and_fills_the_same_cache(colour_dataset, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr(score, "FEATURE_BATCH", 16)
    monkeypatch.setattr(score, "FEATURE_BLOCK", 32)  # 61 samples: blocks of 32, 29; batches of 16 as in one process
    index = SampleIndex.build(colour_dataset["dataset"])
    alone, info = dataset_features(index, CFG, None)
    with create_engine(EngineConfig(workers=2, start_method="spawn")) as engine:
        blocks, info_engine = dataset_features(index, CFG, tmp_path / "cache", engine=engine)
    assert same_bits(blocks, alone) and info_engine == info and len(alone) == len(index) == 61
    cached, _ = dataset_features(index, CFG, tmp_path / "cache")  # read back from the file the engine run wrote
    assert same_bits(cached, alone) and len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


ray = pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")


@pytest.mark.ray
@pytest.mark.slow
def test_ray_extracts_the_same_bits(colour_dataset):
    index = SampleIndex.build(colour_dataset["dataset"])
    alone, _ = dataset_features(index, CFG, None)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        with create_engine(EngineConfig(name="ray")) as engine:
            on_ray, _ = dataset_features(index, CFG, None, engine=engine)
    finally:
        ray.shutdown()
    assert same_bits(on_ray, alone)
