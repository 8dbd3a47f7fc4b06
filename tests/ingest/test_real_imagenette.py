"""All imagenette-160 train photos ingest as a folder source with nothing silently dropped."""

import json
import os
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


# The dataset version of 300 of the photos (128 px, JPEG quality 90), as ingest wrote it before the
# speed-ups of bench/ingest/README.md: they must leave every stored byte as it was.
PINNED_VERSION = "bcd6a5a0a762850f"


def test_the_speed_ups_leave_the_dataset_version_of_real_photos_as_it_was(shared_data, tmp_path):
    root = shared_data / "imagenette-160" / "train"
    files = sorted(p for p in root.rglob("*") if p.is_file())[::31][:300]
    sample = tmp_path / "imagenette-sample"
    for f in files:
        dest = sample / f.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
        os.utime(dest, (1_700_000_000, 1_700_000_000))  # created_at comes from the file time
    cfg = IngestConfig(workers=1, samples_per_shard=100, image=ImageConfig(max_side=128, jpeg_quality=90))
    summary = ingest(open_source(sample, "folder"), tmp_path / "ds", cfg=cfg)
    assert summary.reconciles() and summary.media_kept == 300
    assert summary.version == PINNED_VERSION
