"""reptopo.similarity against known answers and independent references."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import ortho_group
from sklearn.neighbors import NearestNeighbors

from reptopo.similarity import (cka_matrix, diagram_distance, diagram_distance_matrix, linear_cka,
                                neighbour_overlap, rtd)
from reptopo.topology import gride_profile, intrinsic_dimension, persistence_diagrams

RNG = np.random.default_rng


# ---------------------------------------------------------------- CKA


def kornblith_cka(X, Y, debiased=False):
    """Reference: Kornblith et al.'s Gram-space CKA (their ``center_gram`` and ``cka``), from the
    paper's formulas, written out independently of reptopo.similarity."""
    def center(K):
        K = K.copy()
        n = K.shape[0]
        if debiased:
            np.fill_diagonal(K, 0)
            means = K.sum(0) / (n - 2)
            means -= means.sum() / (2 * (n - 1))
            K -= means[:, None] + means[None, :]
            np.fill_diagonal(K, 0)
        else:
            H = np.eye(n) - 1.0 / n
            K = H @ K @ H
        return K

    K, L = center(X @ X.T), center(Y @ Y.T)
    return np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_one_under_orthogonal_maps_scaling_and_translation(debiased):
    X = RNG(0).normal(size=(300, 20))
    Q = ortho_group.rvs(20, random_state=1)
    Y = 3.7 * X @ Q + 11.0
    assert linear_cka(X, Y, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n, p, q", [(200, 10, 30), (20, 40, 50)])  # feature space, then Gram space
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_equals_kornblith_reference(n, p, q, debiased):
    rng = RNG(n + p)
    X = rng.normal(size=(n, p))
    Y = np.tanh(X @ rng.normal(size=(p, q))) + 0.5 * rng.normal(size=(n, q))
    assert linear_cka(X, Y, debiased=debiased) == pytest.approx(kornblith_cka(X, Y, debiased), rel=1e-10)


def test_debiased_cka_of_independent_clouds_is_about_zero():
    rng = RNG(2)
    X, Y = rng.normal(size=(500, 100)), rng.normal(size=(500, 100))
    assert abs(linear_cka(X, Y, debiased=True)) < 0.02
    assert linear_cka(X, Y) > 0.1  # the plain estimator's upward bias at p comparable to n


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matrix_is_every_pair(debiased):
    rng = RNG(3)
    base = rng.normal(size=(120, 8))
    layers = [base, np.maximum(base @ rng.normal(size=(8, 16)), 0), rng.normal(size=(120, 5))]
    M = cka_matrix(layers, debiased=debiased)
    ref = np.array([[linear_cka(a, b, debiased) for b in layers] for a in layers])
    np.testing.assert_allclose(M, ref, rtol=1e-10, atol=1e-12)
    assert np.array_equal(M, M.T)
    np.testing.assert_allclose(np.diagonal(M), 1.0, rtol=1e-12)
    other = cka_matrix(layers[:2], layers, debiased=debiased)
    np.testing.assert_allclose(other, ref[:2], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- RTD


def test_rtd_of_a_cloud_with_itself_or_a_scaled_copy_is_zero():
    X = RNG(4).normal(size=(150, 6))
    assert rtd(X, X, batch_size=150) == 0.0
    assert rtd(X, 5.0 * X, batch_size=150) == pytest.approx(0.0, abs=1e-6)


def test_rtd_is_invariant_to_scaling_and_symmetric():
    rng = RNG(5)
    X = rng.normal(size=(200, 4))
    Y = X + 0.5 * rng.normal(size=(200, 4))
    base = rtd(X, Y, batch_size=120, n_batches=3, seed=1)
    assert base > 0.1
    assert rtd(10.0 * X, 0.1 * Y, batch_size=120, n_batches=3, seed=1) == pytest.approx(base, rel=1e-4)
    assert rtd(Y, X, batch_size=120, n_batches=3, seed=1) == pytest.approx(base, rel=1e-6)


def test_r_cross_barcode_of_two_points_by_hand():
    # Copies A1, A2 (0 apart) and B1, B2: at 0 the edges A1A2, A1B1, A2B2 join everything; B1B2
    # enters at min(a, c) = c and closes the loop B1-A1-A2-B2, which the triangles fill at a
    # (A1B2, A2B1 enter there): one H1 bar [c, a]. With c > a, B1B2 enters with them: no bar.
    from reptopo.similarity.rtd import _h1_total, r_cross_matrix

    a, c = 2.0, 0.5
    r1, r2 = np.array([[0, a], [a, 0.0]]), np.array([[0, c], [c, 0.0]])
    assert _h1_total(r_cross_matrix(r1, r2), 1) == pytest.approx(a - c, abs=1e-6)
    assert _h1_total(r_cross_matrix(r2, r1), 1) == 0.0


def test_rtd_equals_its_definition_computed_with_ripser():
    # The definition written out here, with ripser.py (another engine) for the H1 bars.
    import ripser
    from scipy.spatial.distance import cdist

    rng = RNG(14)
    X = rng.normal(size=(40, 3))
    Y = X * np.array([3.0, 1.0, 0.2]) + 0.3 * rng.normal(size=(40, 3))  # some distances grow, some shrink

    def one_way(A, B):
        ra, rb = cdist(A, A), cdist(B, B)
        ra /= np.quantile(ra[np.triu_indices(40, 1)], 0.9)
        rb /= np.quantile(rb[np.triu_indices(40, 1)], 0.9)
        M = np.block([[np.zeros((40, 40)), ra.T], [ra, np.minimum(ra, rb)]])
        h1 = ripser.ripser(M, distance_matrix=True, maxdim=1)["dgms"][1]
        return np.sum(h1[:, 1] - h1[:, 0])

    ref = (one_way(X, Y) + one_way(Y, X)) / 2
    assert ref > 0.05
    assert rtd(X, Y, batch_size=40) == pytest.approx(ref, rel=1e-5)


def test_rtd_orders_the_cluster_merging_experiment():
    # Barannikov et al.'s synthetic experiment: 5 clusters; in Y the first k + 1 of them are moved
    # onto one centre (k merges). RTD to the original must grow with the number of merges.
    rng = RNG(6)
    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)
    centres = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    labels = np.repeat(np.arange(5), 40)
    noise = rng.normal(size=(200, 2))
    X = centres[labels] + noise
    values = []
    for merges in range(5):
        moved = centres.copy()
        moved[: merges + 1] = centres[0]
        values.append(rtd(X, moved[labels] + noise, batch_size=200))
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(values, values[1:])), values


# ---------------------------------------------------------------- neighbour overlap


def sklearn_knn_sets(X, k):
    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    return [set(row[row != i][:k]) for i, row in enumerate(idx)]


def test_neighbour_overlap_matches_sklearn_neighbours():
    rng = RNG(7)
    X = rng.normal(size=(400, 5))
    Y = X + 0.3 * rng.normal(size=(400, 5))
    sx, sy = sklearn_knn_sets(X, 10), sklearn_knn_sets(Y, 10)
    ref = np.mean([len(a & b) / 10 for a, b in zip(sx, sy)])
    assert neighbour_overlap(X, Y, k=10) == pytest.approx(ref, abs=1e-12)


def test_neighbour_overlap_is_one_with_itself_and_about_k_over_n_with_noise():
    rng = RNG(8)
    X = rng.normal(size=(1000, 8))
    assert neighbour_overlap(X, X, k=10) == 1.0
    assert neighbour_overlap(X, X @ ortho_group.rvs(8, random_state=2), k=10) == 1.0
    noise = neighbour_overlap(X, rng.normal(size=(1000, 8)), k=10)
    assert 0.5 * 10 / 999 < noise < 1.5 * 10 / 999


def test_neighbour_overlap_with_labels():
    rng = RNG(9)
    X = np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 50])
    y = np.repeat([0, 1], 100)
    assert neighbour_overlap(X, labels=y, k=5) == 1.0
    assert neighbour_overlap(X, labels=rng.permutation(y), k=5) == pytest.approx(0.5, abs=0.06)


# ---------------------------------------------------------------- diagram distances


def reference_wasserstein(a, b, p):
    """W_p with the L-infinity ground metric (giotto-tda/hera's), by an exact assignment on the
    diagonal-augmented cost matrix; p = inf: bottleneck by bisection over the sorted costs."""
    m, n = len(a), len(b)
    big = 1e18
    C = np.full((m + n, m + n), 0.0)
    C[:m, :n] = np.max(np.abs(a[:, None, :] - b[None, :, :]), axis=2)
    C[:m, n:] = big
    C[m:, :n] = big
    C[np.arange(m), n + np.arange(m)] = (a[:, 1] - a[:, 0]) / 2
    C[m + np.arange(n), np.arange(n)] = (b[:, 1] - b[:, 0]) / 2
    if np.isinf(p):
        for t in np.unique(C[C < big]):
            r, c = linear_sum_assignment(np.where(C <= t, 0.0, 1.0))
            if np.all(C[r, c] <= t):
                return t
    r, c = linear_sum_assignment(np.where(C < big, C ** p, big))
    return np.sum(C[r, c] ** p) ** (1 / p)


def random_diagram(rng, m):
    b = rng.uniform(0, 5, size=m)
    return np.column_stack([b, b + rng.exponential(1.0, size=m)])


def test_diagram_distances_are_zero_on_identical_diagrams_and_equal_the_shift():
    a = np.array([[0.0, 10.0], [1.0, 8.0], [2.0, 9.5]])
    assert diagram_distance(a, a) == 0.0 and diagram_distance(a, a, "bottleneck") == 0.0
    assert diagram_distance(a, a + 0.25, "bottleneck") == pytest.approx(0.25, rel=1e-7)  # hera delta
    assert diagram_distance(a, a + 0.25, p=1) == pytest.approx(0.75, abs=1e-9)  # three bars


@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
def test_diagram_distances_equal_an_exact_assignment(p):
    rng = RNG(10)
    for _ in range(5):
        a, b = random_diagram(rng, 7), random_diagram(rng, 11)
        got = diagram_distance(a, b, "bottleneck") if np.isinf(p) else diagram_distance(a, b, p=p)
        assert got == pytest.approx(reference_wasserstein(a, b, p), rel=1e-6, abs=1e-9)


def test_diagram_distance_matrix_of_a_run():
    rng = RNG(11)
    clouds = [rng.normal(size=(60, 3)) * s for s in (1.0, 1.5, 3.0)]
    dgms = [persistence_diagrams(X, maxdim=1) for X in clouds]
    M = diagram_distance_matrix(dgms, "bottleneck")
    assert M.shape == (2, 3, 3)
    for k in range(2):
        assert np.allclose(M[k], M[k].T) and np.all(np.diagonal(M[k]) == 0)
    per_pair = diagram_distance(dgms[0], dgms[2], "bottleneck")  # lists: one value per dimension
    np.testing.assert_allclose(per_pair, M[:, 0, 2], rtol=1e-12)
    assert M[0, 0, 2] > M[0, 0, 1] > 0  # H0 grows with the scale
    # Two runs' layers: only the cross pairs, equal to the block of the joint matrix and to single calls.
    others = [persistence_diagrams(rng.normal(size=(80, 3)) * s, maxdim=1) for s in (0.5, 2.0)]
    for metric in ("bottleneck", "wasserstein"):
        cross = diagram_distance_matrix(dgms, metric, diagrams_b=others)
        assert cross.shape == (2, 3, 2)
        np.testing.assert_allclose(cross, diagram_distance_matrix([*dgms, *others], metric)[:, :3, 3:], rtol=1e-12)
        np.testing.assert_allclose(cross[:, 2, 1], diagram_distance(dgms[2], others[1], metric), rtol=1e-12)


# ---------------------------------------------------------------- GRIDE


def test_gride_matches_scikit_dimension_and_the_dimension():
    import skdim

    X = RNG(12).normal(size=(1500, 4)) @ RNG(13).normal(size=(4, 20))  # a 4-D plane in R^20
    got = intrinsic_dimension(X, method="gride", n1=4)
    assert got == pytest.approx(skdim.id.GRIDE(n1=4, n2=8).fit(X).dimension_, rel=1e-12)
    assert 3.5 < got < 4.5
    prof = gride_profile(X, range_max=32)
    np.testing.assert_array_equal(prof["scale"], [1, 2, 4, 8, 16])
    assert np.all(np.abs(prof["dimension"] - 4) < 0.6) and np.all(np.diff(prof["radius"]) > 0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, message", [
    (lambda: linear_cka(np.ones((10, 2)), np.ones((9, 2))), "X has 10 points and Y 9"),
    (lambda: linear_cka(np.full((10, 2), np.nan), np.ones((10, 2))), "X contains non-finite values"),
    (lambda: linear_cka(np.ones((3, 2)), np.ones((3, 2))), "at least 4"),
    (lambda: linear_cka(np.ones((10, 2)), RNG(0).normal(size=(10, 2))), "X has zero variance"),
    (lambda: rtd(np.ones((10, 2)), np.ones((9, 2))), "X has 10 points and Y 9"),
    (lambda: neighbour_overlap(np.eye(5), np.eye(5), k=5), "k=5 must be smaller than the number of points"),
    (lambda: neighbour_overlap(np.eye(5)), "exactly one of Y"),
    (lambda: neighbour_overlap(np.eye(5), labels=[0, 1, np.nan, 1, 0]), "1 NaN"),
    (lambda: diagram_distance([[0, 1]], [[0, 1]], "energy"), "metric must be one of"),
    (lambda: diagram_distance([[1, 0]], [[0, 1]]), "death < birth"),
])
def test_bad_input_raises_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_neighbours_under_ties_are_the_smallest_indices():
    # A grid with duplicates: many k-th distances tie; the sets must be those of a stable sort.
    from reptopo.similarity.neighbours import _knn
    from reptopo.topology.distances import pairwise_distances

    g = np.arange(6.0)
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    X = np.vstack([X, X[:7]])
    D = pairwise_distances(X)
    np.fill_diagonal(D, np.inf)
    for k in (1, 4, 5, 9):
        np.testing.assert_array_equal(_knn(X, k), np.argsort(D, axis=1, kind="stable")[:, :k])
