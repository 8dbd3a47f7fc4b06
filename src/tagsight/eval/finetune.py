"""Full fine-tuning of any backbone on labelled images, through the shared training loop.

``finetune`` loads the backbone (a run, a timm name, a weights file, the packaged EfficientNet-Lite0),
decontaminates the train and val sets against the pretraining pool when one applies, puts a linear
head on it (``ClassifyObjective``: softmax cross-entropy on the class index) and trains every weight
with ``tagsight.train.loop.Trainer`` on a ``LabelledStream`` (train augmentation of the backbone's
data config). The run folder holds ``config.yaml`` (the resolved ``FinetuneConfig``), ``run.json``
(lineage: backbone, train/val identities, decontamination pool), ``metrics.jsonl``, ``checkpoints/``
and ``finetune.json`` (the result record, top-1/top-5 on val, per-class accuracy, confusion).
Rerunning the same command resumes from the latest checkpoint; under torchrun every process trains
its share (DDP) and the validation logits are gathered.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tagsight import __version__
from tagsight.data.transforms import eval_transform, train_transform
from tagsight.eval.datasets import LabelledImages
from tagsight.eval.stream import LabelledStream, LabelledStreamConfig, labelled_loader
from tagsight.eval.transfer import TransferInputs, named, open_sets, result_record
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.methods.classify import ClassifyObjective
from tagsight.progress import Progress
from tagsight.config import YamlConfig
from tagsight.train.distributed import DistEnv, all_gather_cat
from tagsight.storage import location
from tagsight.train.loop import Trainer
from tagsight.train.settings import LoopConfig, OptimConfig

log = logging.getLogger(__name__)

RESULT_FILE = "finetune.json"


@dataclass(frozen=True)
class FinetuneData:
    batch_size: int = 64           # per rank, per micro-batch
    epoch_length: int = 0          # samples per epoch over all ranks; 0 = the train set's size
    workers: int = 2
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.epoch_length < 0 or self.workers < 0:
            raise ValueError("data.batch_size and data.eval_batch_size must be >= 1, data.epoch_length and "
                             "data.workers >= 0")


@dataclass(frozen=True)
class FinetuneConfig(YamlConfig):
    img_size: int | None = None    # input size; None = the backbone's (a run's own size)
    label_smoothing: float = 0.0
    data: FinetuneData = field(default_factory=FinetuneData)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.img_size is not None and self.img_size < 16:
            raise ValueError(f"img_size must be >= 16 or null, got {self.img_size}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def lineage(inputs: TransferInputs, sets: dict[str, LabelledImages], decontamination: dict[str, Any],
            env: DistEnv) -> dict[str, Any]:
    pool = decontamination.get("pool", {})
    return {"tagsight_version": __version__, "kind": "finetune", "backbone": inputs.backbone,
            "train": {"path": named(inputs.train), "identity": sets["train"].identity},   # a mirror: its URL
            "val": {"path": named(inputs.val), "identity": sets["val"].identity},
            "classes": sets["train"].classes, "pool": {"path": pool.get("dataset"), "version": pool.get("version")},
            "world_size": env.world_size}


def check_lineage(run_dir: Path, expected: dict[str, Any]) -> None:
    """Refuse to resume a fine-tuning run with another backbone, other data or another pool."""
    path = run_dir / "run.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    keys = ("backbone", "train", "val", "classes", "pool")
    if old.get("kind") != "finetune" or any(old.get(k) != expected[k] for k in keys):
        raise ReasonError("lineage_mismatch", f"{run_dir} holds a run of another backbone, dataset or pool; "
                                              "use a new --run-dir")


def finetune(inputs: TransferInputs, run_dir: str | Path, cfg: FinetuneConfig, env: DistEnv) -> dict[str, Any]:
    """Train (or resume) and evaluate; the result record on rank 0, ``{}`` on the other ranks."""
    start, run_dir = time.perf_counter(), Path(run_dir)
    if inputs.img_size is None and cfg.img_size is not None:
        inputs = replace(inputs, img_size=cfg.img_size)
    backbone = inputs.load_backbone()
    sets, decontamination = open_sets(inputs, env)
    info = lineage(inputs, sets, decontamination, env)
    check_lineage(run_dir, info)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
    torch.manual_seed(cfg.seed)
    objective = ClassifyObjective(backbone, len(sets["train"].classes), label_smoothing=cfg.label_smoothing)
    d = cfg.data
    stream = LabelledStream(sets["train"], train_transform(backbone.data_config),
                            LabelledStreamConfig(d.batch_size, d.epoch_length, cfg.seed, "train"),
                            env.rank, env.world_size)
    trainer = Trainer(objective, stream, lambda s: labelled_loader(s, d.workers), cfg.optim, cfg.loop, env,
                      run_dir, stream.epoch_length, d.batch_size, progress_desc="finetune")
    trainer.fit()
    scores = predict(objective, sets["val"], backbone.data_config, d, env)   # the model the trainer fitted
    if not env.is_main:
        return {}
    settings = {"steps": trainer.step, "epochs": cfg.loop.epochs, "max_steps": cfg.loop.max_steps,
                "img_size": backbone.data_config.input_size, "global_batch": trainer.plan.global_batch,
                "peak_lr": cfg.optim.scaled_lr(trainer.plan.global_batch), "optimizer": cfg.optim.name,
                "run_dir": location(run_dir)}   # a staging folder: the URL it is published to
    result = result_record("finetune", inputs, backbone, sets, decontamination, scores, settings,
                           time.perf_counter() - start)
    atomic_write_text(run_dir / RESULT_FILE, json.dumps(result, indent=1) + "\n")
    log.info("fine-tuned %d steps: val top-1 %.4f, top-5 %.4f", trainer.step, result["metrics"]["top1"],
             result["metrics"]["top5"])
    return result


@torch.no_grad()
def predict(objective: ClassifyObjective, images: LabelledImages, data_config: Any, d: FinetuneData,
            env: DistEnv) -> np.ndarray:
    """Logits ``[N, C]`` of every image in dataset order, each rank scoring its share, gathered everywhere."""
    objective.eval()
    stream = LabelledStream(images, eval_transform(data_config), LabelledStreamConfig(d.eval_batch_size, split="eval"),
                            env.rank, env.world_size)
    logits, order = [torch.zeros(0, objective.num_classes)], [torch.zeros(0, dtype=torch.int64)]
    with Progress(sum(len(b) for b in stream.batches(0)), "finetune val", "img") as progress:
        for batch in labelled_loader(stream, d.workers):
            logits.append(objective.predict(batch["image"].to(env.device)).float().cpu())
            order.append(batch["index"].to(torch.int64))
            progress.update(len(batch["index"]))
    s, idx = all_gather_cat(torch.cat(logits), env), all_gather_cat(torch.cat(order), env)
    if not torch.equal(torch.sort(idx).values, torch.arange(len(images))):
        raise RuntimeError(f"gathered predictions do not cover the {len(images)} images exactly once")
    out = torch.empty_like(s)
    out[idx] = s
    return out.double().numpy()
