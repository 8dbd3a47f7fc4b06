"""Pretraining streamed from object storage (moto's S3 server on 127.0.0.1): killed with SIGKILL and resumed, the run
ends on the same weights, bit for bit, as the same run from local disk."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.train.checkpoint import latest_checkpoint  # noqa: E402
from tests.feeds import feed_dataset  # noqa: E402
from tests.s3server import environ, moto_s3, s3_env, upload  # noqa: E402
from tests.train.test_pretrain import ENV, TINY, cli, weights  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from common import kill_tree  # noqa: E402

ARGS = ["data.epoch_length=64", "data.batch_size=8", "loop.epochs=4", "loop.checkpoint_every=3", "data.workers=2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return feed_dataset(tmp_path_factory.mktemp("pretrain_s3"), n_posts=120, n_authors=12, image_size=48, seed=5)


def test_a_run_from_s3_killed_and_resumed_ends_on_the_weights_of_the_run_from_disk(tiny, tmp_path, monkeypatch):
    """Dataset, vocabulary and run folder all on S3: the run trains in a local staging folder and publishes each
    checkpoint; killed, the rerun resumes in its staging folder and publishes the run (run.json last); its weights
    equal the run from disk."""
    from tagsight.storage import CacheConfig, exists, local_folder, read_bytes, staging_folder

    dataset, vocab = tiny
    cli(dataset, vocab, tmp_path / "local", *ARGS)
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(dataset, "s3://photos/ds")
        upload(Path(vocab).parent, "s3://photos/vocab")
        for key, value in {**s3_env(endpoint), "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache"),
                           "TAGSIGHT_CACHE_BLOCK": "8192"}.items():
            monkeypatch.setitem(ENV, key, value)
        staging = staging_folder("s3://photos/runs/r", CacheConfig(folder=tmp_path / "cache"))
        proc = cli("s3://photos/ds", "s3://photos/vocab", "s3://photos/runs/r", *ARGS, wait=False)
        deadline = time.time() + 120
        while latest_checkpoint(staging) is None and time.time() < deadline:
            time.sleep(0.05)
        kill_tree(proc.pid)
        proc.wait()
        killed_at = json.loads((latest_checkpoint(staging) / "state.json").read_text())["step"]
        assert 0 < killed_at < 32
        if exists("s3://photos/runs/r/checkpoints/latest"):   # the kill may come before the first one is published
            published_at = read_bytes("s3://photos/runs/r/checkpoints/latest").decode().strip()
            assert int(published_at.removeprefix("step-")) <= killed_at, "the store names only checkpoints saved"
        cli("s3://photos/ds", "s3://photos/vocab", "s3://photos/runs/r", *ARGS)
        monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "reader"))
        published = local_folder("s3://photos/runs/r", marker="run.json")
    a, b = weights(tmp_path / "local"), weights(published)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    run = json.loads((published / "run.json").read_text())
    assert run["dataset"]["path"] == "s3://photos/ds" and run["vocab"]["path"] == "s3://photos/vocab"
    assert list((tmp_path / "cache" / "blocks").glob("*/*")), "the shards were read through the local cache"
    assert os.environ.get("AWS_ENDPOINT_URL") != endpoint   # the test left the environment as it found it


def test_two_ranks_streaming_from_s3_end_on_the_weights_of_two_ranks_from_disk(tiny, tmp_path, monkeypatch):
    dataset, vocab = tiny
    common = ["data.epoch_length=64", "loop.max_steps=2", "loop.checkpoint_every=1", "data.batch_size=8"]
    cli(dataset, vocab, tmp_path / "local", *common, torchrun=2)
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(dataset, "s3://photos/ds")
        for key, value in {**s3_env(endpoint), "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache")}.items():
            monkeypatch.setitem(ENV, key, value)
        cli("s3://photos/ds", vocab, tmp_path / "s3", *common, torchrun=2)
    assert json.loads((tmp_path / "s3" / "run.json").read_text())["world_size"] == 2
    a, b = weights(tmp_path / "local"), weights(tmp_path / "s3")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_on_one_machine_resumes_on_a_fresh_one_from_the_last_published_checkpoint(tiny, tmp_path,
                                                                                               monkeypatch):
    """Each checkpoint is published as it is saved: SIGKILL the run after its first one reached the store, wipe the
    local staging folder and cache (another machine), rerun: it resumes at the published step and ends on the
    weights of the uninterrupted run from disk, bit for bit."""
    import shutil

    from tagsight.storage import CacheConfig, local_folder, read_bytes, staging_folder

    dataset, vocab = tiny   # moto keeps its buckets across servers in one process: a run folder of its own
    cli(dataset, vocab, tmp_path / "local", *ARGS)
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(dataset, "s3://photos/ds")
        upload(Path(vocab).parent, "s3://photos/vocab")
        for key, value in {**s3_env(endpoint), "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache")}.items():
            monkeypatch.setitem(ENV, key, value)
        staging = staging_folder("s3://photos/runs/moved", CacheConfig(folder=tmp_path / "cache"))
        proc = cli("s3://photos/ds", "s3://photos/vocab", "s3://photos/runs/moved", *ARGS, wait=False)
        deadline = time.time() + 120
        while time.time() < deadline and (latest_checkpoint(staging) is None   # the second checkpoint is saved
                                          or latest_checkpoint(staging).name < "step-00000006"):   # so the first
            time.sleep(0.02)                                                   # one is on the store
        kill_tree(proc.pid)
        proc.wait()
        latest = read_bytes("s3://photos/runs/moved/checkpoints/latest").decode().strip()
        step = json.loads(read_bytes(f"s3://photos/runs/moved/checkpoints/{latest}/state.json"))["step"]
        assert 0 < step < 32
        shutil.rmtree(tmp_path / "cache")   # a fresh machine: no staging folder, no cache
        cmd = [sys.executable, "-m", "tagsight.cli", "pretrain", "s3://photos/ds", "--vocab", "s3://photos/vocab",
               "--out", "s3://photos/runs/moved", "--json"]
        for s in [*TINY, *ARGS]:
            cmd += ["--set", s]
        done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"resumed from {latest}: step {step}," in done.stderr
        monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "reader"))
        published = local_folder("s3://photos/runs/moved", marker="run.json")
    a, b = weights(tmp_path / "local"), weights(published)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((published / "eval.json").read_text())["step"] == 32
