"""Lifespans sums L_k: MinMax scaling, global and local modes, the authors' compatibility mode."""

import gph
import numpy as np
import pytest
import ripser
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist
from sklearn.preprocessing import MinMaxScaler

from reptopo.topology import (
    lifespans_from_diagrams,
    lifespans_sum,
    lifespans_sum_per_class,
    minmax_scale,
)


def authors_lifespans_local(X, y, hom_dim, n_classes=10):
    """The authors' Lifespans_layers(mode='local') + compute_topo_summary (ripser), verbatim in
    logic: MinMax on the whole sample, classes 0..8 only, first 250 points per class, each class
    value rounded to 3 decimals, then the mean."""
    X = MinMaxScaler().fit_transform(X)
    vals = []
    for n_class in range(0, n_classes - 1):
        Xc = np.array([X[e] for e, i in enumerate(y) if i == n_class][:250])
        dgms = ripser.ripser(cdist(Xc, Xc), maxdim=hom_dim, distance_matrix=True)["dgms"]
        fin = dgms[hom_dim][np.isfinite(dgms[hom_dim][:, 1])]
        vals.append(round(float(np.sum((fin[:, 1] - fin[:, 0]) * 0.5)), 3))
    return sum(vals) / len(vals)


def test_minmax_matches_sklearn_bit_for_bit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 6)) * [1, 10, 1e-3, 5, 1, 1] + [0, 3, -2, 0, 7, 0]
    X[:, 4] = 7.0  # constant feature -> 0
    got = minmax_scale(X)
    np.testing.assert_array_equal(got, MinMaxScaler().fit_transform(X))
    assert np.all(got[:, 4] == 0)
    assert got.min() == 0 and got.max() == 1


def test_global_l0_is_half_the_mst_length():
    X = np.random.default_rng(1).normal(size=(300, 10))
    mst_total = minimum_spanning_tree(cdist(X, X)).sum()
    assert lifespans_sum(X, 0, scale=None) == pytest.approx(0.5 * mst_total, rel=1e-12)
    Xs = MinMaxScaler().fit_transform(X)
    mst_scaled = minimum_spanning_tree(cdist(Xs, Xs)).sum()
    assert lifespans_sum(X, 0) == pytest.approx(0.5 * mst_scaled, rel=1e-12)


def test_global_l1_and_alpha_from_giotto_ph():
    X = np.random.default_rng(2).normal(size=(200, 4))
    ref = gph.ripser_parallel(minmax_scale(X), maxdim=1)["dgms"][1].astype(np.float64)
    life = ref[:, 1] - ref[:, 0]
    assert lifespans_sum(X, 1) == pytest.approx(0.5 * life.sum(), rel=1e-5)
    assert lifespans_sum(X, 1, alpha=2.0) == pytest.approx(0.5 * (life**2).sum(), rel=1e-5)


def test_sequence_of_dims_equals_separate_calls():
    X = np.random.default_rng(3).normal(size=(150, 5))
    both = lifespans_sum(X, [0, 1])
    assert both.shape == (2,)
    assert both[0] == pytest.approx(lifespans_sum(X, 0), rel=1e-12)
    assert both[1] == pytest.approx(lifespans_sum(X, 1), rel=1e-12)
    assert isinstance(lifespans_sum(X, 0), float)


def test_lifespans_from_diagrams_ignores_infinite_bars():
    dgms = [np.array([[0.0, 1.0], [0.0, 3.0], [0.0, np.inf]]), np.array([[1.0, 2.0]])]
    np.testing.assert_allclose(lifespans_from_diagrams(dgms, [0, 1]), [2.0, 0.5])


def labelled_cloud(seed=4, n=400, n_classes=4, d=6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, d)) + y[:, None] * 2.0
    return X, y


def test_local_mode_is_the_mean_of_hand_computed_class_values():
    X, y = labelled_cloud()
    Xs = MinMaxScaler().fit_transform(X)  # scaled on the WHOLE sample, before the split
    hand = []
    for c in range(4):
        rows = np.flatnonzero(y == c)[:60]  # first 60 in sample order
        hand.append(0.5 * minimum_spanning_tree(cdist(Xs[rows], Xs[rows])).sum())
    classes, per_class = lifespans_sum_per_class(X, 0, labels=y, max_per_class=60)
    np.testing.assert_array_equal(classes, [0, 1, 2, 3])
    np.testing.assert_allclose(per_class, hand, rtol=1e-12)
    local = lifespans_sum(X, 0, labels=y, max_per_class=60)
    assert local == pytest.approx(np.mean(hand), rel=1e-12)


def test_local_mode_per_class_shapes_with_dim_sequence():
    X, y = labelled_cloud()
    classes, vals = lifespans_sum_per_class(X, [0, 1], labels=y, max_per_class=50)
    assert vals.shape == (4, 2)
    np.testing.assert_allclose(lifespans_sum(X, [0, 1], labels=y, max_per_class=50), vals.mean(0))


def test_random_class_subsample_is_seeded():
    X, y = labelled_cloud()
    kw = dict(labels=y, max_per_class=40, class_subsample="random")
    a = lifespans_sum(X, 0, seed=1, **kw)
    assert a == lifespans_sum(X, 0, seed=1, **kw)
    assert a != lifespans_sum(X, 0, seed=2, **kw)
    assert a != lifespans_sum(X, 0, labels=y, max_per_class=40)  # "first" differs


def test_skip_last_class_reproduces_the_authors_off_by_one():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 900)
    X = rng.normal(size=(900, 8)) + y[:, None] * 0.3
    classes, per_class = lifespans_sum_per_class(X, 0, labels=y, skip_last_class=True)
    np.testing.assert_array_equal(classes, np.arange(9))
    ours = lifespans_sum(X, 0, labels=y, skip_last_class=True)
    # The authors round each class value to 3 decimals; our unrounded mean is within 5e-4.
    assert ours == pytest.approx(authors_lifespans_local(X, y, 0), abs=5e-4)
    # Default: all 10 classes, i.e. also the one the authors skip.
    assert lifespans_sum(X, 0, labels=y) == pytest.approx(
        np.mean(lifespans_sum_per_class(X, 0, labels=y)[1]), rel=1e-12
    )
    assert lifespans_sum(X, 0, labels=y) != pytest.approx(ours, rel=1e-6)


def test_authors_local_h1_with_250_cap():
    rng = np.random.default_rng(6)
    y = np.repeat(np.arange(10), 30)[rng.permutation(300)]
    X = rng.normal(size=(300, 3))
    assert lifespans_sum(X, 1, labels=y, skip_last_class=True) == pytest.approx(
        authors_lifespans_local(X, y, 1), abs=5e-4
    )


def test_torch_inputs_accepted():
    X, y = labelled_cloud()
    a = lifespans_sum(torch.from_numpy(X), 0, labels=torch.from_numpy(y), max_per_class=50)
    assert a == lifespans_sum(X, 0, labels=y, max_per_class=50)


def test_bad_input():
    X, y = labelled_cloud()
    with pytest.raises(ValueError, match="labels has 399 entries but X has 400"):
        lifespans_sum(X, 0, labels=y[:-1])
    with pytest.raises(ValueError, match="alpha"):
        lifespans_sum(X, 0, alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        lifespans_sum(X, 0, alpha=-1)
    with pytest.raises(ValueError, match="scale"):
        lifespans_sum(X, 0, scale="standard")
    with pytest.raises(ValueError, match="class_subsample"):
        lifespans_sum(X, 0, labels=y, class_subsample="last")
    with pytest.raises(ValueError, match="2 NaN and 1 inf"):
        bad = X.copy()
        bad[0, 0] = bad[3, 1] = np.nan
        bad[5, 2] = np.inf
        lifespans_sum(bad, 0)
    with pytest.raises(ValueError, match="2-D"):
        lifespans_sum(X[None], 0)
    with pytest.raises(ValueError, match="dim"):
        lifespans_sum(X, -1)
    with pytest.raises(ValueError, match="labels"):
        lifespans_sum_per_class(X, 0)
