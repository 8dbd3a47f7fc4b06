"""Datasets on object storage: the sample index and its reads against moto's S3 server on 127.0.0.1 (s3fs)."""

import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.data.index import SampleIndex  # noqa: E402
from tagsight.fsio import ReasonError  # noqa: E402
from tagsight.schema.catalog import load_manifest  # noqa: E402
from tagsight.privacy.tombstones import Tombstone, add_tombstones  # noqa: E402
from tagsight.storage import CacheConfig, RemoteFiles, cache_bytes, dataset_path, is_url  # noqa: E402
from tests.feeds import feed_dataset  # noqa: E402
from tests.s3server import FaultyProxy, environ, moto_s3, s3_env, upload  # noqa: E402


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return feed_dataset(tmp_path_factory.mktemp("s3"), n_posts=40, n_authors=5, image_size=64, seed=3)[0]


@pytest.fixture(scope="module")
def s3(local):
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(local, "s3://photos/ds")
        yield endpoint


def no_cache(tmp_path):
    return CacheConfig(folder=tmp_path / "cache", max_bytes=0)


def test_dataset_paths_keep_local_folders_and_recognise_urls(tmp_path):
    assert dataset_path(str(tmp_path)) == tmp_path and dataset_path(f"file://{tmp_path}") == tmp_path
    assert dataset_path("s3://photos/ds/") == "s3://photos/ds" and is_url("memory://ds") and not is_url(tmp_path)


def test_index_and_reads_from_s3_equal_those_from_local_disk(local, s3, tmp_path):
    here = SampleIndex.build(local)
    there = SampleIndex.build("s3://photos/ds", cache=CacheConfig(folder=tmp_path / "cache", block_bytes=4096))
    assert there.version == here.version and there.keys == here.keys and there.post_keys == here.post_keys
    assert (there.jpg_offset == here.jpg_offset).all() and there.hashtags == here.hashtags
    assert all(there.read_jpeg(i) == here.read_jpeg(i) and there.read_meta(i) == here.read_meta(i)
               for i in range(len(here)))


def test_a_sample_read_fetches_its_byte_range_only(local, s3, tmp_path):
    index = SampleIndex.build("s3://photos/ds", cache=no_cache(tmp_path))
    shard_bytes = load_manifest(local)["shards"][0]["bytes"]
    before = index.remote.stats.fetched_bytes
    data = index.read_jpeg(7)
    assert index.remote.stats.fetched_bytes - before == len(data) == index.jpg_size[7] < shard_bytes // 10
    assert index.remote.stats.requests > 0 and "shard-00000.tar" in index.remote._sizes   # sizes from the manifest


def test_the_index_is_scanned_once_then_read_from_the_local_cache(s3, tmp_path):
    cache = CacheConfig(folder=tmp_path / "cache", max_bytes=0)
    SampleIndex.build("s3://photos/ds", cache=cache)
    again = SampleIndex.build("s3://photos/ds", cache=cache)
    assert again.remote.stats.requests == 0 and len(again) > 0
    assert list((tmp_path / "cache" / "index").glob("*.parquet"))


def test_the_block_cache_stays_under_its_limit_and_evicts_the_least_recently_used(s3, tmp_path):
    cache = CacheConfig(folder=tmp_path / "cache", max_bytes=4 * 1024, block_bytes=1024)
    files = RemoteFiles("s3://photos/ds/shards", "v1", cache)
    name = "shard-00000.tar"
    first = files.read(name, 0, 1024)
    for block in range(1, 8):
        files.read(name, block * 1024, 1024)
        time.sleep(0.01)
        files.read(name, 0, 1024)          # block 0 stays the most recently used
        assert cache_bytes(cache.folder) <= cache.max_bytes
    fetched = files.stats.fetched_bytes
    assert files.read(name, 0, 1024) == first and files.stats.fetched_bytes == fetched   # a hit
    files.read(name, 1024, 1024)                                                          # evicted: fetched again
    assert files.stats.fetched_bytes == fetched + 1024


def test_cached_blocks_of_another_dataset_version_are_not_served(s3, tmp_path):
    cache = CacheConfig(folder=tmp_path / "cache", block_bytes=1024)
    RemoteFiles("s3://photos/ds/shards", "v1", cache).read("shard-00000.tar", 0, 100)
    other = RemoteFiles("s3://photos/ds/shards", "v2", cache)
    other.read("shard-00000.tar", 0, 100)
    assert other.stats.cached_bytes == 0 and other.stats.fetched_bytes == 1024


def test_a_connection_dropped_mid_read_is_retried(local, s3, tmp_path):
    proxy = FaultyProxy(("127.0.0.1", int(s3.rsplit(":", 1)[1])), drops=2)
    try:
        with environ({"AWS_ENDPOINT_URL": proxy.endpoint}):
            index = SampleIndex.build("s3://photos/ds", cache=no_cache(tmp_path))
            assert index.read_jpeg(3) == SampleIndex.build(local).read_jpeg(3)
    finally:
        proxy.close()
    assert proxy.dropped == 2


def test_a_slow_server_is_waited_for(local, s3, tmp_path):
    proxy = FaultyProxy(("127.0.0.1", int(s3.rsplit(":", 1)[1])), delay=0.3)
    try:
        with environ({"AWS_ENDPOINT_URL": proxy.endpoint}):
            files = RemoteFiles("s3://photos/ds/shards", "v1", no_cache(tmp_path))
            start = time.monotonic()
            data = files.read("shard-00000.tar", 512, 2000)
            assert time.monotonic() - start >= 0.3
    finally:
        proxy.close()
    assert data == (local / "shards" / "shard-00000.tar").read_bytes()[512:2512]


def _read_in_worker(index_bytes: bytes, rows: list[int]) -> list[bytes]:
    index = pickle.loads(index_bytes)
    return [index.read_jpeg(i) for i in rows]


def test_workers_open_their_own_connections(local, s3, tmp_path):
    index = SampleIndex.build("s3://photos/ds", cache=no_cache(tmp_path))
    index.read_jpeg(0)                                   # the parent holds an open filesystem
    state = pickle.dumps(index)
    assert pickle.loads(state).remote._fs is None        # never pickled
    with ProcessPoolExecutor(2, mp_context=get_context("fork")) as pool:
        halves = list(pool.map(_read_in_worker, [state, state], [[0, 2, 4], [1, 3, 5]]))
    here = SampleIndex.build(local)
    assert halves == [[here.read_jpeg(i) for i in (0, 2, 4)], [here.read_jpeg(i) for i in (1, 3, 5)]]


def test_forgotten_posts_are_left_out_on_s3_as_on_disk(local, s3, tmp_path):
    copy = tmp_path / "ds"
    import shutil
    shutil.copytree(local, copy)
    victim = SampleIndex.build(copy).author_ids[0]
    add_tombstones(copy, [Tombstone("author", victim, "request")])
    upload(copy, "s3://photos/forgot")
    here, there = SampleIndex.build(copy), SampleIndex.build("s3://photos/forgot", cache=no_cache(tmp_path))
    assert there.forgotten == here.forgotten > 0 and there.keys == here.keys


def test_a_dataset_without_manifest_is_refused(s3, tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        SampleIndex.build("s3://photos/nothing", cache=no_cache(tmp_path))


def test_a_shard_gone_from_the_store_is_named(local, s3, tmp_path):
    import s3fs
    copy_url = "s3://photos/gone"
    upload(local, copy_url)
    index = SampleIndex.build(copy_url, cache=no_cache(tmp_path))
    s3fs.S3FileSystem(skip_instance_cache=True).rm(f"photos/gone/shards/{index.shard_names[0]}")
    fresh = SampleIndex.build(copy_url, cache=no_cache(tmp_path))
    with pytest.raises(ReasonError) as err:
        fresh.read_jpeg(0)
    assert err.value.reason == "shard_missing"


def test_a_memory_url_dataset_reads_like_the_folder(local, tmp_path):
    import fsspec
    fs = fsspec.filesystem("memory")
    for path in sorted(p for p in local.rglob("*") if p.is_file() and p.name != "index.parquet"):
        fs.pipe_file(f"/mem-ds/{path.relative_to(local).as_posix()}", path.read_bytes())
    here = SampleIndex.build(local)
    there = SampleIndex.build("memory://mem-ds", cache=CacheConfig(folder=tmp_path / "cache", block_bytes=2048))
    assert there.keys == here.keys and [there.read_jpeg(i) for i in range(5)] == [here.read_jpeg(i) for i in range(5)]


def test_temporary_files_of_a_killed_writer_are_counted_and_evicted_first(tmp_path):
    from tagsight.storage.blocks import STALE_TEMP_S, evict

    blocks = tmp_path / "blocks" / "ab"
    blocks.mkdir(parents=True)
    block, stale, live = blocks / "ab01", blocks / ".ab02.4242.1.tmp", blocks / ".ab03.4343.1.tmp"
    for path in (block, stale, live):
        path.write_bytes(b"x" * 100)
    old = time.time() - STALE_TEMP_S - 60
    os.utime(stale, (old, old))
    os.utime(block, (old + 30, old + 30))      # older than the stale temp's own time, still evicted after it
    assert cache_bytes(tmp_path) == 200        # the block and the stale temp; the live write is not yet the cache's
    assert evict(tmp_path, 150) == 100
    assert block.exists() and live.exists() and not stale.exists()
