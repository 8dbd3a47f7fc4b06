import math

import numpy as np
import pytest

from tagsight.curate.judge.stats import bootstrap_mean_ci, sign_test, wilson_interval


def test_wilson_interval_matches_the_formula_and_edge_cases():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_sign_test_exact_values():
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    assert sign_test(0, 10) == pytest.approx(2 / 1024)
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)     # 0.109375
    assert sign_test(600, 400) < 1e-9


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small, big = rng.normal(0.2, 1.0, 30), rng.normal(0.2, 1.0, 3000)
    lo, hi = bootstrap_mean_ci(small, 2000, seed=0)
    assert lo < small.mean() < hi
    blo, bhi = bootstrap_mean_ci(big, 2000, seed=0)
    assert bhi - blo < (hi - lo) / 5 and blo < 0.2 < bhi
    assert bootstrap_mean_ci(small, 2000, seed=0) == (lo, hi)      # seeded
    assert bootstrap_mean_ci([0.5] * 10, 500) == (0.5, 0.5)
