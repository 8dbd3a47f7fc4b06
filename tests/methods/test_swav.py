"""SwAV: Sinkhorn marginals, the swapped loss on analytic inputs, frozen prototypes, the queue, collapse checks,
and Sinkhorn over 2 gloo processes equal to one process."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from tagsight.models.backbone import create_backbone
from tagsight.methods.swav import (
    SwavConfig,
    SwavObjective,
    assignment_entropy,
    collapse_verdict,
    feature_spread,
    sinkhorn,
    swapped_loss,
)


def test_sinkhorn_rows_sum_to_one_and_prototypes_get_equal_mass():
    scores = torch.randn(48, 6, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    q = sinkhorn(scores, epsilon=0.5, iterations=300)
    assert torch.allclose(q.sum(dim=1), torch.ones(48), atol=1e-5)
    assert torch.allclose(q.sum(dim=0), torch.full((6,), 48 / 6), atol=1e-3)
    few = sinkhorn(scores, epsilon=0.5, iterations=3)       # the last step is the per-sample one: exact
    assert torch.allclose(few.sum(dim=1), torch.ones(48), atol=1e-5) and (few >= 0).all()


def test_sinkhorn_spreads_samples_that_all_prefer_one_prototype():
    scores = torch.tensor([[1.0, 0.0, 0.0]] * 9)  # everyone prefers prototype 0
    q = sinkhorn(scores + 1e-3 * torch.randn(9, 3, generator=torch.Generator().manual_seed(1)), 0.05, 50)
    assert torch.allclose(q.sum(dim=0), torch.full((3,), 3.0), atol=1e-2)  # equipartition, not collapse
    assert scores.softmax(dim=1).argmax(dim=1).unique().numel() == 1


def test_swapped_loss_matches_a_hand_computation():
    t = 0.5
    s1, s2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    q1, q2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.25, 0.75]])
    # crop 1's code predicted from crop 2, crop 2's code from crop 1, averaged
    log_p2 = [-math.log(1 + math.exp(2.0)), -math.log(1 + math.exp(-2.0))]   # softmax([0, 2])
    log_p1 = [log_p2[1], log_p2[0]]                                            # softmax([2, 0])
    expected = (-(1.0 * log_p2[0]) + -(0.25 * log_p1[0] + 0.75 * log_p1[1])) / 2
    assert swapped_loss([s1, s2], [q1, q2], t).item() == pytest.approx(expected, rel=1e-6)


def test_uniform_scores_give_uniform_codes_and_a_loss_of_log_k():
    k, b = 5, 4
    scores = [torch.zeros(b, k) for _ in range(3)]
    codes = [sinkhorn(s) for s in scores[:2]]
    assert torch.allclose(codes[0], torch.full((b, k), 1 / k))
    assert swapped_loss(scores, codes, 0.1).item() == pytest.approx(math.log(k), rel=1e-6)


def test_collapse_diagnostics_on_collapsed_and_spread_embeddings():
    same = F.normalize(torch.ones(64, 16), dim=1)
    spread = F.normalize(torch.randn(4096, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    assert feature_spread(same).item() == pytest.approx(0.0, abs=1e-6)
    assert feature_spread(spread).item() == pytest.approx(1.0, abs=0.02)
    one_hot = torch.zeros(64, 8)
    one_hot[:, 3] = 1
    assert assignment_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert assignment_entropy(torch.eye(8).repeat(8, 1)).item() == pytest.approx(1.0, abs=1e-6)
    verdict = collapse_verdict(0.0, 0.0, SwavConfig())
    assert verdict["collapsed"] and "entropy" in verdict["reason"] and "spread" in verdict["reason"]
    assert collapse_verdict(0.8, 0.7, SwavConfig()) == {"collapsed": False, "reason": "not collapsed",
                                                        "assignment_entropy": 0.8, "feature_std": 0.7}


def tiny_objective(freeze=0, queue=0, **kw) -> SwavObjective:
    torch.manual_seed(0)
    backbone = create_backbone("resnet18", img_size=32)
    cfg = SwavConfig(prototypes=16, projection_dim=8, hidden_dim=16, queue_length=queue, **kw)
    return SwavObjective(backbone, cfg, 2, freeze)


def batch(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(b, 2, 3, 32, 32, generator=g), "local": torch.randn(b, 2, 3, 16, 16, generator=g)}


def sgd_steps(obj, n, seed=0):
    opt = torch.optim.SGD(obj.parameters(), lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.01)
    outs = []
    for i in range(n):
        opt.zero_grad()
        out = obj(batch(seed=seed + i))
        out["loss"].backward()
        opt.step()
        outs.append(out)
    return outs


def test_prototypes_stay_put_while_frozen_then_move():
    obj = tiny_objective(freeze=2)
    start = F.normalize(obj.prototypes.weight.detach().clone(), dim=1)
    outs = sgd_steps(obj, 2)
    assert [o["prototypes_frozen"].item() for o in outs] == [1.0, 1.0]
    assert torch.allclose(F.normalize(obj.prototypes.weight.detach(), dim=1), start, atol=1e-6)
    assert sgd_steps(obj, 2, seed=5)[0]["prototypes_frozen"].item() == 0.0
    assert not torch.allclose(F.normalize(obj.prototypes.weight.detach(), dim=1), start, atol=1e-4)
    assert int(obj.batches_seen) == 4


def test_frozen_prototypes_get_no_gradient_so_weight_decay_and_momentum_skip_them():
    """The official SwAV sets the frozen prototypes' gradient to None: the optimiser leaves them alone (no decay,
    no momentum) until the freeze ends, then they move from a fresh momentum buffer."""
    obj = tiny_objective(freeze=2)
    weight = obj.prototypes.weight
    opt = torch.optim.SGD(obj.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for i in range(3):
        opt.zero_grad(set_to_none=True)
        obj(batch(seed=i))["loss"].backward()
        assert weight.grad is not None                        # zero while frozen, but there (DDP sees every weight)
        start = weight.detach().clone()                       # renormalised in place by this forward pass
        obj.before_step()
        assert (weight.grad is None) == (i < 2), i
        opt.step()
        if i < 2:
            assert torch.equal(weight.detach(), start) and weight not in opt.state, i
    assert not torch.equal(weight.detach(), start) and "momentum_buffer" in opt.state[weight]


def test_prototypes_are_renormalised_in_place_before_each_training_step_and_get_the_plain_linear_gradient():
    obj = tiny_objective()
    with torch.no_grad():
        obj.prototypes.weight.mul_(3.0)
    before = obj.prototypes.weight.detach().clone()
    obj.eval()
    obj(batch())                                          # evaluation leaves the weights alone
    assert torch.equal(obj.prototypes.weight.detach(), before) and before.norm(dim=1).min() > 1.01
    obj.train()
    out = obj(batch())
    assert torch.allclose(obj.prototypes.weight.norm(dim=1), torch.ones(16), atol=1e-6)
    out["loss"].backward()
    w = obj.prototypes.weight.detach()
    radial = (obj.prototypes.weight.grad * w).sum(dim=1)
    assert radial.abs().max() > 1e-6                      # not projected onto the sphere: no gradient through a norm


def test_queue_fills_is_used_when_full_and_lives_in_the_state_dict():
    obj = tiny_objective(queue=8)
    outs = sgd_steps(obj, 3)
    assert [o["queue_used"].item() for o in outs] == [0.0, 0.0, 1.0]
    assert int(obj.queue_filled) == 8 and {"queue", "queue_filled", "batches_seen"} <= set(obj.state_dict())
    fresh = tiny_objective(queue=8)
    fresh.load_state_dict(obj.state_dict())
    a, b = obj(batch(seed=9)), fresh(batch(seed=9))
    assert torch.equal(a["loss"], b["loss"]) and torch.equal(obj.queue, fresh.queue)


def test_bad_batches_and_settings_are_refused():
    obj = tiny_objective()
    with pytest.raises(ValueError, match="multi-crop"):
        obj({"image": torch.randn(2, 3, 32, 32)})
    with pytest.raises(KeyError, match="image"):
        obj({"local": torch.randn(2, 2, 3, 16, 16)})
    with pytest.raises(ValueError, match="epsilon"):
        SwavConfig(epsilon=0)
    with pytest.raises(ValueError, match="sinkhorn_iterations"):
        SwavConfig(sinkhorn_iterations=0)


def _sinkhorn_rank(rank, world, path, scores, out):
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    try:
        out[rank] = sinkhorn(scores[rank::world], 0.05, 3)
    finally:
        dist.destroy_process_group()


def test_sinkhorn_over_two_gloo_processes_equals_one_process(tmp_path):
    scores = torch.randn(10, 7, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    manager = mp.get_context("spawn").Manager()
    out = manager.dict()
    mp.start_processes(_sinkhorn_rank, args=(2, str(tmp_path / "store"), scores, out), nprocs=2, start_method="spawn")
    together = torch.empty(10, 7)
    together[0::2], together[1::2] = out[0], out[1]
    assert torch.allclose(together, sinkhorn(scores, 0.05, 3), atol=1e-6)
    assert not torch.allclose(out[0], sinkhorn(scores[0::2], 0.05, 3), atol=1e-3)  # the all-reduce mattered


def test_batchnorm_grouping_is_validated() -> None:
    with pytest.raises(ValueError, match="batchnorm"):
        SwavConfig(batchnorm="sample")
    assert SwavConfig().batchnorm == "resolution"
