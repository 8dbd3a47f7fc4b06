"""Pretraining end to end on a tiny demo dataset: CLI, torchrun with 2 gloo processes, SIGKILL and resume."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tagsight.schema.catalog import manifest_version
from tagsight.train.checkpoint import latest_checkpoint
from tests.feeds import feed_dataset
from tests.torchrun import torchrun as launcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from common import kill_tree  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
TINY = ["model.name=test_vit", "model.img_size=32", "data.workers=0", "loop.log_every=1", "optim.base_lr=0.05"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return feed_dataset(tmp_path_factory.mktemp("pretrain"), n_posts=120, n_authors=12, image_size=48, seed=5)


def cli(dataset, vocab, out, *sets, torchrun=0, wait=True):
    base = ["-m", "tagsight.cli", "-q", "pretrain", str(dataset), "--vocab", str(vocab), "--out", str(out), "--json"]
    cmd = [sys.executable, *launcher(torchrun), *base]
    for s in [*TINY, *sets]:
        cmd += ["--set", s]
    if not wait:
        return subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def weights(run):
    return load_file(str(latest_checkpoint(run) / "model.safetensors"))


def test_run_folder_records_config_lineage_metrics_and_evaluation(tiny, tmp_path):
    dataset, vocab = tiny
    result = cli(dataset, vocab, tmp_path / "run", "data.epoch_length=64", "data.batch_size=8", "loop.epochs=3")
    run = tmp_path / "run"
    assert {"config.yaml", "run.json", "metrics.jsonl", "eval.json", "checkpoints"} <= {p.name for p in run.iterdir()}
    lineage = json.loads((run / "run.json").read_text())
    assert lineage["dataset"]["manifest_version"] == manifest_version(dataset)
    assert lineage["vocab"]["version"] == json.loads(vocab.read_text())["version"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 25)) and rows[-1]["loss"] < rows[0]["loss"]
    assert result["step"] == 24 and 0 <= result["trained"]["mAP"] <= 1 and result["untrained"]["n_samples"] > 0


def test_two_gloo_processes_take_the_same_step_as_one_process_on_the_same_samples(tiny, tmp_path):
    dataset, vocab = tiny
    common = ["data.epoch_length=64", "loop.max_steps=2", "loop.checkpoint_every=1", "optim.warmup_fraction=0"]
    cli(dataset, vocab, tmp_path / "one", *common, "data.batch_size=16")
    cli(dataset, vocab, tmp_path / "two", *common, "data.batch_size=8", torchrun=2)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5), key
    start = load_file(str(latest_checkpoint(tmp_path / "one").parent / "step-00000001" / "model.safetensors"))
    assert any(not torch.equal(start[k], one[k]) for k in one)  # the second step moved the weights


def test_sigkill_then_the_same_command_resumes_to_the_same_weights(tiny, tmp_path):
    dataset, vocab = tiny
    args = ["data.epoch_length=64", "data.batch_size=8", "loop.epochs=4", "loop.checkpoint_every=3"]
    cli(dataset, vocab, tmp_path / "straight", *args)
    proc = cli(dataset, vocab, tmp_path / "killed", *args, wait=False)
    deadline = time.time() + 120
    while latest_checkpoint(tmp_path / "killed") is None and time.time() < deadline:
        time.sleep(0.05)
    kill_tree(proc.pid)   # torchrun's workers run in sessions of their own: kill them by parentage
    proc.wait()
    killed_at = json.loads((latest_checkpoint(tmp_path / "killed") / "state.json").read_text())["step"]
    assert 0 < killed_at < 32
    cli(dataset, vocab, tmp_path / "killed", *args)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_on_another_vocabulary_is_refused(tiny, tmp_path):
    dataset, vocab = tiny
    cli(dataset, vocab, tmp_path / "run", "data.epoch_length=32", "data.batch_size=8", "loop.max_steps=1")
    other = json.loads(vocab.read_text())
    other["version"] = "0" * 16
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "vocab.json").write_text(json.dumps(other))
    cmd = [sys.executable, "-m", "tagsight.cli", "-q", "pretrain", str(dataset), "--vocab", str(tmp_path / "v2"),
           "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "another dataset or vocabulary" in done.stderr


def test_a_run_started_from_the_packaged_lite0_reopens_with_its_architecture_and_normalisation(tiny, tmp_path):
    from tagsight.eval.backbones import load_backbone
    from tagsight.models.pretrained import efficientnet_lite0_model

    dataset, vocab = tiny
    cli(dataset, vocab, tmp_path / "run", "model.name=efficientnet_lite0", "model.init=efficientnet-lite0",
        "data.epoch_length=16", "data.batch_size=8", "loop.epochs=1")
    lineage = json.loads((tmp_path / "run" / "run.json").read_text())
    assert lineage["backbone"] == "efficientnet_lite0" and lineage["init"] == "efficientnet-lite0"
    reopened = load_backbone(str(tmp_path / "run"))
    assert reopened.data_config.mean == (0.5, 0.5, 0.5)
    trained = weights(tmp_path / "run")
    own = reopened.model.state_dict()
    assert all(torch.equal(own[k], trained[f"backbone.model.{k}"]) for k in own)
    start = efficientnet_lite0_model().state_dict()["blocks.6.0.conv_pwl.weight"]
    moved = (own["blocks.6.0.conv_pwl.weight"] - start).abs().max().item()
    assert 0 < moved < 0.5 * start.abs().max().item()   # fine-tuned from the package weights, not from scratch
