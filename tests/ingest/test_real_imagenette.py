"""All imagenette-160 train photos ingest as a folder source with nothing silently dropped."""

import json
import tarfile

import pytest

from tagsight.schema import catalog
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source


@pytest.mark.slow
def test_every_imagenette_train_photo_is_accounted_for(shared_data, tmp_path):
    root = shared_data / "imagenette-160" / "train"
    files = [p for p in root.rglob("*") if p.is_file()]
    summary = ingest(open_source(root, "folder"), tmp_path / "ds",
                     cfg=IngestConfig(workers=2, image=ImageConfig(max_side=96)))
    assert summary.reconciles() and summary.posts_in == len(files) == 9469
    con = catalog.connect(tmp_path / "ds")
    labels = dict(con.execute("select label, count(*) from posts group by 1").fetchall())
    assert len(labels) == 10 and sum(labels.values()) == summary.posts_kept
    assert con.execute("select count(*) from hashtags").fetchone() == (0,)  # a folder name is not a hashtag
    samples = 0
    for shard in (tmp_path / "ds" / "shards").glob("*.tar"):
        with tarfile.open(shard) as tar:
            samples += sum(m.name.endswith(".jpg") for m in tar.getmembers())
    assert samples == summary.media_kept == summary.posts_kept
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["counts"]["posts_in"] == 9469
