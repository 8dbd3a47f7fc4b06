"""The Fréchet distance against its closed form on Gaussians, and its two computations against each other."""

import numpy as np
import pytest

from tagsight.eval.fid import (GaussianStats, bootstrap_frechet, bootstrap_frechet_difference, frechet_between,
                               frechet_distance)


def test_diagonal_gaussians_match_the_closed_form():
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    expected = ((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum()       # 5 + 4 + 0 + 1 = 10
    d = frechet_distance(GaussianStats(m1, np.diag(s1 ** 2)), GaussianStats(m2, np.diag(s2 ** 2)))
    assert d == pytest.approx(expected, rel=1e-10) and expected == pytest.approx(10.0)


def test_non_commuting_covariances_match_a_matrix_square_root():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    expected = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(scipy_linalg.sqrtm(c1 @ c2)))
    assert frechet_distance(GaussianStats(m1, c1), GaussianStats(m2, c2)) == pytest.approx(expected, rel=1e-8)


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    g = GaussianStats(np.ones(5), a @ a.T)
    assert frechet_distance(g, g) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("n_x,n_y,dim", [(40, 300, 8), (30, 50, 128)])     # more samples than dimensions, and fewer
def test_the_sample_space_form_equals_the_covariance_form(n_x, n_y, dim):
    # rank-deficient covariances leave ~1e-12 eigenvalues whose square roots (~1e-6) the covariance form sums
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(n_x, dim)), rng.normal(0.5, 2.0, size=(n_y, dim))
    assert frechet_between(x, y) == pytest.approx(frechet_distance(GaussianStats.of(x), GaussianStats.of(y)),
                                                  rel=1e-6)


def test_large_samples_converge_to_the_closed_form():
    rng = np.random.default_rng(3)
    x = rng.normal([0.0, 0.0], [1.0, 1.0], size=(200_000, 2))
    y = rng.normal([2.0, 0.0], [1.0, 3.0], size=(200_000, 2))
    assert frechet_between(x, y) == pytest.approx(4.0 + 4.0, rel=0.01)


def test_bootstrap_separates_a_shifted_set_from_a_same_distribution_set():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(400, 6))
    same, shifted = rng.normal(size=(100, 6)), rng.normal(1.0, 1.0, size=(100, 6))   # closed forms 0 and 6
    lo_same, hi_same = bootstrap_frechet(same, ref, resamples=100)
    lo_shift, hi_shift = bootstrap_frechet(shifted, ref, resamples=100)
    assert lo_same < hi_same < lo_shift < hi_shift
    assert lo_shift < 6.0 + 1.0 and hi_shift > 6.0 - 1.0


def test_the_paired_difference_tells_a_closer_set_where_marginal_intervals_cannot():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(300, 6))
    a, b = rng.normal(size=(60, 6)), rng.normal(size=(60, 6))                     # the same distribution
    near, far = rng.normal(size=(60, 6)), rng.normal(0.5, 1.0, size=(60, 6))     # closed forms 0 and 1.5
    lo, hi = bootstrap_frechet(a, ref, resamples=100)
    assert lo > frechet_between(a, ref)                    # the marginal interval lies above its own estimate
    lo, hi = bootstrap_frechet_difference(a, b, ref, resamples=100)
    assert lo < 0.0 < hi
    lo, hi = bootstrap_frechet_difference(far, near, ref, resamples=100)
    assert hi < 0.0 and lo < frechet_between(near, ref) - frechet_between(far, ref) < hi


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_between(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_between(np.zeros((1, 2)), np.zeros((3, 2)))
