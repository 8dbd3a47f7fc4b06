"""DINO: the loss on analytic inputs, the schedules, the centre (and its all-reduce over 2 gloo processes), the
teacher as an EMA held in buffers, local crops to the student only, the frozen last layer, collapse checks."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from tagsight.models.backbone import create_backbone
from tagsight.methods.dino import (
    DinoConfig,
    DinoObjective,
    DinoSchedule,
    collapse_verdict,
    dino_loss,
    kl_to_centre,
    teacher_entropy,
    teacher_momentum,
    teacher_temperature,
)


def test_dino_loss_matches_a_hand_computation():
    t = 0.5
    s = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 0.0]])]
    q = [torch.tensor([[0.9, 0.1]]), torch.tensor([[0.2, 0.8]])]
    log_p = [F.log_softmax(x / t, dim=1)[0].tolist() for x in s]

    def ce(qi, v):
        return -(qi[0] * log_p[v][0] + qi[1] * log_p[v][1])

    pairs = [ce([0.9, 0.1], 1), ce([0.9, 0.1], 2), ce([0.2, 0.8], 0), ce([0.2, 0.8], 2)]   # v != i
    assert dino_loss(s, q, t).item() == pytest.approx(sum(pairs) / 4, rel=1e-6)


def test_uniform_teacher_and_flat_student_give_a_loss_of_log_k():
    k = 7
    assert dino_loss([torch.zeros(3, k)] * 4, [torch.full((3, k), 1 / k)] * 2, 0.1).item() == pytest.approx(math.log(k))


def test_momentum_rises_on_a_cosine_and_the_teacher_temperature_warms_up():
    assert teacher_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert teacher_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert teacher_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert teacher_temperature(0, 10, 0.04, 0.07) == pytest.approx(0.04)
    assert teacher_temperature(5, 10, 0.04, 0.07) == pytest.approx(0.055)
    assert teacher_temperature(10, 10, 0.04, 0.07) == teacher_temperature(99, 10, 0.04, 0.07) == 0.07
    assert teacher_temperature(0, 0, 0.04, 0.07) == 0.07
    s = DinoSchedule.of(DinoConfig(freeze_last_layer_epochs=1, warmup_teacher_temp_epochs=2.5), 8, 3, 2)
    assert (s.total_steps, s.freeze_batches, s.warmup_batches) == (12, 8, 20)


def test_collapse_diagnostics_on_collapsed_and_spread_outputs():
    k, n = 16, 64
    one_hot = F.one_hot(torch.arange(n) % k, k).float()
    assert teacher_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_to_centre(one_hot).item() == pytest.approx(1.0, abs=1e-5)       # as spread as n, K allow
    same = torch.softmax(torch.randn(1, k), dim=1).repeat(n, 1)
    assert kl_to_centre(same).item() == pytest.approx(0.0, abs=1e-5)
    assert teacher_entropy(torch.full((n, k), 1 / k)).item() == pytest.approx(1.0)
    uniform = collapse_verdict(1.0, 0.0, 0.5, DinoConfig())
    assert uniform["collapsed"] and "centring won" in uniform["reason"] and "spread" not in uniform["reason"]
    sharp = collapse_verdict(0.0, 0.0, 0.01, DinoConfig())
    assert sharp["collapsed"] and "sharpening won" in sharp["reason"] and "spread" in sharp["reason"]
    assert collapse_verdict(0.3, 0.6, 0.7, DinoConfig()) == {
        "collapsed": False, "reason": "not collapsed", "teacher_entropy": 0.3, "kl_to_centre": 0.6, "feature_std": 0.7}


def tiny_objective(schedule: DinoSchedule | None = None, **kw) -> DinoObjective:
    torch.manual_seed(0)
    backbone = create_backbone("resnet18", img_size=32)
    cfg = DinoConfig(out_dim=32, hidden_dim=16, bottleneck_dim=8, **kw)
    return DinoObjective(backbone, cfg, 2, schedule or DinoSchedule(total_steps=10))


def batch(b=4, seed=0, local=2):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(b, 2, 3, 32, 32, generator=g), "local": torch.randn(b, local, 3, 16, 16, generator=g)}


def sgd_steps(obj, n, seed=0, lr=0.01):
    opt = torch.optim.SGD(obj.parameters(), lr=lr, momentum=0.9, weight_decay=0.01)
    outs = []
    for i in range(n):
        opt.zero_grad()
        out = obj(batch(seed=seed + i))
        out["loss"].backward()
        obj.before_step()
        opt.step()
        obj.after_step()
        outs.append(out)
    return outs


def test_the_teacher_is_an_ema_of_the_student_held_in_buffers_outside_the_optimiser_and_ddp():
    obj = tiny_objective(momentum_teacher=0.9)
    assert all(name.startswith("student.") for name, _ in obj.named_parameters())
    teacher_keys = {k for k in obj.state_dict() if k.startswith(("backbone.", "teacher_head."))}
    assert {"backbone.model.conv1.weight", "teacher_head.last_layer.weight"} <= teacher_keys
    assert "backbone.model.conv1.weight" in obj._ddp_params_and_buffers_to_ignore
    t0 = obj.backbone.model.conv1.weight.clone()
    assert torch.equal(t0, obj.student["backbone"].model.conv1.weight)        # the teacher starts as the student
    m = obj.momentum()
    sgd_steps(obj, 1)
    s1 = obj.student["backbone"].model.conv1.weight.detach()
    assert not torch.equal(s1, t0)
    assert torch.allclose(obj.backbone.model.conv1.weight, m * t0 + (1 - m) * s1, atol=1e-7)
    assert int(obj.updates) == 1 and obj.momentum() > m


def test_local_crops_reach_the_student_only():
    obj = tiny_objective()
    seen = {"teacher": [], "student": []}
    obj.backbone.register_forward_hook(lambda m, i, o: seen["teacher"].append(tuple(i[0].shape)))
    obj.student["backbone"].register_forward_hook(lambda m, i, o: seen["student"].append(tuple(i[0].shape)))
    obj(batch(b=4, local=3))
    assert seen["teacher"] == [(8, 3, 32, 32)]
    assert seen["student"] == [(8, 3, 32, 32), (12, 3, 16, 16)]


def test_centre_is_an_ema_of_the_teacher_batch_mean():
    obj = tiny_objective(center_momentum=0.9)
    b = batch()
    with torch.no_grad():
        logits, _ = obj.teacher_head(obj.backbone(b["image"].transpose(0, 1).flatten(0, 1)))
    obj(b)
    assert torch.allclose(obj.center, 0.1 * logits.mean(dim=0, keepdim=True), atol=1e-6)
    obj.eval()
    before = obj.center.clone()
    obj(batch(seed=3))
    assert torch.equal(obj.center, before) and int(obj.batches_seen) == 1      # evaluation leaves the state alone


def test_last_layer_frozen_for_the_first_batches_then_moves_and_the_temperature_warms_up():
    obj = tiny_objective(DinoSchedule(total_steps=10, freeze_batches=2, warmup_batches=4))
    start = F.normalize(obj.student["head"].last_layer.weight.detach().clone(), dim=1)
    outs = sgd_steps(obj, 2)
    assert [o["last_layer_frozen"].item() for o in outs] == [1.0, 1.0]
    assert [round(o["teacher_temp"].item(), 4) for o in outs] == [0.04, 0.0475]
    assert torch.allclose(F.normalize(obj.student["head"].last_layer.weight.detach(), dim=1), start, atol=1e-6)
    outs = sgd_steps(obj, 3, seed=5)
    assert [o["last_layer_frozen"].item() for o in outs] == [0.0] * 3
    assert [round(o["teacher_temp"].item(), 4) for o in outs] == [0.055, 0.0625, 0.07]
    assert not torch.allclose(F.normalize(obj.student["head"].last_layer.weight.detach(), dim=1), start, atol=1e-4)


def test_the_frozen_last_layer_gets_no_gradient_so_weight_decay_and_momentum_skip_it():
    """DINO cancels the frozen layer's gradient (``p.grad = None``): the optimiser leaves the raw weights alone
    (weight decay would shrink them) and keeps no momentum for them until the freeze ends."""
    obj = tiny_objective(DinoSchedule(total_steps=10, freeze_batches=2))
    weight = obj.student["head"].last_layer.weight
    start = weight.detach().clone()
    opt = torch.optim.SGD(obj.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for i in range(3):
        opt.zero_grad(set_to_none=True)
        obj(batch(seed=i))["loss"].backward()
        assert weight.grad is not None                      # zero while frozen, but there (DDP sees every weight)
        obj.before_step()
        assert (weight.grad is None) == (i < 2), i
        opt.step()
        obj.after_step()
        if i < 2:
            assert torch.equal(weight.detach(), start) and weight not in opt.state, i
    assert not torch.equal(weight.detach(), start) and "momentum_buffer" in opt.state[weight]


def test_state_dict_holds_teacher_centre_and_counters_so_a_copy_continues_identically():
    obj = tiny_objective(DinoSchedule(total_steps=10, freeze_batches=1, warmup_batches=3))
    sgd_steps(obj, 2)
    assert {"center", "batches_seen", "updates"} <= set(obj.state_dict())
    fresh = tiny_objective(DinoSchedule(total_steps=10, freeze_batches=1, warmup_batches=3))
    fresh.load_state_dict(obj.state_dict())
    assert int(fresh.updates) == 2 and torch.equal(fresh.center, obj.center)
    a, b = obj(batch(seed=9)), fresh(batch(seed=9))
    assert torch.equal(a["loss"], b["loss"]) and a["teacher_temp"] == b["teacher_temp"]


def test_logs_and_teacher_outputs():
    obj = tiny_objective()
    out = obj(batch())
    assert {"loss", "loss_dino", "teacher_entropy", "kl_to_centre", "feature_std", "teacher_temp",
            "teacher_momentum", "last_layer_frozen"} <= set(out)
    probs, z = obj.teacher_outputs(torch.randn(5, 3, 32, 32))
    assert probs.shape == (5, 32) and z.shape == (5, 8)
    assert torch.allclose(probs.sum(dim=1), torch.ones(5), atol=1e-5)
    assert set(obj.verdict(probs, z)) == {"collapsed", "reason", "teacher_entropy", "kl_to_centre", "feature_std"}


def test_bad_batches_and_settings_are_refused():
    obj = tiny_objective()
    with pytest.raises(ValueError, match="multi-crop"):
        obj({"image": torch.randn(2, 3, 32, 32)})
    with pytest.raises(KeyError, match="image"):
        obj({"local": torch.randn(2, 2, 3, 16, 16)})
    with pytest.raises(ValueError, match="n_global"):
        DinoObjective(create_backbone("resnet18", img_size=32), DinoConfig(out_dim=8), n_global=1)
    for bad in ({"out_dim": 1}, {"teacher_temp": 0}, {"center_momentum": 1.0}, {"momentum_teacher": 1.5},
                {"freeze_last_layer_epochs": -1}, {"collapse_kl": 1.0}):
        with pytest.raises(ValueError, match="objective.dino"):
            DinoConfig(**bad)
    with pytest.raises(ValueError, match="schedule"):
        DinoSchedule(total_steps=0)


def _centre_rank(rank, world, path, logits, out):
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    try:
        obj = tiny_objective()
        obj._update_center(logits[rank::world])
        out[rank] = obj.center.clone()
    finally:
        dist.destroy_process_group()


def test_centre_over_two_gloo_processes_equals_one_process(tmp_path):
    logits = torch.randn(10, 32, generator=torch.Generator().manual_seed(3))
    manager = mp.get_context("spawn").Manager()
    out = manager.dict()
    mp.start_processes(_centre_rank, args=(2, str(tmp_path / "store"), logits, out), nprocs=2, start_method="spawn")
    one = tiny_objective()
    one._update_center(logits)
    assert torch.allclose(out[0], one.center, atol=1e-6) and torch.allclose(out[1], one.center, atol=1e-6)
    half = tiny_objective()
    half._update_center(logits[0::2])
    assert not torch.allclose(out[0], half.center, atol=1e-3)                    # the all-reduce mattered


def test_head_logits_stay_float32_under_bf16_autocast():
    obj = tiny_objective()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, z = obj.teacher_head(torch.randn(3, 512))
        out = obj(batch())
    assert logits.dtype == z.dtype == torch.float32 and out["loss"].dtype == torch.float32


def _teacher_left_at_init(cfg: DinoConfig, steps: int) -> float:
    """The share of its initial weights the EMA teacher still holds after ``steps`` updates (the product of m)."""
    return math.prod(teacher_momentum(t, steps, cfg.momentum_teacher) for t in range(steps))


def test_the_cpu_preset_teacher_leaves_its_random_start_and_keeps_the_resnet_temperature():
    """The first CPU preset collapsed to uniform outputs: its teacher kept 3/4 of its random weights over the run
    and its temperature rose to 0.07. The preset's teacher must move off its start and stay at 0.04."""
    from pathlib import Path

    from tagsight.train.config import PretrainConfig

    cfg = PretrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "pretrain_dino_cpu_small.yaml")
    dino, per_epoch = cfg.objective.dino, cfg.data.epoch_length // cfg.data.batch_size
    s = DinoSchedule.of(dino, per_epoch, cfg.loop.epochs, cfg.loop.accumulate)
    assert s.total_steps == 152
    assert _teacher_left_at_init(dino, s.total_steps) < 0.5
    assert _teacher_left_at_init(DinoConfig(momentum_teacher=0.996), 152) > 0.7      # the first preset's
    temps = {teacher_temperature(b, s.warmup_batches, dino.warmup_teacher_temp, dino.teacher_temp)
             for b in range(s.total_steps)}
    assert temps == {0.04}
    assert dino.use_bn and dino.out_dim <= 2048


@pytest.mark.parametrize("grouping, student_sizes, teacher_sizes", [("resolution", [8, 8], [8]),
                                                                      ("crop", [4, 4, 4, 4], [4, 4])])
def test_batchnorm_grouping_sets_the_passes_of_student_and_teacher(grouping, student_sizes, teacher_sizes):
    obj = tiny_objective(batchnorm=grouping, use_bn=True)
    seen: dict[str, list[int]] = {"student": [], "teacher": []}
    obj.student["backbone"].register_forward_hook(lambda m, i, o: seen["student"].append(i[0].shape[0]))
    obj.backbone.register_forward_hook(lambda m, i, o: seen["teacher"].append(i[0].shape[0]))
    loss = obj(batch(b=4))["loss"]
    assert seen == {"student": student_sizes, "teacher": teacher_sizes} and torch.isfinite(loss)


def test_batchnorm_grouping_changes_the_statistics_and_is_validated():
    grouped, per_crop = (float(tiny_objective(batchnorm=g, use_bn=True)(batch(b=4))["loss"]) for g in ("resolution", "crop"))
    assert grouped != pytest.approx(per_crop, rel=1e-4)
    with pytest.raises(ValueError, match="batchnorm"):
        DinoConfig(batchnorm="sample")
