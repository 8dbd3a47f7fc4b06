"""bench/ssl: tagsight's DINO computes what lightly's DINO computes from the same weights and crops (loss, centre,
teacher EMA, temperature warm-up, frozen last layer, over several steps); so does tagsight's SwAV against lightly's
(loss and every gradient, frozen then moving prototypes), apart from lightly's prototype bias, which the test pins
down; the tiny side-by-side comparison runs
every arm with both crop pipelines, writes its results and resumes."""

from __future__ import annotations

import json
from dataclasses import replace
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

pytest.importorskip("lightly", reason="the lightly arms need `pip install lightly` (tagsight[bench])")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "ssl"))

import run as bench  # noqa: E402
from arms import LightlyDino, LightlySwav, TagsightArm, start_as  # noqa: E402

from tagsight.models.backbone import create_backbone  # noqa: E402
from tagsight.methods.dino import DinoConfig, DinoObjective, DinoSchedule  # noqa: E402
from tagsight.methods.swav import SwavConfig, SwavObjective  # noqa: E402


def _copy_lightly_into_tagsight(lightly: LightlyDino, ours: DinoObjective) -> None:
    ours.student["backbone"].load_state_dict(lightly.student_backbone.state_dict())
    ours.backbone.load_state_dict(lightly.teacher_backbone.state_dict())
    for theirs, mine in ((lightly.student_head, ours.student["head"]), (lightly.teacher_head, ours.teacher_head)):
        linears = [m for m in theirs.layers if isinstance(m, torch.nn.Linear)]
        mine_linears = [m for m in mine.mlp if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for a, b in zip(linears, mine_linears):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
            mine.last_layer.weight.copy_(theirs.last_layer.weight_v)


def test_tagsight_dino_matches_lightly_dino_step_for_step():
    torch.manual_seed(0)
    cfg = DinoConfig(out_dim=32, hidden_dim=16, bottleneck_dim=8, warmup_teacher_temp_epochs=1,
                     freeze_last_layer_epochs=1, momentum_teacher=0.9)
    schedule = DinoSchedule(total_steps=4, freeze_batches=2, warmup_batches=3)
    backbone = create_backbone("test_convnext", img_size=40)       # LayerNorm: no batch statistics to differ
    theirs = LightlyDino(backbone, cfg, schedule)
    ours = TagsightArm(DinoObjective(create_backbone("test_convnext", img_size=40), cfg, 2, schedule))
    _copy_lightly_into_tagsight(theirs, ours.objective)
    opts = [torch.optim.SGD([p for p in arm.parameters() if p.requires_grad], lr=0.5) for arm in (theirs, ours)]
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        batch = {"image": torch.randn(4, 2, 3, 40, 40, generator=g), "local": torch.randn(4, 2, 3, 32, 32, generator=g)}
        losses = []
        for arm, opt in zip((theirs, ours), opts):
            opt.zero_grad()
            out = arm(batch, step)
            out["loss"].backward()
            arm.before_step(step)
            opt.step()
            arm.after_step(step)
            losses.append(float(out["loss"].detach()))
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), step
    assert torch.allclose(theirs.loss.center.view(1, -1), ours.objective.center, atol=1e-5)
    t_theirs, t_ours = theirs.teacher_backbone.state_dict(), ours.objective.backbone.state_dict()
    assert all(torch.allclose(t_theirs[k], t_ours[k], atol=1e-5) for k in t_theirs)
    assert torch.allclose(theirs.student_head.last_layer.weight_v, ours.objective.student["head"].last_layer.weight,
                          atol=1e-5)


SWAV = SwavConfig(prototypes=8, projection_dim=8, hidden_dim=16)


class _LightlyGrouped(LightlySwav):
    """lightly's SwAV with the crops of one resolution through backbone and head together, as tagsight (and the
    official SwAV's backbone pass) batch them; lightly's example runs every crop on its own."""

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.prototypes.normalize()
        scores: list[torch.Tensor] = []
        for stack in (batch["image"], batch["local"]):
            scores += self._scores(stack.transpose(0, 1).flatten(0, 1), step).chunk(stack.shape[1])
        n_global = batch["image"].shape[1]
        return {"loss": self.loss(scores[:n_global], scores[n_global:]).reshape(())}


def _swav_pair(bias: bool, grouped: bool = True, cfg: SwavConfig = SWAV) -> tuple[LightlySwav, TagsightArm]:
    """lightly's SwAV (prototypes with or without their bias, crops grouped or one at a time) and ours (``cfg``),
    carrying the same weights."""
    torch.manual_seed(0)
    theirs = (_LightlyGrouped if grouped else LightlySwav)(create_backbone("test_convnext", img_size=40), SWAV,
                                                            freeze_steps=2)
    if not bias:
        theirs.prototypes.heads[0] = torch.nn.Linear(SWAV.projection_dim, SWAV.prototypes, bias=False)
    ours = TagsightArm(SwavObjective(create_backbone("test_convnext", img_size=40), cfg, 2, freeze_batches=2))
    obj = ours.objective
    obj.backbone.load_state_dict(theirs.backbone.state_dict())
    lin = [m for m in theirs.head.layers if isinstance(m, torch.nn.Linear)]
    bns = [m for m in theirs.head.layers if isinstance(m, torch.nn.BatchNorm1d)]
    with torch.no_grad():
        obj.head[0].weight.copy_(lin[0].weight)
        obj.head[0].bias.zero_()                     # lightly's first layer has no bias (BatchNorm follows)
        obj.head[1].load_state_dict(bns[0].state_dict())
        obj.head[3].load_state_dict(lin[1].state_dict())
        obj.prototypes.weight.copy_(theirs.prototypes.heads[0].weight)
    return theirs, ours


def _swav_batch(g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"image": torch.randn(6, 2, 3, 40, 40, generator=g), "local": torch.randn(6, 2, 3, 32, 32, generator=g)}


def _grads(named: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(p) if p.grad is None else p.grad.clone() for k, p in named.items()}


def _swav_parameters(arm: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Both arms' parameters under common names: backbone.*, head.{0,1,3}.*, prototypes."""
    if isinstance(arm, LightlySwav):
        layers = dict(arm.head.layers.named_children())
        head = {f"head.{i}.{n}": p for i, key in ((0, "0"), (1, "1"), (3, "3")) for n, p in
                layers[key].named_parameters()}
        protos = {"prototypes": arm.prototypes.heads[0].weight}
        return {**{f"backbone.{n}": p for n, p in arm.backbone.named_parameters()}, **head, **protos}
    obj = arm.objective
    head = {f"head.{n}": p for n, p in obj.head.named_parameters() if n != "0.bias"}
    return {**{f"backbone.{n}": p for n, p in obj.backbone.named_parameters()}, **head,
            "prototypes": obj.prototypes.weight}


def test_tagsight_swav_matches_lightly_swav_step_for_step_without_the_prototype_bias():
    """The same loss and the same gradient on every parameter, 2 steps with frozen prototypes and 3 after: the
    prototypes are normalised in place before each step and scored as they are (SwAV's way, and lightly's)."""
    theirs, ours = _swav_pair(bias=False)
    params = [_swav_parameters(arm) for arm in (theirs, ours)]
    assert params[0].keys() == params[1].keys()
    opts = [torch.optim.SGD(list(p.values()), lr=0.5, momentum=0.9) for p in params]
    g = torch.Generator().manual_seed(1)
    for step in range(5):                            # 2 steps with frozen prototypes, then 3 with moving ones
        batch = _swav_batch(g)
        losses, grads = [], []
        for arm, opt, named in zip((theirs, ours), opts, params):
            opt.zero_grad(set_to_none=True)
            out = arm(batch, step)
            out["loss"].backward()
            losses.append(float(out["loss"].detach()))
            grads.append(_grads(named))
            opt.step()
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), step
        for k in grads[0]:
            assert torch.allclose(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-6), (step, k)
        assert (grads[1]["prototypes"].abs().sum() == 0) == (step < 2), step
    w_theirs, w_ours = params[0]["prototypes"], params[1]["prototypes"]
    assert torch.allclose(w_theirs, w_ours, atol=1e-5)


def test_the_two_differences_by_design_prototype_bias_and_crop_batching():
    """lightly's prototypes carry a bias (SwAV's have none) and its example sends each crop through the head's
    BatchNorm on its own; with the bias zeroed and the crops grouped the first losses agree."""
    batch = _swav_batch(torch.Generator().manual_seed(1))
    theirs, ours = _swav_pair(bias=True)
    assert theirs.prototypes.heads[0].bias is not None and ours.objective.prototypes.bias is None
    mine = float(ours(batch, 0)["loss"].detach())
    assert float(theirs(batch, 0)["loss"].detach()) != pytest.approx(mine, rel=1e-3)  # the bias shifts every logit
    with torch.no_grad():
        theirs.prototypes.heads[0].bias.zero_()
    assert float(theirs(batch, 0)["loss"].detach()) == pytest.approx(mine, rel=1e-5)
    one_by_one, per_crop = _swav_pair(bias=False, grouped=False, cfg=replace(SWAV, batchnorm="crop"))
    theirs_one_by_one = float(one_by_one(batch, 0)["loss"].detach())
    assert theirs_one_by_one != pytest.approx(mine, rel=1e-3)  # other BatchNorm statistics
    assert float(per_crop(batch, 0)["loss"].detach()) == pytest.approx(theirs_one_by_one, rel=1e-5)  # batchnorm: crop


def _photos(root: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 40, 40), (40, 40, 200)]):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")


TINY = ["model.name=test_convnext", "model.img_size=40", "data.batch_size=4", "data.epoch_length=8",
        "data.multicrop.local_size=32", "data.multicrop.n_local=2", "objective.swav.prototypes=8",
        "objective.swav.projection_dim=8", "objective.swav.hidden_dim=16", "objective.dino.out_dim=32",
        "objective.dino.hidden_dim=16", "objective.dino.bottleneck_dim=8"]


@pytest.mark.parametrize("crops", ["tagsight", "lightly"])
def test_the_tiny_comparison_runs_every_arm_writes_its_table_and_resumes(tmp_path, crops, capsys):
    _photos(tmp_path / "photos")
    argv = ["--train", str(tmp_path / "photos"), "--val", str(tmp_path / "photos"), "--out", str(tmp_path / "out"),
            "--seeds", "0,1", "--steps", "3", "--crops", crops, "--probe-epochs", "2", "--workers", "0"]
    for s in TINY:
        argv += ["--set", s]
    assert bench.main(argv) == 0
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 2 + 2 * 2 * 2                       # the random floor, then 2 methods x 2 impls x 2 seeds
    trained = [r for r in runs if r["impl"] != "random"]
    assert {(r["method"], r["impl"]) for r in trained} == {(m, i) for m in ("swav", "dino") for i in ("tagsight", "lightly")}
    assert all(r["steps"] == 3 and 0 <= r["knn_top1"] <= 1 and 0 <= r["linear_top1"] <= 1 for r in runs)
    assert all(np.isfinite(r["last_loss"]) for r in trained)
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| dino | lightly | 2 |" in table and "| - | random | 2 |" in table
    assert table in capsys.readouterr().out
    before = (tmp_path / "out" / "results.json").read_text()
    assert bench.main(argv) == 0                             # every run is done: nothing runs again
    assert (tmp_path / "out" / "results.json").read_text() == before


def test_the_same_seed_gives_every_arm_the_same_crops(tmp_path):
    _photos(tmp_path / "photos")
    spec = bench.Spec(str(tmp_path / "photos"), str(tmp_path / "photos"), overrides=tuple(TINY), workers=0)
    cfg = spec.config("dino")
    backbone = bench.seeded_backbone(cfg, 0)
    first = [next(iter(bench.loader(spec, m, cfg, backbone, bench.FolderImages(spec.train), 2, 0)))
             for m in ("dino", "dino", "swav")]
    assert all(torch.equal(first[0][k], f[k]) for f in first[1:] for k in ("image", "local"))
    other = next(iter(bench.loader(spec, "dino", cfg, backbone, bench.FolderImages(spec.train), 2, 1)))
    assert not torch.equal(first[0]["image"], other["image"])


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="methods"):
        bench.Spec("a", "b", methods=("byol",))
    with pytest.raises(ValueError, match="crops"):
        bench.Spec("a", "b", crops="torchvision")
    with pytest.raises(ValueError, match="checkpoint_every"):
        bench.Spec("a", "b", checkpoint_every=-1)
    with pytest.raises(ValueError, match="DINO only"):
        bench.Spec("a", "b", same_init=True)          # SwAV among the methods: lightly's prototypes differ
    assert bench.main(["--train", "/nonexistent", "--val", "/nonexistent", "--out", "/tmp/x-ssl"]) == 2


class _Killed(Exception):
    """Stands for the process dying between two steps."""


def _arm_and_batches(spec: bench.Spec, method: str, impl: str, steps: int):
    cfg = spec.config(method)
    _, freeze, schedule = bench.plan(cfg, spec)
    backbone = bench.seeded_backbone(cfg, 0)
    arm = bench.build_arm(method, impl, backbone, getattr(cfg.objective, method), cfg.data.multicrop.n_global,
                          freeze, schedule)
    photos = bench.FolderImages(spec.train)
    return arm, cfg, lambda start: iter(bench.loader(spec, method, cfg, backbone, photos, steps, 0, start))


@pytest.mark.parametrize("method,impl", [(m, i) for m in ("swav", "dino") for i in ("tagsight", "lightly")])
def test_an_arm_killed_mid_run_resumes_from_its_checkpoint_bit_identical(tmp_path, method, impl):
    _photos(tmp_path / "photos")
    spec = bench.Spec(str(tmp_path / "photos"), str(tmp_path / "photos"), overrides=tuple(TINY), workers=0,
                      checkpoint_every=2)
    steps, path = 5, tmp_path / "ckpt" / "arm.pt"
    whole, cfg, batches = _arm_and_batches(spec, method, impl, steps)
    expected = bench.train(whole, batches, cfg, steps, "cpu")

    def dies_after_three(start: int):
        for i, batch in enumerate(batches(start)):
            if start + i == 3:
                raise _Killed
            yield batch

    first, cfg, batches = _arm_and_batches(spec, method, impl, steps)
    with pytest.raises(_Killed):
        bench.train(first, dies_after_three, cfg, steps, "cpu", bench.ArmCheckpoint(path, 2))
    assert torch.load(path, weights_only=False)["step"] == 2     # the step-2 save survives the kill
    again, cfg, batches = _arm_and_batches(spec, method, impl, steps)
    resumed = bench.train(again, batches, cfg, steps, "cpu", bench.ArmCheckpoint(path, 2))
    assert resumed.step == steps and resumed.losses == expected.losses
    ours, theirs = again.state_dict(), whole.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert not path.exists()                                  # a finished arm leaves no checkpoint behind


# ------------------------------------------------------------------------------------------------ split (DINO)


def _split_tree(root: Path, per_class: dict[str, int]) -> None:
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4), (i * 20 % 256, 0, 0)).save(root / cls / f"{cls}_{i:03d}.jpg")


def test_the_split_is_per_class_deterministic_hard_linked_and_reconciles(tmp_path):
    import split as ssl_split

    src = tmp_path / "train"
    _split_tree(src, {"dog": 10, "fish": 5})
    counts = ssl_split.split(ssl_split.SplitConfig(src, tmp_path / "a", holdout=0.2, seed=0))
    assert counts == {"dog": {"in": 10, "fit": 8, "holdout": 2}, "fish": {"in": 5, "fit": 4, "holdout": 1}}
    fit = sorted(p.relative_to(tmp_path / "a" / "fit") for p in (tmp_path / "a" / "fit").rglob("*.jpg"))
    hold = sorted(p.relative_to(tmp_path / "a" / "holdout") for p in (tmp_path / "a" / "holdout").rglob("*.jpg"))
    assert not set(fit) & set(hold) and len(fit) + len(hold) == 15
    assert all((tmp_path / "a" / "fit" / p).stat().st_ino == (src / p).stat().st_ino for p in fit)   # links
    assert json.loads((tmp_path / "a" / "split.json").read_text())["total"] == {"in": 15, "fit": 12, "holdout": 3}
    # the same seed gives the same split; another seed another one; a photo's side does not depend on the others
    ssl_split.split(ssl_split.SplitConfig(src, tmp_path / "b", holdout=0.2, seed=0))
    assert sorted(p.relative_to(tmp_path / "b" / "holdout") for p in (tmp_path / "b" / "holdout").rglob("*.jpg")) \
        == hold
    other = [ssl_split.assign([f"dog/dog_{i:03d}.jpg" for i in range(10)], 0.2, s) for s in range(1, 6)]
    assert any({n for n, part in o.items() if part == "holdout"} != {f"{p}" for p in hold if p.parts[0] == "dog"}
               for o in other)
    names = [f"c/{i}.jpg" for i in range(50)]
    big, small = ssl_split.assign(names, 0.2, 3), ssl_split.assign(names[:-1], 0.2, 3)
    assert sum(big[n] != small[n] for n in names[:-1]) <= 1     # removing one photo moves at most one other
    # the split reads as the benchmark reads it
    assert len(bench.FolderImages(tmp_path / "a" / "fit")) == 12


def test_the_split_refuses_bad_settings_a_used_folder_and_a_class_too_small(tmp_path):
    import split as ssl_split

    src = tmp_path / "train"
    _split_tree(src, {"dog": 4, "fish": 1})
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="holdout"):
            ssl_split.SplitConfig(src, tmp_path / "out", holdout=bad)
    with pytest.raises(ValueError, match="at least 2 photos"):
        ssl_split.split(ssl_split.SplitConfig(src, tmp_path / "out"))
    (tmp_path / "used" / "fit").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="already holds a split"):
        ssl_split.split(ssl_split.SplitConfig(src, tmp_path / "used"))
    assert not (tmp_path / "out").exists()          # refused before any link is made
    for fraction in (0.01, 0.99):                    # at least one photo on each side
        assert sorted(ssl_split.assign(["a", "b"], fraction, 0).values()) == ["fit", "holdout"]


# ------------------------------------------------------------------------------ DINO at the preset's structure


def _lightly_head_state(head: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A lightly DINO head's weights, statistics and effective (weight-normalised) last layer under our names."""
    state = {f"mlp.{k}": v for k, v in head.layers.state_dict().items()}
    return {**state, "last_layer.weight": torch._weight_norm(head.last_layer.weight_v, head.last_layer.weight_g, 0)}


def _our_head_state(head: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = {k: v for k, v in head.state_dict().items() if k != "last_layer.weight"}
    return {**state, "last_layer.weight": F.normalize(head.last_layer.weight, dim=1)}


def _assert_close(theirs: dict[str, torch.Tensor], ours: dict[str, torch.Tensor], what: str, tol: float) -> None:
    for k, v in theirs.items():
        assert torch.allclose(v.double(), ours[k].double(), rtol=tol, atol=tol), (what, k)


BN_DINO = TINY + ["model.name=test_resnet", "data.batch_size=8", "objective.dino.use_bn=true",
                  "objective.dino.batchnorm=crop", "objective.dino.teacher_temp=0.07",
                  "objective.dino.momentum_teacher=0.9", "optim.base_lr=0.005", "optim.reference_batch=8",
                  "optim.weight_decay=0.5"]


def test_dino_heads_initialise_as_lightly_and_the_official_dino_head_and_the_teacher_starts_as_the_student():
    """DINOHead (facebookresearch/dino) and lightly: hidden Linears truncated-normal std 0.02 with zero biases, the
    last layer a default Linear (built after that initialisation) with rows of norm 1 (weight_g = 1, frozen); the
    teacher a copy of the student, BatchNorm statistics included."""
    cfg = bench.Spec("a", "b", overrides=tuple(BN_DINO)).config("dino").objective.dino
    cfg = replace(cfg, hidden_dim=512, bottleneck_dim=256, out_dim=2048)
    torch.manual_seed(0)
    theirs = LightlyDino(create_backbone("test_resnet"), cfg, DinoSchedule())
    ours = DinoObjective(create_backbone("test_resnet"), cfg, 2, DinoSchedule())
    for a, b in zip(theirs.student_head.layers, ours.student["head"].mlp, strict=True):
        assert type(a) is type(b)
        if isinstance(a, torch.nn.Linear):
            for w in (a.weight, b.weight):
                assert abs(float(w.std()) - 0.02) < 0.001 and float(w.abs().max()) <= 2
            assert b.bias is not None and not b.bias.any() and (a.bias is None or not a.bias.any())
    bound = 1 / cfg.bottleneck_dim ** 0.5                     # nn.Linear's default (Kaiming-uniform) bound
    for v in (theirs.student_head.last_layer.weight_v, ours.student["head"].last_layer.weight):
        assert float(v.abs().max()) <= bound and abs(float(v.std()) - bound / 3 ** 0.5) < 0.05 * bound
    g = theirs.student_head.last_layer.weight_g
    assert torch.equal(g, torch.ones_like(g)) and not g.requires_grad
    _assert_close(_lightly_head_state(theirs.student_head), _lightly_head_state(theirs.teacher_head), "lightly", 0)
    _assert_close(_our_head_state(ours.student["head"]), _our_head_state(ours.teacher_head), "ours", 0)
    s, t = ours.student["backbone"].state_dict(), ours.backbone.state_dict()
    assert s.keys() == t.keys() and all(torch.equal(s[k], t[k]) for k in s)


def test_tagsight_dino_matches_lightly_dino_step_for_step_with_batchnorm_backbone_and_head():
    """The preset's structure (a BatchNorm ResNet, the head with BatchNorm, every crop its own BatchNorm batch as
    lightly's example runs them) through the benchmark's own loop (its optimiser: SGD, Nesterov momentum, weight
    decay on every trainable weight, one parameter group per arm; its lr schedule; the arms' hooks), 6 steps:
    2 with the last layer frozen, 3 of teacher-temperature warm-up. Equal: every loss, the centre, every student
    weight and BatchNorm statistic, the teacher's weights AND its BatchNorm running statistics (the probes
    evaluate the teacher backbone in eval mode). A small learning rate keeps float rounding from growing (the
    arms agree to ~1e-6), and weight decay 1000x the preset's makes the frozen layer's handling show within 6
    steps (weight decay and momentum on the frozen layer: ~1e-4 apart)."""
    spec = bench.Spec("a", "b", overrides=tuple(BN_DINO))
    cfg = spec.config("dino")
    dcfg, schedule, steps = cfg.objective.dino, DinoSchedule(total_steps=6, freeze_batches=2, warmup_batches=3), 6
    assert dcfg.use_bn and dcfg.batchnorm == "crop" and cfg.optim.nesterov and cfg.optim.weight_decay == 0.5
    torch.manual_seed(0)
    ours = TagsightArm(DinoObjective(create_backbone("test_resnet"), dcfg, 2, schedule))
    theirs = LightlyDino(create_backbone("test_resnet"), dcfg, schedule)
    obj = ours.objective
    theirs.student_backbone.load_state_dict(obj.student["backbone"].state_dict())
    theirs.teacher_backbone.load_state_dict(obj.backbone.state_dict())
    assert not torch.allclose(theirs.student_head.layers[0].weight, obj.student["head"].mlp[0].weight)
    start_as(theirs, ours)          # what --same-init does
    _assert_close(_lightly_head_state(theirs.student_head), _our_head_state(obj.student["head"]), "start", 1e-7)
    _assert_close(_lightly_head_state(theirs.teacher_head), _our_head_state(obj.teacher_head), "start", 1e-7)
    trainable = [{n for n, p in arm.named_parameters() if p.requires_grad} for arm in (theirs, ours)]
    head_biases = {"objective.student.head.mlp.0.bias", "objective.student.head.mlp.3.bias"}   # before BatchNorm
    assert len(trainable[0]) == len(trainable[1] - head_biases) and head_biases <= trainable[1]
    g = torch.Generator().manual_seed(1)
    batches = [{"image": torch.randn(8, 2, 3, 40, 40, generator=g), "local": torch.randn(8, 2, 3, 32, 32, generator=g)}
               for _ in range(steps)]
    done = [bench.train(arm, lambda start: iter(batches[start:]), cfg, steps, "cpu") for arm in (theirs, ours)]
    assert done[0].losses == pytest.approx(done[1].losses, rel=1e-5)
    assert torch.allclose(theirs.loss.center.view(1, -1), obj.center, atol=1e-6)
    for name, a, b in (("student backbone", theirs.student_backbone, obj.student["backbone"]),
                       ("teacher backbone", theirs.teacher_backbone, obj.backbone)):
        _assert_close(a.state_dict(), b.state_dict(), name, 1e-5)
    _assert_close(_lightly_head_state(theirs.student_head), _our_head_state(obj.student["head"]), "student head", 1e-5)
    _assert_close(_lightly_head_state(theirs.teacher_head), _our_head_state(obj.teacher_head), "teacher head", 1e-5)
    assert all(float(obj.student["head"].mlp[i].bias.abs().max()) < 1e-6 for i in (0, 3))
    stats = [k for k in theirs.teacher_backbone.state_dict() if k.endswith("running_var")]
    assert stats and not torch.allclose(obj.backbone.state_dict()[stats[0]], torch.ones(1))   # statistics moved


class _Diverging(torch.nn.Module):
    """An arm whose loss is finite until step ``at`` (0-based), then NaN."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.w, self.at = torch.nn.Parameter(torch.ones(3)), at

    def forward(self, batch, step):
        return {"loss": (self.w * batch["x"]).sum() * (float("nan") if step >= self.at else 1.0)}

    def before_step(self, step):
        return None

    def after_step(self, step):
        return None


def test_an_arm_whose_loss_stops_being_finite_stops_there_and_is_reported_not_evaluated(tmp_path):
    spec, _ = bench.parse(["--train", str(tmp_path), "--val", str(tmp_path), "--out", str(tmp_path / "o")] +
                          [a for s in TINY for a in ("--set", s)])
    saved = tmp_path / "arm.pt"
    arm = _Diverging(at=2)
    done = bench.train(arm, lambda start: iter({"x": torch.ones(3)} for _ in range(start, 5)), spec.config("swav"),
                       5, "cpu", bench.ArmCheckpoint(saved, 1))
    assert done.diverged_at == 3 and done.step == 3 and len(done.losses) == 3 and np.isnan(done.losses[-1])
    assert torch.isfinite(arm.w).all() and not saved.exists()       # no step taken on the NaN, no checkpoint left
    ok = {"method": "swav", "impl": "tagsight", "seed": 0, "knn_top1": 0.3, "knn_top5": 0.7, "linear_top1": 0.4,
          "linear_top5": 0.8, "first_loss": 4.8, "last_loss": 4.1, "train_s": 1.0}
    bad = {"method": "swav", "impl": "lightly", "seed": 1, "first_loss": 4.9, "last_loss": None, "train_s": 1.0,
           "diverged_at": 31}
    table = bench.table([ok, bad], replace(spec, methods=["swav"]))
    assert "| swav | lightly | 1 | diverged: seed 1 at step 31 (loss not finite; not evaluated)" in table
    assert "| swav | tagsight | 1 | 30.0 ± 0.0 |" in table


def test_drift_trains_both_dino_arms_from_one_start_and_shows_their_losses_step_by_step(tmp_path, capsys):
    """bench/ssl/drift.py: the same start (--same-init), the same crops and BatchNorm batches (the head's, each crop
    its own): the two arms' losses agree to float rounding at every step shown; with the crops of one size grouped
    in our head's BatchNorm, as the preset does, they differ from the first step."""
    import drift

    _photos(tmp_path / "photos")

    def shown(*sets: str) -> list[list[str]]:
        argv = ["--train", str(tmp_path / "photos"), "--shown", "3", "--steps", "6", "--workers", "0"]
        for s in [*TINY, *sets]:
            argv += ["--set", s]
        assert drift.main(argv) == 0
        return [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]

    rows = shown("objective.dino.batchnorm=crop")
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    assert all(abs(float(r[1]) - float(r[2])) < 1e-4 and float(r[3]) < 1e-4 for r in rows)
    assert float(shown("objective.dino.batchnorm=resolution")[0][3]) > 1e-3
