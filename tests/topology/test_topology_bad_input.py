"""The topology API refuses input that used to give silent wrong answers, with one ValueError
naming the problem, and stays exact where float32 (giotto-ph) would lose the scale."""
from __future__ import annotations

import numpy as np
import pytest

from reptopo import topology
from reptopo.topology import betti_curves, knn_betti_numbers, lifespans_sum_per_class, persistence_diagrams


def circle(n=40, r=1.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[r * np.cos(t), r * np.sin(t)]


def test_complex_points_are_refused():
    X = circle().astype(complex)
    X[0, 0] += 1j
    with pytest.raises(ValueError, match="X is complex; expected real numbers"):
        persistence_diagrams(X)


@pytest.mark.parametrize("labels", [
    np.r_[np.zeros(20), np.ones(18), [np.nan, np.nan]],
    np.array([0] * 20 + [1] * 18 + [None, None], dtype=object),
])
def test_missing_labels_are_refused(labels):
    with pytest.raises(ValueError, match=r"labels has 2 missing value\(s\) \(NaN or None\)"):
        lifespans_sum_per_class(circle(), 0, labels=labels)


def test_reversed_bars_are_refused():
    with pytest.raises(ValueError, match=r"diagrams\[1\] has 1 bar\(s\) with birth > death"):
        betti_curves([np.array([[0.0, 1.0]]), np.array([[0.5, 0.2], [0.1, 0.3]])], np.linspace(0, 1, 5))


def test_knn_betti_refuses_degrees_it_cannot_count():
    with pytest.raises(ValueError, match="maxdim 0 and 1 only, got maxdim=2"):
        knn_betti_numbers(np.random.default_rng(0).normal(size=(60, 3)), k=6, maxdim=2)


def test_tiny_clouds_are_refused_not_collapsed():
    with pytest.raises(ValueError, match=r"spans only 2e-160 .* underflow float64"):
        persistence_diagrams(circle() * 1e-160)


@pytest.mark.parametrize("scale", [1e-42, 1e-20, 1e40, 1e100])
def test_h1_is_scale_equivariant_beyond_float32(scale):
    # One loop of a 40-gon: H1 = one bar, born at the side length, dying at ~ the diameter's scale.
    base = persistence_diagrams(circle(), maxdim=1)
    scaled = persistence_diagrams(circle() * scale, maxdim=1)
    assert len(scaled[1]) == len(base[1]) == 1 and np.isfinite(scaled[1]).all()
    np.testing.assert_allclose(scaled[1] / scale, base[1], rtol=1e-6)
    np.testing.assert_allclose(scaled[0][:-1] / scale, base[0][:-1], rtol=1e-9)  # H0 in float64
    assert topology.max_finite_death(scaled) / scale == pytest.approx(topology.max_finite_death(base), rel=1e-6)
