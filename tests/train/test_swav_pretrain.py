"""`tagsight pretrain --objective swav` end to end on the tiny demo dataset: run folder and collapse check, a loss
that falls, 2 gloo processes equal to one (queue and local crops included), SIGKILL and exact resume across the
end of the prototype freeze."""

import json
import os
import signal
import time

import torch

from tagsight.train.checkpoint import latest_checkpoint

from tests.train.runs import objective_cli, rows, weights
from tests.train.test_pretrain import tiny  # noqa: F401  (module fixture: 120 synthetic posts + vocabulary)

# A LayerNorm ConvNeXt (no BatchNorm, so 2 ranks can equal 1) at 40 px globals and 32 px locals.
SWAV = ["model.name=test_convnext", "model.img_size=40", "data.workers=0", "loop.log_every=1",
        "data.multicrop.n_local=2", "data.multicrop.local_size=32", "objective.swav.prototypes=12",
        "objective.swav.projection_dim=16", "objective.swav.hidden_dim=0", "optim.base_lr=0.5",
        "optim.weight_decay=0.000001"]


cli = objective_cli("swav", SWAV)


def test_swav_run_folder_loss_falls_and_eval_reports_collapse(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    result, _ = cli(dataset, vocab, tmp_path / "run", "data.epoch_length=32", "data.batch_size=8", "loop.epochs=4",
                    "objective.swav.freeze_prototypes_epochs=1", "objective.swav.queue_length=16")
    run = tmp_path / "run"
    assert {"config.yaml", "run.json", "metrics.jsonl", "eval.json", "checkpoints"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "run.json").read_text())["objective"] == "swav"
    r = rows(run)
    assert [x["prototypes_frozen"] for x in r] == [1.0] * 4 + [0.0] * 12        # the first epoch: 4 steps
    assert [x["queue_used"] for x in r][:3] == [0.0, 0.0, 1.0]                   # 16 embeddings = 2 batches
    assert {"assign_entropy", "feature_std", "loss_swav"} <= set(r[0])
    first, last = sum(x["loss"] for x in r[:3]) / 3, sum(x["loss"] for x in r[-3:]) / 3
    assert last < first - 0.05, (first, last)
    c = result["collapse"]
    assert set(c) == {"collapsed", "reason", "assignment_entropy", "feature_std", "n_samples"} and c["n_samples"] > 0
    assert json.loads((run / "eval.json").read_text())["collapse"] == c


def test_a_collapsing_run_says_so_in_its_log_and_eval(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    # Thresholds above what a healthy tiny model reaches stand in for a collapsed run.
    result, stderr = cli(dataset, vocab, tmp_path / "run", "data.epoch_length=32", "data.batch_size=16",
                         "loop.epochs=1", "objective.swav.collapse_entropy=0.99", "objective.swav.collapse_std=0.99")
    assert result["collapse"]["collapsed"] is True and "<" in result["collapse"]["reason"]
    assert "WARNING" in stderr and "COLLAPSED" in stderr


def test_two_gloo_processes_take_the_same_swav_steps_as_one_process(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    common = ["data.epoch_length=64", "loop.epochs=2", "loop.checkpoint_every=1", "optim.warmup_fraction=0",
              "objective.swav.freeze_prototypes_epochs=0.5", "objective.swav.queue_length=32"]
    cli(dataset, vocab, tmp_path / "one", *common, "data.batch_size=16")
    cli(dataset, vocab, tmp_path / "two", *common, "data.batch_size=8", torchrun=2)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys() and "queue" in one
    for key in one:
        assert torch.allclose(one[key].float(), two[key].float(), atol=1e-4), key
    assert rows(tmp_path / "one")[-1]["queue_used"] == rows(tmp_path / "two")[-1]["queue_used"] == 1.0
    assert not torch.equal(weights(tmp_path / "one", 7)["prototypes.weight"], one["prototypes.weight"])  # past the freeze


def test_sigkill_then_resume_gives_the_same_weights_queue_and_freeze(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    args = ["data.epoch_length=64", "data.batch_size=16", "loop.epochs=4", "loop.checkpoint_every=3",
            "objective.swav.queue_length=32"]
    cli(dataset, vocab, tmp_path / "straight", *args)
    proc = cli(dataset, vocab, tmp_path / "killed", *args, wait=False)
    deadline = time.time() + 600
    while latest_checkpoint(tmp_path / "killed") is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((latest_checkpoint(tmp_path / "killed") / "state.json").read_text())["step"]
    assert 0 < killed_at < 16
    cli(dataset, vocab, tmp_path / "killed", *args)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert int(b["batches_seen"]) == 16 and int(b["queue_filled"]) == 32
    frozen = [r["prototypes_frozen"] for r in rows(tmp_path / "killed")]
    assert frozen[:4] == [1.0] * 4 and frozen[-1] == 0.0
