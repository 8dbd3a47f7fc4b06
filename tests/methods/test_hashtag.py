"""The hashtag objective: losses on analytic inputs, weights, gradients, registry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tagsight.models import create_backbone
from tagsight.methods.hashtag import HashtagObjective
from tagsight.methods.hashtag import per_sample_loss, pos_in_top1, weighted_mean


@pytest.fixture(scope="module")
def backbone():
    return create_backbone("test_resnet", img_size=32)


def batch(num_labels: int = 6, b: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(b, num_labels)
    target[torch.arange(b), torch.arange(b) % num_labels] = 0.5
    target[torch.arange(b), (torch.arange(b) + 1) % num_labels] = 0.5
    return {"image": torch.randn(b, 3, 32, 32, generator=g), "target": target}


def test_softmax_loss_of_zero_logits_is_log_num_labels():
    target = torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0]])
    assert per_sample_loss(torch.zeros(1, 7), target, "softmax").item() == pytest.approx(math.log(7))


def test_softmax_loss_one_hot_two_labels_is_softplus():
    a, b = 0.3, 1.7
    loss = per_sample_loss(torch.tensor([[a, b]]), torch.tensor([[1.0, 0.0]]), "softmax")
    assert loss.item() == pytest.approx(math.log1p(math.exp(b - a)), rel=1e-6)


def test_bce_loss_by_hand():
    logits, target = torch.tensor([[0.0, 2.0, -1.0]]), torch.tensor([[0.5, 0.0, 0.5]])
    expected = (math.log(2) + math.log1p(math.exp(2.0)) + math.log1p(math.exp(1.0))) / 3
    assert per_sample_loss(logits, target, "bce").item() == pytest.approx(expected, rel=1e-6)


def test_weighted_mean():
    values = torch.tensor([1.0, 3.0, 10.0])
    assert weighted_mean(values, None).item() == pytest.approx(14 / 3)
    assert weighted_mean(values, torch.tensor([1.0, 3.0, 0.0])).item() == pytest.approx(2.5)
    assert weighted_mean(values, torch.zeros(3)).item() == 0.0


def test_pos_in_top1():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert pos_in_top1(logits, target).item() == 0.5


@pytest.mark.parametrize("kind", ["softmax", "bce"])
def test_forward_keys_and_gradient_reaches_backbone(backbone, kind):
    torch.manual_seed(0)
    obj = HashtagObjective(backbone, num_labels=6, loss=kind)
    out = obj(batch())
    assert set(out) == {"loss", f"loss_{kind}", "pos_in_top1"}
    assert out["loss"].ndim == 0 and out["loss"].requires_grad
    assert not out[f"loss_{kind}"].requires_grad and 0 <= out["pos_in_top1"].item() <= 1
    obj.zero_grad()
    out["loss"].backward()
    grads = [p.grad for p in obj.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_loss_matches_manual_computation_with_weights(backbone):
    torch.manual_seed(0)
    obj = HashtagObjective(backbone, num_labels=6).eval()
    b = batch()
    b["weight"] = torch.tensor([1.0, 0.0, 2.0, 1.0])
    with torch.no_grad():
        logits = obj.predict(b["image"])
        out = obj(b)
    per = -(b["target"] * F.log_softmax(logits, dim=1)).sum(1)
    assert out["loss"].item() == pytest.approx(((per * b["weight"]).sum() / 4).item(), rel=1e-5)


def test_registry_creates_the_hashtag_objective(backbone):
    obj = HashtagObjective(backbone, 5, loss="bce")
    assert isinstance(obj, HashtagObjective) and obj.head.out_features == 5
    assert obj.backbone is backbone and obj.loss_kind == "bce"


def test_bad_arguments_and_batches_are_rejected(backbone):
    with pytest.raises(ValueError, match="not one of"):
        HashtagObjective(backbone, 5, loss="sigmoid")
    with pytest.raises(ValueError, match="num_labels"):
        HashtagObjective(backbone, 0)
    obj = HashtagObjective(backbone, 6)
    with pytest.raises(KeyError, match="target"):
        obj({"image": torch.zeros(2, 3, 32, 32)})
    with pytest.raises(ValueError, match=r"target \[B,6\]"):
        obj({"image": torch.zeros(2, 3, 32, 32), "target": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match="weight"):
        obj({**batch(b=2), "weight": torch.ones(3)})
