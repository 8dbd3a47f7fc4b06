"""index build / embeddings on an engine: the same feature bits and index files as in one process."""

from __future__ import annotations

import numpy as np
import pytest

from tagsight.apps.embedder import Embedder, embed_samples
from tagsight.apps.run import load_run
from tagsight.apps.similar import build_index
from tagsight.data.index import SampleIndex
from tagsight.engines import EngineConfig, create_engine


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "index.json"}


@pytest.mark.slow
def test_the_local_pool_embeds_the_same_bits_and_builds_the_same_index(tiny_run, tmp_path):
    embedder = Embedder(load_run(tiny_run[2]).backbone, batch_size=3)  # blocks of 12 rows: several blocks
    index = SampleIndex.build(tiny_run[0])
    rows = np.arange(len(index))
    alone = embed_samples(index, rows, embedder, "test")
    with create_engine(EngineConfig(workers=2, start_method="spawn")) as engine:
        blocks = embed_samples(index, rows, embedder, "test", engine)
        build_index(tiny_run[0], embedder, tmp_path / "engine", "tiny", engine)
    assert alone.shape == blocks.shape and np.array_equal(alone.view(np.uint32), blocks.view(np.uint32))
    build_index(tiny_run[0], embedder, tmp_path / "alone", "tiny")
    assert files(tmp_path / "engine") == files(tmp_path / "alone")
    with pytest.raises(ValueError, match="device"):
        embed_samples(index, rows, Embedder(load_run(tiny_run[2]).backbone, device="meta"), "test", engine)


ray = pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")


@pytest.mark.ray
@pytest.mark.slow
def test_index_build_on_ray_from_the_cli_writes_the_same_index(tiny_run, tmp_path, capsys):
    from tagsight.cli import main

    run = str(tiny_run[2])
    assert main(["-q", "index", "build", str(tiny_run[0]), "--backbone", run, "--out", str(tmp_path / "local")]) == 0
    assert main(["-q", "index", "build", str(tiny_run[0]), "--backbone", run, "--out", str(tmp_path / "ray"),
                 "--engine", "ray"]) == 0
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert not ray.is_initialized()  # the Ray started for the command was shut down
