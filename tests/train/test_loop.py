"""The loop with a toy objective and a toy stream: learning, exact resume, checkpoint format."""

import json
import math

import pytest
import torch

from tagsight.train import loop as loop_mod
from tagsight.train.checkpoint import latest_checkpoint
from tagsight.train.distributed import DistEnv
from tagsight.train.loop import Trainer
from tagsight.train.settings import LoopConfig, OptimConfig


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, batch):
        loss = torch.nn.functional.cross_entropy(self.lin(batch["image"]), batch["target"])
        return {"loss": loss, "logit_mean": self.lin.weight.mean().detach()}


class ToyStream:
    """Batch b of epoch e is a pure function of (e, b): what set_position needs to be exact."""

    def __init__(self, batch_size=4):
        self.batch_size, self.epoch, self.start = batch_size, 0, 0
        self.w = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))

    def set_position(self, epoch, batches_done):
        self.epoch, self.start = epoch, batches_done

    def __iter__(self):
        b = self.start
        while True:
            g = torch.Generator().manual_seed(1000 * self.epoch + b)
            x = torch.randn(self.batch_size, 8, generator=g)
            yield {"image": x, "target": (x @ self.w).argmax(1)}
            b += 1


def trainer(tmp_path, **loop_kw):
    cfg = LoopConfig(**{"epochs": 3, "log_every": 2, "checkpoint_every": 5, **loop_kw})
    return Trainer(Toy(), ToyStream(), lambda s: iter(s), OptimConfig(base_lr=0.5, reference_batch=4, warmup_fraction=0.1), cfg,
                   DistEnv(), tmp_path, epoch_length=32, batch_size=4)


def params(t):
    return torch.cat([p.detach().flatten() for p in t.model.parameters()])


def test_loss_falls_and_metrics_are_logged(tmp_path):
    t = trainer(tmp_path, epochs=6)
    t.fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 48 == t.plan.total_steps
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    assert {"lr", "samples_per_s", "data_s", "compute_s", "logit_mean", "epoch"} <= set(rows[0])


def test_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch):
    straight = trainer(tmp_path / "a")
    straight.fit()
    original = Trainer._optimizer_step
    calls = {"n": 0}

    def crashing(self, *args):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt("killed")
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_optimizer_step", crashing)
    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "b").fit()
    monkeypatch.setattr(Trainer, "_optimizer_step", original)
    assert json.loads((latest_checkpoint(tmp_path / "b") / "state.json").read_text())["step"] == 10
    resumed = trainer(tmp_path / "b")
    resumed.fit()
    assert resumed.step == straight.step == 24
    assert torch.equal(params(resumed), params(straight))
    sd_a, sd_b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sd_a[k]["momentum_buffer"], sd_b[k]["momentum_buffer"]) for k in sd_a)


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    a = Trainer(Toy(), ToyStream(8), lambda s: iter(s), OptimConfig(), LoopConfig(max_steps=3), DistEnv(),
                tmp_path / "a", epoch_length=64, batch_size=8)
    a.fit()
    def pairs():  # the same 8 samples as the batch-8 stream, delivered as two halves
        for batch in ToyStream(8).__iter__():
            yield {k: v[:4] for k, v in batch.items()}
            yield {k: v[4:] for k, v in batch.items()}

    b = Trainer(Toy(), ToyStream(4), lambda s: pairs(), OptimConfig(), LoopConfig(max_steps=3, accumulate=2), DistEnv(),
                tmp_path / "b", epoch_length=64, batch_size=4)
    assert b.plan.global_batch == a.plan.global_batch == 8
    b.fit()
    assert torch.allclose(params(a), params(b), atol=1e-6)


def test_checkpoints_are_safetensors_and_json_with_a_latest_pointer(tmp_path):
    trainer(tmp_path, keep_last=2).fit()
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["latest", "step-00000020", "step-00000024"]
    files = sorted(p.name for p in latest_checkpoint(tmp_path).iterdir())
    assert files == ["model.safetensors", "optim.safetensors", "rng.safetensors", "state.json"]
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))


def test_an_epoch_too_short_for_one_step_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no full optimiser step"):
        loop_mod.plan(3, 4, DistEnv(), LoopConfig())


def test_a_compiled_forward_trains_like_the_eager_one(tmp_path):
    eager = trainer(tmp_path / "eager", max_steps=6)
    eager.fit()
    compiled = trainer(tmp_path / "compiled", max_steps=6, compile="eager")   # dynamo traces; no C compiler needed
    assert compiled.train_forward is not compiled.ddp
    compiled.fit()
    assert torch.allclose(params(eager), params(compiled), atol=1e-6)


def test_an_unknown_compile_backend_is_refused():
    with pytest.raises(ValueError, match="loop.compile"):
        LoopConfig(compile="turbo")


def test_progress_counts_to_max_steps_not_the_whole_schedule(tmp_path, monkeypatch):
    totals = []

    class Recorder:
        def __init__(self, total, desc, unit, initial=0):
            totals.append(total)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            pass

    monkeypatch.setattr(loop_mod, "Progress", Recorder)
    t = trainer(tmp_path, max_steps=4)
    t.fit()
    assert t.plan.total_steps == 24 and totals == [4]


def test_a_resumed_run_counts_its_earlier_steps_but_times_only_its_own(tmp_path, monkeypatch):
    seen = []

    class Recorder:
        def __init__(self, total, desc, unit, initial=0):
            seen.append((total, initial))
            self.done = initial

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.done += n
            seen.append(self.done)

    first = trainer(tmp_path, max_steps=2)
    first.fit()
    monkeypatch.setattr(loop_mod, "Progress", Recorder)
    trainer(tmp_path, max_steps=4).fit()
    assert seen == [(4, 2), 3, 4]


def test_data_and_compute_time_split_the_elapsed_time(tmp_path):
    rows = []
    t = trainer(tmp_path, max_steps=4, log_every=4)
    t.fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    row = rows[-1]
    per_batch = 4 / row["samples_per_s"]
    assert row["data_s"] >= 0 and row["compute_s"] > 0
    assert row["data_s"] + row["compute_s"] == pytest.approx(per_batch, rel=0.05)


class Uint8Stream(ToyStream):
    """ToyStream's batches as uint8 'pixels': the loader ships them unnormalised."""

    def __iter__(self):
        for batch in super().__iter__():
            yield {**batch, "image": (batch["image"] * 10 + 128).clamp(0, 255).to(torch.uint8)}


class Normalised(Uint8Stream):
    def __iter__(self):
        for batch in super().__iter__():
            yield {**batch, "image": finish(batch["image"])}


def finish(images):
    return (images.float() - 128) / 10


def test_uint8_batches_finished_on_the_device_train_like_batches_finished_in_the_loader(tmp_path):
    def run(stream, **kw):
        t = Trainer(Toy(), stream, lambda s: iter(s), OptimConfig(base_lr=0.5, reference_batch=4), LoopConfig(max_steps=5),
                    DistEnv(), tmp_path / type(stream).__name__, epoch_length=32, batch_size=4, **kw)
        t.fit()
        return params(t)

    assert torch.equal(run(Uint8Stream(), finish=finish), run(Normalised()))


class Diverging(Toy):
    """Toy whose loss turns NaN from its 4th forward pass on."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        out = super().forward(batch)
        return {**out, "loss": out["loss"] * (float("nan") if self.calls >= 4 else 1.0)}


def test_a_loss_that_stops_being_finite_stops_training_with_a_reason_and_keeps_earlier_checkpoints(tmp_path):
    from tagsight.fsio import ReasonError

    cfg = LoopConfig(epochs=3, log_every=2, checkpoint_every=2)
    t = Trainer(Diverging(), ToyStream(), lambda s: iter(s), OptimConfig(base_lr=0.5, reference_batch=4), cfg,
                DistEnv(), tmp_path, epoch_length=32, batch_size=4)
    with pytest.raises(ReasonError, match="step 4") as err:
        t.fit()
    assert err.value.reason == "loss_not_finite"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and math.isnan(rows[-1]["loss"])
    assert [c.name for c in sorted((tmp_path / "checkpoints").glob("step-*"))] == ["step-00000002"]


def test_a_diverged_run_saves_no_checkpoint_between_logged_steps(tmp_path):
    from tagsight.fsio import ReasonError

    cfg = LoopConfig(epochs=3, log_every=10, checkpoint_every=2)       # NaN from step 4: the checkpoint at 4 is refused
    t = Trainer(Diverging(), ToyStream(), lambda s: iter(s), OptimConfig(base_lr=0.5, reference_batch=4), cfg,
                DistEnv(), tmp_path, epoch_length=32, batch_size=4)
    with pytest.raises(ReasonError, match="step 4"):
        t.fit()
    assert [c.name for c in sorted((tmp_path / "checkpoints").glob("step-*"))] == ["step-00000002"]
