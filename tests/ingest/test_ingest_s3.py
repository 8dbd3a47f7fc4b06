"""``tagsight ingest SRC --out s3://...`` against moto's S3 server on 127.0.0.1: built in a staging folder, uploaded
with the manifest last; an interrupted upload leaves no dataset a reader takes for one, and a rerun completes it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.data.index import SampleIndex  # noqa: E402
from tagsight.schema.catalog import manifest_version  # noqa: E402
from tagsight.storage import CacheConfig, exists, publish_folder  # noqa: E402
from tests.feeds import feed_dataset  # noqa: E402
from tests.s3server import FaultyProxy, environ, moto_s3, s3_env, upload  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
FEW_RETRIES = json.dumps({"config_kwargs": {"retries": {"max_attempts": 1}}})


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest_s3")
    dataset, _ = feed_dataset(root, n_posts=30, n_authors=4, image_size=48, seed=9)
    return root / "feed" / "posts.jsonl", dataset


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(Path(__file__).parent, "s3://photos/unrelated")   # creates the bucket
        yield endpoint


def test_ingest_to_an_s3_url_writes_a_dataset_training_reads(feed, s3, tmp_path):
    posts, local = feed
    env = {**os.environ, "PYTHONPATH": SRC, "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "tagsight.cli", "ingest", str(posts), "--out", "s3://photos/new",
                           "--max-side", "48", "--workers", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert exists("s3://photos/new/index.parquet") and exists("s3://photos/new/manifest.json")
    staging = tmp_path / "cache" / "staging"
    assert not staging.exists() or not any(staging.iterdir())           # removed once the upload is complete
    there = SampleIndex.build("s3://photos/new", cache=CacheConfig(folder=tmp_path / "reader", max_bytes=0))
    here = SampleIndex.build(local)
    assert there.keys == here.keys and there.read_jpeg(0) == here.read_jpeg(0)
    assert there.remote.stats.requests == 1   # the index came with the dataset: no shard scan


def test_a_source_at_an_s3_url_is_ingested_like_its_local_copy_and_no_copy_is_kept(feed, s3, tmp_path):
    posts, _ = feed
    upload(posts.parent, "s3://photos/exports/feed")                    # posts.jsonl and its photos
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": SRC, "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp")}
    args = ["--max-side", "48", "--workers", "1", "--json"]
    runs = {}
    for name, source in (("url", "s3://photos/exports/feed"), ("local", str(posts.parent))):
        done = subprocess.run([sys.executable, "-m", "tagsight.cli", "ingest", source, "--out",
                               str(tmp_path / name), *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[name] = json.loads(done.stdout)
    assert manifest_version(tmp_path / "url") == manifest_version(tmp_path / "local")
    assert runs["url"]["posts_kept"] == runs["local"]["posts_kept"] > 0
    assert not list((tmp_path / "tmp").iterdir())                         # the download is gone after the run
    cached = [p.name for p in (tmp_path / "cache").rglob("*")] if (tmp_path / "cache").exists() else []
    assert "posts.jsonl" not in cached                                    # and nothing of the raw export is cached
    missing = subprocess.run([sys.executable, "-m", "tagsight.cli", "ingest", "s3://photos/exports/none", "--out",
                              str(tmp_path / "none")], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "artifact_missing" in missing.stderr and "s3://photos/exports/none" in missing.stderr


def test_an_interrupted_upload_is_no_dataset_and_a_rerun_completes_it(feed, s3, tmp_path):
    _, local = feed
    publish_folder(local, "s3://photos/ds")          # an earlier, complete version
    SampleIndex.build("s3://photos/ds", cache=CacheConfig(folder=tmp_path / "c1", max_bytes=0))
    proxy = FaultyProxy(("127.0.0.1", int(s3.rsplit(":", 1)[1])), cutoff=4)
    try:
        with environ({"AWS_ENDPOINT_URL": proxy.endpoint, "TAGSIGHT_STORAGE_OPTIONS": FEW_RETRIES,
                      "TAGSIGHT_STORAGE_ATTEMPTS": "2"}):
            with pytest.raises(Exception, match="2 attempts failed"):
                publish_folder(local, "s3://photos/ds")
    finally:
        proxy.close()
    assert proxy.requests > 4
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        SampleIndex.build("s3://photos/ds", cache=CacheConfig(folder=tmp_path / "c2", max_bytes=0))
    publish_folder(local, "s3://photos/ds")
    again = SampleIndex.build("s3://photos/ds", cache=CacheConfig(folder=tmp_path / "c3", max_bytes=0))
    assert again.version == manifest_version(local) and len(again) == len(SampleIndex.build(local))


def test_an_ingest_whose_upload_dies_says_so_and_the_same_command_completes_it(feed, s3, tmp_path):
    posts, local = feed
    cmd = [sys.executable, "-m", "tagsight.cli", "ingest", str(posts), "--out", "s3://photos/cli", "--max-side", "48",
           "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": SRC, "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    proxy = FaultyProxy(("127.0.0.1", int(s3.rsplit(":", 1)[1])), cutoff=5)
    try:
        dead = {**env, "AWS_ENDPOINT_URL": proxy.endpoint, "TAGSIGHT_STORAGE_OPTIONS": FEW_RETRIES,
                "TAGSIGHT_STORAGE_ATTEMPTS": "2"}
        done = subprocess.run(cmd, env=dead, capture_output=True, text=True, timeout=120)
    finally:
        proxy.close()
    assert done.returncode == 1 and "run the same command again" in done.stderr, done.stderr[-2000:]
    assert not exists("s3://photos/cli/manifest.json")
    assert any((tmp_path / "cache" / "staging").iterdir())            # kept for the rerun
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    there = SampleIndex.build("s3://photos/cli", cache=CacheConfig(folder=tmp_path / "reader", max_bytes=0))
    assert there.version == manifest_version(local) and there.keys == SampleIndex.build(local).keys

