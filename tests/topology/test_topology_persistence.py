"""Persistence diagrams (H0 exact, H1 = giotto-ph) and Betti curves on known shapes."""

import gph
import numpy as np
import pytest
import ripser
from persim import bottleneck
from scipy.spatial.distance import cdist

from reptopo.topology import (
    betti_curves,
    filtration_grid,
    max_finite_death,
    mst_edge_lengths,
    persistence_diagrams,
)


def circle(n, r=1.0, center=(0.0, 0.0), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    pts = np.stack([r * np.cos(t) + center[0], r * np.sin(t) + center[1]], 1)
    return pts + noise * rng.normal(size=pts.shape)


def h1_lifetimes(X):
    d = persistence_diagrams(X, maxdim=1)[1]
    return np.concatenate([np.sort(d[:, 1] - d[:, 0])[::-1], np.zeros(3)])  # pad: >= 3 entries


def test_output_format():
    X = np.random.default_rng(0).normal(size=(60, 3))
    dgms = persistence_diagrams(X, maxdim=2)
    assert len(dgms) == 3
    for d in dgms:
        assert d.dtype == np.float64 and d.ndim == 2 and d.shape[1] == 2
    assert np.isinf(dgms[0][:, 1]).sum() == 1 and np.isinf(dgms[0][-1, 1])
    assert not np.isinf(dgms[1]).any()
    assert np.all(dgms[0][:, 0] == 0)


def test_h0_deaths_are_mst_lengths_exactly():
    X = np.random.default_rng(1).normal(size=(200, 7))
    h0 = persistence_diagrams(X, maxdim=0)[0]
    assert h0.shape == (200, 2)
    np.testing.assert_array_equal(h0[:-1, 1], mst_edge_lengths(X))


def test_h0_omits_zero_bars_of_duplicates():
    X = np.random.default_rng(2).normal(size=(50, 3))
    X = np.vstack([X, X[:7]])
    h0 = persistence_diagrams(X, maxdim=0)[0]
    assert h0.shape == (50, 2)  # 49 finite positive bars + 1 infinite
    assert np.all(h0[:-1, 1] > 0)


@pytest.mark.parametrize("n,d", [(30, 2), (150, 3), (300, 8), (120, 64)])
def test_h1_equals_giotto_ph_and_ripser(n, d):
    X = np.random.default_rng(10 * n + d).normal(size=(n, d))
    ours = persistence_diagrams(X, maxdim=1)
    ref = gph.ripser_parallel(X, maxdim=1)["dgms"]
    assert ours[1].shape == ref[1].shape
    assert bottleneck(ours[1], ref[1].astype(np.float64)) <= 1e-6
    rip = ripser.ripser(X, maxdim=1)["dgms"]
    assert ours[1].shape == rip[1].shape
    assert bottleneck(ours[1], rip[1].astype(np.float64)) <= 1e-6
    # H0 too: same bars as the float32 references, to float32 precision.
    np.testing.assert_allclose(ours[0][:-1, 1], ref[0][:-1, 1], rtol=1e-6)


def test_h2_equals_giotto_ph():
    X = np.random.default_rng(3).normal(size=(60, 4))
    ours = persistence_diagrams(X, maxdim=2)[2]
    ref = gph.ripser_parallel(X, maxdim=2)["dgms"][2].astype(np.float64)
    assert ours.shape == ref.shape
    assert bottleneck(ours, ref) <= 1e-6


def test_thread_count_does_not_change_output():
    X = np.random.default_rng(4).normal(size=(300, 5))
    a = persistence_diagrams(X, maxdim=1, n_threads=1)
    b = persistence_diagrams(X, maxdim=1, n_threads=-1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_precomputed_matches_points():
    X = np.random.default_rng(5).normal(size=(120, 3))
    a = persistence_diagrams(X, maxdim=1)
    b = persistence_diagrams(cdist(X, X), maxdim=1, metric="precomputed")
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    assert bottleneck(a[1], b[1]) <= 1e-6


def test_torch_engine_gives_same_diagrams():
    X = np.random.default_rng(6).normal(size=(150, 4))
    a = persistence_diagrams(X, maxdim=1, device="cpu")
    b = persistence_diagrams(X, maxdim=1, device="torch-cpu")
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    assert bottleneck(a[1], b[1]) <= 1e-6


def test_noisy_circle_has_one_dominant_h1_bar():
    life = h1_lifetimes(circle(150, noise=0.05))
    assert life[0] > 1.0  # radius-1 circle: the hole lives from ~0.05 to ~sqrt(3)
    assert life[1] < 0.2 * life[0]


def test_two_circles_have_two_dominant_h1_bars():
    X = np.vstack([circle(100, noise=0.03, seed=1), circle(100, 1.5, (5, 0), 0.03, seed=2)])
    life = h1_lifetimes(X)
    assert life[1] > 1.0
    assert life[2] < 0.2 * life[1]


def test_torus_has_two_dominant_h1_bars():
    # Flat (Clifford) torus in R^4 on a jittered grid: two H1 generators of comparable size.
    rng = np.random.default_rng(7)
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 18, endpoint=False),
                       np.linspace(0, 2 * np.pi, 14, endpoint=False))
    u = u.ravel() + rng.normal(0, 0.02, u.size)
    v = v.ravel() + rng.normal(0, 0.02, v.size)
    X = np.stack([2 * np.cos(u), 2 * np.sin(u), 1.5 * np.cos(v), 1.5 * np.sin(v)], 1)
    life = h1_lifetimes(X)
    assert life[1] > 1.0
    assert life[2] < 0.25 * life[1]


def test_two_far_clusters_have_one_long_finite_h0_bar():
    rng = np.random.default_rng(8)
    X = np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + [50.0, 0, 0]])
    h0 = persistence_diagrams(X, maxdim=0)[0]
    finite = np.sort(h0[np.isfinite(h0[:, 1]), 1])[::-1]
    assert finite[0] > 40 and finite[1] < 5


def test_few_points():
    assert [d.shape for d in persistence_diagrams(np.zeros((1, 2)), maxdim=1)] == [(1, 2), (0, 2)]
    dgms = persistence_diagrams(np.array([[0.0, 0.0], [3.0, 4.0]]), maxdim=1)
    np.testing.assert_array_equal(dgms[0], [[0, 5], [0, np.inf]])
    assert dgms[1].shape == (0, 2)


def test_betti_curves_by_hand():
    dgms = [
        np.array([[0.0, 1.0], [0.0, 2.0], [0.0, np.inf]]),
        np.array([[0.5, 1.5], [1.0, 1.0]]),  # second bar has zero length: never alive
    ]
    grid = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 10.0])
    curves = betti_curves(dgms, grid)
    assert curves.dtype == np.int64 and curves.shape == (2, 6)
    # birth <= eps < death
    np.testing.assert_array_equal(curves[0], [3, 3, 2, 2, 1, 1])
    np.testing.assert_array_equal(curves[1], [0, 1, 1, 0, 0, 0])


def test_betti_curves_match_brute_force_on_real_diagrams():
    X = np.random.default_rng(9).normal(size=(100, 3))
    dgms = persistence_diagrams(X, maxdim=1)
    grid = filtration_grid(max_finite_death(dgms), 50)
    curves = betti_curves(dgms, grid)
    for k, d in enumerate(dgms):
        brute = ((d[:, :1] <= grid) & (grid < d[:, 1:])).sum(0)
        np.testing.assert_array_equal(curves[k], brute)
    assert curves[0, 0] == 100 and curves[0, -1] == 1


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        persistence_diagrams(np.zeros(5))
    with pytest.raises(ValueError, match="1 NaN"):
        persistence_diagrams(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="metric"):
        persistence_diagrams(np.zeros((3, 2)), metric="cosine")
    with pytest.raises(ValueError, match="square"):
        persistence_diagrams(np.zeros((3, 2)), metric="precomputed")
    with pytest.raises(ValueError, match="symmetric"):
        persistence_diagrams(np.array([[0.0, 1.0], [2.0, 0.0]]), metric="precomputed")
    with pytest.raises(ValueError, match="maxdim"):
        persistence_diagrams(np.zeros((3, 2)), maxdim=-1)
    with pytest.raises(ValueError, match="grid"):
        betti_curves([np.zeros((1, 2))], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="device"):
        persistence_diagrams(np.zeros((3, 2)), device="tpu")
