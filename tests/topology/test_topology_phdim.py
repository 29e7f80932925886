"""PHdim: equality with the authors' procedure, known answers on cubes, seeds, bad input."""

import numpy as np
import pytest
import torch

from reptopo.topology import PHDimResult, phdim, phdim_sizes, phdim_subsample_indices
from reptopo.topology.reference import authors_phdim


def cube(k, n=3000, ambient=64, seed=0):
    """Uniform sample of [0, 1]^k isometrically embedded in R^ambient (random orthonormal frame)."""
    rng = np.random.default_rng(seed)
    frame, _ = np.linalg.qr(rng.normal(size=(ambient, k)))
    return rng.random((n, k)) @ frame.T


def test_equals_authors_procedure_on_the_same_subsamples():
    X = np.random.default_rng(0).normal(size=(1300, 40))
    res = phdim(X, seed=3)  # paper protocol: n = 500, 850, 1200
    np.testing.assert_array_equal(res.sizes, [500, 850, 1200])
    subs = [s[0] for s in phdim_subsample_indices(1300, res.sizes, 1, seed=3)]
    ref_dim, ref_E = authors_phdim(X, subs)
    np.testing.assert_allclose(res.E[:, 0], 2 * ref_E, rtol=1e-6)  # E(n) = ripser H0, per subsample
    assert res.dim == pytest.approx(ref_dim, rel=1e-6)
    assert res.dim_std == 0.0 and res.dims_per_repeat.shape == (1,)


def test_alpha_weighted_E_matches_ripser():
    X = np.random.default_rng(1).uniform(size=(700, 5))
    res = phdim(X, n_start=200, n_step=150, alpha=2.0, seed=0)
    subs = [s[0] for s in phdim_subsample_indices(700, res.sizes, 1, seed=0)]
    _, ref_E = authors_phdim(X, subs, alpha=2.0)
    np.testing.assert_allclose(res.E[:, 0], 2 * ref_E, rtol=1e-6)
    assert res.dim == pytest.approx(2.0 / (1.0 - res.slope))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_cube_within_5_percent(k):
    # n_repeats=5 (seeded) averages out subsample noise; one repeat lands within ~4 % for k=3.
    res = phdim(cube(k), n_repeats=5, seed=0)
    assert res.dim == pytest.approx(k, rel=0.05)


def test_5_cube_within_15_percent():
    # The estimator is biased low as k grows (about 4.6 here); 5 repeats, seeded.
    res = phdim(cube(5), n_repeats=5, seed=0)
    assert res.dim == pytest.approx(5, rel=0.15)


def test_uniform_square_within_10_percent():
    X = np.random.default_rng(2).uniform(size=(3000, 2))
    assert phdim(X, seed=0).dim == pytest.approx(2, rel=0.10)


def test_same_seed_same_result_and_different_seed_different_subsamples():
    X = np.random.default_rng(3).normal(size=(1000, 8))
    a = phdim(X, n_start=200, n_step=200, n_repeats=2, seed=7)
    b = phdim(X, n_start=200, n_step=200, n_repeats=2, seed=7)
    c = phdim(X, n_start=200, n_step=200, n_repeats=2, seed=8)
    np.testing.assert_array_equal(a.E, b.E)
    assert a.dim == b.dim and a.slope == b.slope
    assert not np.any(a.E == c.E)
    sa = phdim_subsample_indices(1000, a.sizes, 2, seed=7)
    sc = phdim_subsample_indices(1000, a.sizes, 2, seed=8)
    assert not np.array_equal(sa[0][0], sc[0][0])


def test_subsample_draw_order_is_documented_one():
    rng = np.random.default_rng(11)
    expected = [[rng.choice(900, n, replace=False) for _ in range(3)] for n in (100, 300)]
    got = phdim_subsample_indices(900, [100, 300], 3, seed=11)
    for e_size, g_size in zip(expected, got):
        for e, g in zip(e_size, g_size):
            np.testing.assert_array_equal(e, g)


def test_repeats_fit_and_spread():
    X = np.random.default_rng(4).uniform(size=(1200, 3))
    res = phdim(X, n_start=200, n_step=200, n_repeats=4, seed=1)
    assert isinstance(res, PHDimResult)
    assert res.E.shape == (res.sizes.size, 4) and res.dims_per_repeat.shape == (4,)
    x = np.log(res.sizes)
    slope, intercept = np.polyfit(x, np.log(res.E).mean(axis=1), 1)
    assert res.slope == pytest.approx(slope, rel=1e-10)
    assert res.intercept == pytest.approx(intercept, rel=1e-10)
    slopes_r = [np.polyfit(x, np.log(res.E[:, r]), 1)[0] for r in range(4)]
    assert res.slope == pytest.approx(np.mean(slopes_r), rel=1e-10)
    np.testing.assert_allclose(res.dims_per_repeat, 1 / (1 - np.array(slopes_r)), rtol=1e-10)
    assert res.dim_std == pytest.approx(np.std(res.dims_per_repeat, ddof=1))
    assert res.dim_std > 0
    with pytest.raises(ValueError):
        res.E[0, 0] = 1.0  # read-only


def test_torch_engine_matches_numpy_engine():
    X = np.random.default_rng(5).normal(size=(600, 16))
    a = phdim(X, n_start=150, n_step=150, n_repeats=2, device="cpu")
    b = phdim(torch.from_numpy(X), n_start=150, n_step=150, n_repeats=2, device="torch-cpu")
    np.testing.assert_allclose(b.E, a.E, rtol=1e-12)
    assert b.dim == pytest.approx(a.dim, rel=1e-10)
    assert a.engine == "numpy" and b.engine == "torch-cpu"


def test_duplicated_points_are_fine():
    rng = np.random.default_rng(6)
    base = rng.normal(size=(400, 5))
    X = np.vstack([base, base[:200]])
    res = phdim(X, n_start=100, n_step=100, seed=0)
    subs = [s[0] for s in phdim_subsample_indices(len(X), res.sizes, 1, seed=0)]
    _, ref_E = authors_phdim(X, subs)
    np.testing.assert_allclose(res.E[:, 0], 2 * ref_E, rtol=1e-6)


def test_sizes():
    np.testing.assert_array_equal(phdim_sizes(3000), [500, 850, 1200, 1550, 1900, 2250, 2600, 2950])
    np.testing.assert_array_equal(phdim_sizes(1200), [500, 850])


def test_bad_input():
    X = np.random.default_rng(7).normal(size=(900, 3))
    bad = X.copy()
    bad[1, 1] = np.nan
    bad[2, 2] = np.inf
    with pytest.raises(ValueError, match="1 NaN and 1 inf"):
        phdim(bad)
    with pytest.raises(ValueError, match="2-D"):
        phdim(X.ravel())
    with pytest.raises(ValueError, match="2-D"):
        phdim(X.reshape(30, 30, 3))
    with pytest.raises(ValueError, match="n_start=1000"):
        phdim(X, n_start=1000)
    with pytest.raises(ValueError, match="only one"):
        phdim(X, n_start=500, n_step=500)
    with pytest.raises(ValueError, match="n_step"):
        phdim(X, n_step=0)
    with pytest.raises(ValueError, match="n_step"):
        phdim(X, n_step=-5)
    with pytest.raises(ValueError, match="alpha"):
        phdim(X, n_start=100, alpha=0)
    with pytest.raises(ValueError, match="alpha"):
        phdim(X, n_start=100, alpha=-1.0)
    with pytest.raises(ValueError, match="n_repeats"):
        phdim(X, n_start=100, n_repeats=0)


def test_identical_points_raise_a_clear_error():
    with pytest.raises(ValueError, match="all 900 points of X are identical"):
        phdim(np.full((900, 4), 3.0), n_start=100)


def test_subsample_with_zero_E_raises_a_clear_error():
    X = np.zeros((600, 2))
    X[0] = 1.0  # only 2 distinct points: most subsamples of 100 points are all zeros
    with pytest.raises(ValueError, match="E\\(n\\) = 0"):
        phdim(X, n_start=100, n_step=100)
