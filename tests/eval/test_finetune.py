"""Full fine-tuning: the classification objective, the resumable labelled stream, and runs through the Trainer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tagsight.eval.datasets import open_labelled
from tagsight.eval.finetune import FinetuneConfig, finetune
from tagsight.eval.stream import LabelledStream, LabelledStreamConfig, labelled_loader
from tagsight.eval.transfer import TransferInputs
from tagsight.fsio import ReasonError
from tagsight.models.backbone import create_backbone
from tagsight.methods.classify import ClassifyObjective
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.distributed import DistEnv
from tests.torchrun import torchrun as launcher

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = ["img_size=32", "data.batch_size=4", "data.workers=0", "data.eval_batch_size=8", "loop.log_every=1",
        "optim.base_lr=0.2", "optim.name=adamw", "optim.weight_decay=0.0"]


def tiny_cfg(*extra: str) -> FinetuneConfig:
    return FinetuneConfig.from_yaml(None, [*TINY, *extra])


def test_classify_objective_loss_accuracy_and_bad_labels():
    obj = ClassifyObjective(create_backbone("test_vit", img_size=32), 3)
    batch = {"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 2, 1])}
    out = obj(batch)
    assert set(out) == {"loss", "loss_ce", "accuracy"} and out["loss"].requires_grad
    logits = obj.predict(batch["image"]).detach()
    assert torch.isclose(out["loss"], torch.nn.functional.cross_entropy(logits, batch["label"]), atol=1e-5)
    assert out["accuracy"] == (logits.argmax(1) == batch["label"]).float().mean()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        obj({"image": batch["image"], "label": torch.tensor([0, 1, 3, 1])})
    with pytest.raises(KeyError):
        obj({"image": batch["image"]})


def _ids(stream: LabelledStream, workers: int = 0) -> list[int]:
    return [int(i) for b in labelled_loader(stream, workers) for i in b["index"]]


def test_stream_resumes_exactly_and_splits_ranks(tmp_path, class_folders):
    images = open_labelled(class_folders(tmp_path / "train", per_class=4))
    transform = lambda img, gen: torch.rand(1, generator=gen)  # noqa: E731  (records the augmentation seed)
    cfg = LabelledStreamConfig(batch_size=2, seed=3)
    stream = LabelledStream(images, transform, cfg, 0, 1)
    stream.set_position(1, 0)
    full = list(labelled_loader(stream, 0))
    assert sorted(int(i) for b in full for i in b["index"]) == list(range(12))  # a permutation per epoch
    stream.set_position(1, 2)
    resumed = list(labelled_loader(stream, 2))  # two workers: same batches, same order, same augmentations
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["index"], b["index"])
               for a, b in zip(full[2:], resumed, strict=True))
    ranks = [LabelledStream(images, transform, cfg, r, 2) for r in (0, 1)]
    for r in ranks:
        r.set_position(1, 0)
    shares = [_ids(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == 6 and sorted(shares[0] + shares[1]) == list(range(12))
    assert stream.order(0).tolist() != stream.order(1).tolist()


def test_eval_split_yields_every_image_once_in_order(tmp_path, class_folders):
    images = open_labelled(class_folders(tmp_path / "val", per_class=3))
    stream = LabelledStream(images, lambda img, gen: torch.zeros(1), LabelledStreamConfig(4, split="eval"), 1, 2)
    assert _ids(stream) == [1, 3, 5, 7]
    batch = next(iter(labelled_loader(stream)))
    assert batch["label"].tolist() == images.labels[[1, 3, 5, 7]].tolist()


def test_finetune_trains_records_and_resumes(tmp_path, class_folders):
    train, val = class_folders(tmp_path / "train", 4, seed=0), class_folders(tmp_path / "val", 2, seed=1)
    inputs = TransferInputs(backbone="timm:test_vit", train=train, val=val, workers=0)
    run = tmp_path / "run"
    result = finetune(inputs, run, tiny_cfg("loop.epochs=3"), DistEnv())
    assert {"config.yaml", "run.json", "metrics.jsonl", "finetune.json", "checkpoints"} <= {p.name for p in run.iterdir()}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 10)) and {"loss", "accuracy", "lr"} <= set(rows[0])
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert result["method"] == "finetune" and result["metrics"]["steps"] == 9 and result["val"]["count"] == 6
    assert result["metrics"]["top1"] > 1 / 3  # colour classes: well above chance after 9 steps
    assert sum(map(sum, result["confusion"])) == 6 and set(result["per_class"]) == {"cat", "dog", "owl"}
    assert json.loads((run / "run.json").read_text())["kind"] == "finetune"
    weights = load_file(str(latest_checkpoint(run) / "model.safetensors"))
    again = finetune(inputs, run, tiny_cfg("loop.epochs=3"), DistEnv())  # rerun: resumes at the end, same model
    assert again["metrics"]["steps"] == 9 and again["metrics"]["top1"] == result["metrics"]["top1"]
    assert all(torch.equal(v, load_file(str(latest_checkpoint(run) / "model.safetensors"))[k]) for k, v in weights.items())
    more = finetune(inputs, run, tiny_cfg("loop.epochs=4"), DistEnv())  # a longer schedule continues the run
    assert more["metrics"]["steps"] == 12
    with pytest.raises(ReasonError) as info:
        finetune(TransferInputs(backbone="timm:test_resnet", train=train, val=val, workers=0), run,
                 tiny_cfg(), DistEnv())
    assert info.value.reason == "lineage_mismatch"


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown config keys"):
        FinetuneConfig.from_yaml(None, ["loop.epochz=2"])
    with pytest.raises(ValueError, match="label_smoothing"):
        FinetuneConfig.from_yaml(None, ["label_smoothing=1.5"])


def test_preset_parses():
    cfg = FinetuneConfig.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "finetune_cpu_small.yaml")
    assert cfg.img_size == 64 and cfg.loop.epochs == 2 and cfg.optim.scaled_lr(64) == pytest.approx(0.1)


def _cli(args: list[str], torchrun: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *launcher(torchrun), "-m", "tagsight.cli", "-q", "eval", "finetune", *args],
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_gloo_processes_take_the_same_step_as_one(tmp_path, class_folders):
    """DDP over 2 ranks with batch 2 each = one process with batch 4 on the same samples (LayerNorm model)."""
    train, val = class_folders(tmp_path / "train", 4, seed=0), class_folders(tmp_path / "val", 1, seed=1)
    common = ["timm:test_vit", "--train", str(train), "--val", str(val), "--workers", "0", "--cache-dir",
              str(tmp_path / "cache"), *[a for s in TINY if not s.startswith("data.batch_size") for a in ("--set", s)],
              "--set", "loop.max_steps=1", "--set", "optim.name=sgd"]
    _cli([*common, "--run-dir", str(tmp_path / "one"), "--set", "data.batch_size=4", "--set", "data.epoch_length=4"])
    _cli([*common, "--run-dir", str(tmp_path / "two"), "--set", "data.batch_size=2", "--set", "data.epoch_length=4"],
         torchrun=2)
    one, two = (load_file(str(latest_checkpoint(tmp_path / r) / "model.safetensors")) for r in ("one", "two"))
    assert one.keys() == two.keys() and all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    assert np.isclose(json.loads((tmp_path / "two" / "finetune.json").read_text())["metrics"]["peak_lr"],
                      json.loads((tmp_path / "one" / "finetune.json").read_text())["metrics"]["peak_lr"])
