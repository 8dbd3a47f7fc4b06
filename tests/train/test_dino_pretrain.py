"""`tagsight pretrain --objective dino` end to end on the tiny demo dataset: run folder, per-step diagnostics and
the held-out collapse check, 2 gloo processes equal to one (centre, teacher and local crops included), SIGKILL
and exact resume across the end of the last-layer freeze and the temperature warm-up."""

import json
import os
import signal
import time

import pytest
import torch

from tagsight.train.checkpoint import latest_checkpoint
from tests.train.runs import objective_cli, rows, weights
from tests.train.test_pretrain import tiny  # noqa: F401  (module fixture: 120 synthetic posts + vocabulary)

# A LayerNorm ConvNeXt (no BatchNorm, so 2 ranks can equal 1) at 40 px globals and 32 px locals.
DINO = ["model.name=test_convnext", "model.img_size=40", "data.workers=0", "loop.log_every=1",
        "data.multicrop.n_local=2", "data.multicrop.local_size=32", "objective.dino.out_dim=64",
        "objective.dino.hidden_dim=32", "objective.dino.bottleneck_dim=16", "optim.base_lr=0.2",
        "optim.weight_decay=0.000001"]


cli = objective_cli("dino", DINO)


def test_dino_run_folder_diagnostics_schedules_and_held_out_collapse_check(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    result, _ = cli(dataset, vocab, tmp_path / "run", "data.epoch_length=32", "data.batch_size=8", "loop.epochs=3",
                    "objective.dino.freeze_last_layer_epochs=1", "objective.dino.warmup_teacher_temp_epochs=2")
    run = tmp_path / "run"
    assert {"config.yaml", "run.json", "metrics.jsonl", "eval.json", "checkpoints"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "run.json").read_text())["objective"] == "dino"
    r = rows(run)
    assert [x["last_layer_frozen"] for x in r] == [1.0] * 4 + [0.0] * 8          # the first epoch: 4 steps
    assert [round(x["teacher_temp"], 5) for x in r] == [round(0.04 + 0.03 * i / 8, 5) for i in range(8)] + [0.07] * 4
    momenta = [x["teacher_momentum"] for x in r]
    assert momenta[0] == pytest.approx(0.996) and momenta == sorted(momenta) and momenta[-1] < 1
    assert {"teacher_entropy", "kl_to_centre", "feature_std", "loss_dino"} <= set(r[0])
    c = result["collapse"]
    assert set(c) == {"collapsed", "reason", "teacher_entropy", "kl_to_centre", "feature_std", "n_samples"}
    assert c["n_samples"] > 0 and set(result["untrained"]) == set(c)
    assert json.loads((run / "eval.json").read_text())["collapse"] == c
    w = weights(run)
    assert int(w["updates"]) == 12 and int(w["batches_seen"]) == 12 and w["center"].abs().sum() > 0
    assert not torch.equal(w["backbone.model.stem.0.weight"], w["student.backbone.model.stem.0.weight"])
    from tagsight.eval.backbones import load_backbone

    evaluated = load_backbone(str(run)).model.state_dict()                   # `tagsight eval` gets the teacher
    assert torch.equal(evaluated["stem.0.weight"], w["backbone.model.stem.0.weight"])


def test_a_collapsing_dino_run_says_so_in_its_log_and_eval(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    # Thresholds above what a healthy tiny model reaches stand in for a collapsed run.
    result, stderr = cli(dataset, vocab, tmp_path / "run", "data.epoch_length=32", "data.batch_size=16",
                         "loop.epochs=1", "objective.dino.freeze_last_layer_epochs=0",
                         "objective.dino.collapse_kl=0.99", "objective.dino.collapse_std=0.99")
    assert result["collapse"]["collapsed"] is True and "<" in result["collapse"]["reason"]
    assert "DINO may be collapsing" in stderr and "COLLAPSED" in stderr


def test_two_gloo_processes_take_the_same_dino_steps_as_one_process(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    common = ["data.epoch_length=64", "loop.epochs=2", "loop.checkpoint_every=1", "optim.warmup_fraction=0",
              "objective.dino.freeze_last_layer_epochs=0.5", "objective.dino.warmup_teacher_temp_epochs=1"]
    cli(dataset, vocab, tmp_path / "one", *common, "data.batch_size=16")
    cli(dataset, vocab, tmp_path / "two", *common, "data.batch_size=8", torchrun=2)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys() and {"center", "teacher_head.last_layer.weight"} <= set(one)
    for key in one:
        assert torch.allclose(one[key].float(), two[key].float(), atol=1e-4), key
    assert rows(tmp_path / "one")[-1]["loss"] == pytest.approx(rows(tmp_path / "two")[-1]["loss"], abs=1e-4)


def test_sigkill_then_resume_gives_the_same_teacher_student_centre_and_counters(tiny, tmp_path):  # noqa: F811
    dataset, vocab = tiny
    args = ["data.epoch_length=64", "data.batch_size=16", "loop.epochs=4", "loop.checkpoint_every=3",
            "objective.dino.warmup_teacher_temp_epochs=2"]
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
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(b["batches_seen"]) == 16 and int(b["updates"]) == 16
    frozen = [r["last_layer_frozen"] for r in rows(tmp_path / "killed")]
    assert frozen[:4] == [1.0] * 4 and frozen[-1] == 0.0


def test_the_dino_presets_load_validate_and_match_the_swav_budget():
    from pathlib import Path

    from tagsight.train.config import PretrainConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    cpu, swav = (PretrainConfig.from_yaml(root / f"pretrain_{n}_cpu_small.yaml") for n in ("dino", "swav"))
    gpu = PretrainConfig.from_yaml(root / "pretrain_dino_gpu.yaml")
    assert cpu.objective.name == gpu.objective.name == "dino" and gpu.objective.dino.out_dim == 65536
    assert (cpu.data, cpu.loop, cpu.model) == (swav.data, swav.loop, swav.model)     # DINO has its own lr
    assert cpu.optim.name == swav.optim.name == "sgd"
    assert cpu.objective.dino.bottleneck_dim == 256 and cpu.objective.dino.warmup_teacher_temp == 0.04
    with pytest.raises(ValueError, match="objective.dino"):
        PretrainConfig.from_yaml(root / "pretrain_dino_cpu_small.yaml", ["objective.dino.student_temp=0"])
