"""Checkpoints published to object storage as they are saved: checkpoint files first, ``checkpoints/latest`` last,
so that a reader (or a rerun on another machine) only ever finds complete checkpoints."""

import json

import pytest
import torch

from tagsight.cli.pretrain import publish_checkpoint
from tagsight.storage import exists, open_filesystem, publish_changes, publish_folder, read_bytes
from tagsight.train.checkpoint import after_checkpoint, save_checkpoint


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def stored(url):
    fs, inner = open_filesystem(url)
    return sorted(p.split(inner.strip("/") + "/", 1)[1] for p in fs.find(inner))


def test_every_checkpoint_goes_up_as_it_is_saved_and_removed_ones_go_away(tmp_path):
    url, run = "memory://runs/published", tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"kind": "pretrain"}')
    model, optimizer = model_and_optimizer()
    seen = []
    with after_checkpoint(lambda folder, ckpt: seen.append(ckpt.name)), \
            after_checkpoint(lambda folder, _: publish_checkpoint(folder, url)):
        for step in (1, 2, 3):
            save_checkpoint(run, step, model, optimizer, {"epoch": 0, "batches_done": step}, keep_last=2)
            assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == f"step-{step:08d}"
            state = json.loads(read_bytes(f"{url}/checkpoints/step-{step:08d}/state.json"))
            assert state["step"] == step
    save_checkpoint(run, 4, model, optimizer, {"epoch": 0, "batches_done": 4}, keep_last=2)   # the hook is gone
    assert seen == ["step-00000001", "step-00000002", "step-00000003"]
    assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == "step-00000003"
    names = stored(url)
    assert "run.json" in names and not any(n.startswith("checkpoints/step-00000001") for n in names)
    assert {n.split("/")[1] for n in names if n.startswith("checkpoints/step-")} == {"step-00000002", "step-00000003"}
    leftover = run / "checkpoints" / ".tmp-step-00000005"   # a save interrupted by a kill: never published
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    assert publish_changes(run, url, last=("run.json",)) > 0          # step 4, unpublished so far
    assert publish_changes(run, url, last=("run.json",)) == 0         # nothing changed since
    publish_folder(run, url, last="run.json", prune=True)
    assert not any(".tmp-" in name for name in stored(url))
    assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == "step-00000004"


def test_a_publish_cut_off_leaves_the_last_complete_checkpoint_named_and_the_next_completes_it(tmp_path):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.s3server import FaultyProxy, bucket, environ, moto_s3, s3_env

    url, run = "s3://checkpoint-publish/runs/r", tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"kind": "pretrain"}')
    model, optimizer = model_and_optimizer()
    few = json.dumps({"config_kwargs": {"retries": {"max_attempts": 1}}})
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(url)
        save_checkpoint(run, 1, model, optimizer, {"epoch": 0, "batches_done": 1})
        publish_checkpoint(run, url)
        save_checkpoint(run, 2, model, optimizer, {"epoch": 0, "batches_done": 2})
        proxy = FaultyProxy(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), cutoff=2)
        try:
            with environ({"AWS_ENDPOINT_URL": proxy.endpoint, "TAGSIGHT_STORAGE_OPTIONS": few,
                          "TAGSIGHT_STORAGE_ATTEMPTS": "2"}):
                publish_checkpoint(run, url)   # a warning, not an error: training goes on
        finally:
            proxy.close()
        assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == "step-00000001"
        assert exists(f"{url}/checkpoints/step-00000001/model.safetensors")
        assert not all(exists(f"{url}/checkpoints/step-00000002/{n}")
                       for n in ("model.safetensors", "optim.safetensors", "rng.safetensors", "state.json"))
        publish_checkpoint(run, url)
        assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == "step-00000002"
        for name in ("model.safetensors", "optim.safetensors", "rng.safetensors", "state.json"):
            assert read_bytes(f"{url}/checkpoints/step-00000002/{name}") == \
                (run / "checkpoints" / "step-00000002" / name).read_bytes()
