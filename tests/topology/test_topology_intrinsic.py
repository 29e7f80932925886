"""TwoNN / MLE intrinsic dimension via scikit-dimension."""

import numpy as np
import pytest
import skdim

from reptopo.topology import intrinsic_dimension


def linear_manifold(k, n=1500, ambient=20, seed=0):
    rng = np.random.default_rng(seed)
    frame, _ = np.linalg.qr(rng.normal(size=(ambient, k)))
    return rng.uniform(size=(n, k)) @ frame.T


@pytest.mark.parametrize("method", ["twonn", "mle"])
@pytest.mark.parametrize("k", [2, 5])
def test_known_dimension(method, k):
    assert intrinsic_dimension(linear_manifold(k), method) == pytest.approx(k, rel=0.15)


def test_same_as_skdim_on_distinct_points():
    X = linear_manifold(3, n=800)
    assert intrinsic_dimension(X, "twonn") == pytest.approx(skdim.id.TwoNN().fit(X).dimension_)
    assert intrinsic_dimension(X, "mle") == pytest.approx(
        skdim.id.MLE().fit(X, n_neighbors=20).dimension_
    )


def test_duplicates_are_dropped():
    X = linear_manifold(3, n=800)
    Xd = np.vstack([X, X[:100]])
    assert intrinsic_dimension(Xd) == pytest.approx(intrinsic_dimension(X), rel=1e-12)
    assert np.isfinite(intrinsic_dimension(Xd, "mle"))


def test_one_feature():
    X = np.random.default_rng(1).uniform(size=(500, 1))
    assert intrinsic_dimension(X) == pytest.approx(1, rel=0.15)


def test_bad_input():
    with pytest.raises(ValueError, match="method"):
        intrinsic_dimension(linear_manifold(2, n=50), "pca")
    with pytest.raises(ValueError, match="NaN"):
        intrinsic_dimension(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="distinct"):
        intrinsic_dimension(np.ones((10, 3)))


@pytest.mark.parametrize("seed, n, ambient", [(0, 800, 20), (1, 1200, 64), (2, 600, 8)])
def test_shared_neighbours_give_skdims_own_numbers(seed, n, ambient):
    """TwoNN and MLE read their neighbours off one exact distance matrix; scikit-dimension's own
    search (a distance generator, a k-d tree) gives the same dimensions to rounding."""
    from reptopo.topology import intrinsic_dimensions

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) @ rng.normal(size=(4, ambient)) + 0.01 * rng.normal(size=(n, ambient))
    dims = intrinsic_dimensions(X, ["twonn", "mle"])
    assert dims["twonn"] == pytest.approx(skdim.id.TwoNN().fit(X).dimension_, rel=1e-9)
    assert dims["mle"] == pytest.approx(skdim.id.MLE().fit(X, n_neighbors=20).dimension_, rel=1e-9)
    assert dims == {m: intrinsic_dimension(X, m) for m in ("twonn", "mle")}
    assert intrinsic_dimensions(X, []) == {}
