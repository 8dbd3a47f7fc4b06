"""The Trainer runs a method it has never heard of: registered in METHODS from outside, settings validated by its class."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from tagsight.collectives import DistEnv
from tagsight.data.pipeline import HashtagStream
from tagsight.data.transforms import eval_transform
from tagsight.methods.base import METHODS, Method, Objective, register_method, stream_config
from tagsight.train.config import PretrainConfig
from tagsight.train.pretrain import pretrain
from tests.feeds import feed_dataset


@dataclass(frozen=True)
class MeanConfig:
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"objective.scale must be > 0, got {self.scale}")


class MeanObjective(Objective):
    """Push the mean feature towards 0; counts its optimiser steps through the declared hook."""

    def __init__(self, backbone: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.backbone, self.scale = backbone, scale
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss = self.scale * self.backbone(batch["image"]).mean().pow(2)
        return {"loss": loss, "loss_mean": loss.detach()}

    def before_step(self) -> None:
        assert any(p.grad is not None for p in self.backbone.parameters())     # after the backward pass ...
        self.prepared = getattr(self, "prepared", 0) + 1

    def after_step(self) -> None:
        self.steps += 1
        assert self.prepared == int(self.steps)                                # ... once before each step


STREAMS: list[str] = []      # the splits the method was asked to stream


def _register() -> None:
    if "mean-test" in METHODS:
        return

    @register_method
    class MeanMethod(Method[MeanConfig]):
        name = "mean-test"
        config_class = MeanConfig

        def build(self, cfg: Any, num_labels: int, batches_per_epoch: int) -> MeanObjective:
            return MeanObjective(self.backbone(cfg), self.params(cfg).scale)

        def stream(self, index: Any, vocab: Any, cfg: Any, data_config: Any, split: str, env: DistEnv) -> Any:
            STREAMS.append(split)
            return HashtagStream(index, vocab, eval_transform(data_config), stream_config(cfg, split),
                                 rank=env.rank, world_size=env.world_size)

        def evaluate(self, trained: Objective, untrained: Objective, heldout: Any, cfg: Any, env: DistEnv,
                     vocab: Any) -> dict[str, Any]:
            assert isinstance(trained, MeanObjective)
            return {"steps_seen": int(trained.steps), "untrained_steps": int(untrained.steps)}

        def files(self, cfg: Any, vocab: Any) -> dict[str, str]:
            return {"mean.txt": f"scale {self.params(cfg).scale}\n"}


def test_a_method_registered_from_outside_trains_evaluates_and_writes_its_files(tmp_path):
    _register()
    dataset, vocab = feed_dataset(tmp_path / "data", n_posts=40, n_authors=6, image_size=40, seed=3)
    cfg = PretrainConfig.from_yaml(None, [
        "objective.name=mean-test", "objective.scale=0.5", "model.name=test_vit", "model.img_size=32",
        "data.workers=0", "data.epoch_length=32", "data.batch_size=8", "loop.max_steps=3", "loop.log_every=1"])
    assert cfg.objective.params == MeanConfig(0.5)
    result = pretrain(dataset, vocab, tmp_path / "run", cfg, DistEnv())
    assert result == {"step": 3, "steps_seen": 3, "untrained_steps": 0}   # after_step ran once per optimiser step
    assert STREAMS[-2:] == ["train", "heldout"]
    run = tmp_path / "run"
    assert (run / "mean.txt").read_text() == "scale 0.5\n"
    assert json.loads((run / "run.json").read_text())["objective"] == "mean-test"
    assert PretrainConfig.from_yaml(run / "config.yaml") == cfg
    with pytest.raises(ValueError, match="objective.scale must be > 0"):
        PretrainConfig.from_yaml(None, ["objective.name=mean-test", "objective.scale=0"])
    with pytest.raises(ValueError, match=r"objective.sclae'\] for objective 'mean-test'; known: \['name', 'scale'\]"):
        PretrainConfig.from_yaml(None, ["objective.name=mean-test", "objective.sclae=0.1"])
    with pytest.raises(ValueError, match="objective.epsilon is a setting of the 'swav' method"):
        PretrainConfig.from_yaml(None, ["objective.name=mean-test", "objective.epsilon=0.1"])
