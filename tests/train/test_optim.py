import pytest
import torch

from tagsight.train.optim import Schedule, build_optimizer, lr_factor
from tagsight.train.settings import OptimConfig


def test_linear_scaling_rule():
    assert OptimConfig(base_lr=0.1, reference_batch=256).scaled_lr(8064) == pytest.approx(3.15)


def test_warmup_then_cosine_to_zero():
    cfg = OptimConfig(warmup_fraction=0.1, schedule="cosine")
    f = [lr_factor(s, 100, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[9:], f[10:])) and f[-1] < 0.01


def test_step_decay_at_milestones():
    cfg = OptimConfig(warmup_fraction=0.0, schedule="step", step_milestones=(0.5, 0.75), step_gamma=0.1)
    assert [lr_factor(s, 100, cfg) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_sgd_is_nesterov_by_default_and_adamw_is_available():
    p = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(p, OptimConfig(), 512)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["lr"] == pytest.approx(0.2)
    assert isinstance(build_optimizer(p, OptimConfig(name="adamw"), 256), torch.optim.AdamW)
    Schedule(sgd, OptimConfig(warmup_fraction=0.5), 10, 0.2).apply(0)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.04)


@pytest.mark.parametrize("kw", [{"name": "lion"}, {"schedule": "poly"}, {"base_lr": 0}, {"warmup_fraction": 1.0}])
def test_bad_optim_config_is_refused(kw):
    with pytest.raises(ValueError):
        OptimConfig(**kw)
