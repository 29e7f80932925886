"""Exact H0: MST edge lengths on all engines, duplicates and ties, against scipy and ripser."""

import numpy as np
import pytest
import ripser
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from reptopo.topology import mst_edge_lengths, mst_edges
from reptopo.topology.distances import pairwise_distances, pairwise_distances_torch
from reptopo.topology.boruvka import boruvka_torch as _boruvka_torch
from reptopo.topology.mst import _prim_cpu, _prim_numpy, _TreeEngine

ENGINES = ["cpu", "torch-cpu"]


def scipy_mst_lengths(X):
    """Reference MST for clouds WITHOUT duplicates (scipy drops zero-weight edges)."""
    return np.sort(minimum_spanning_tree(cdist(X, X)).data)


def ripser_h0_finite(X):
    dgm = ripser.ripser(X, maxdim=0)["dgms"][0]
    return dgm[np.isfinite(dgm[:, 1]), 1].astype(np.float64)


def test_gemm_distances_match_cdist():
    X = np.random.default_rng(0).normal(size=(200, 30)) + 50.0  # far from origin: centring matters
    D = pairwise_distances(X)
    np.testing.assert_allclose(D, cdist(X, X), rtol=0, atol=1e-10)
    assert np.all(np.diagonal(D) == 0)
    Dt = pairwise_distances_torch(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(Dt, D, rtol=0, atol=1e-10)


def test_numpy_fallbacks_equal_numba_kernels(monkeypatch):
    # Without numba (it comes with scikit-dimension) the pure-numpy code paths must agree.
    from reptopo.topology import distances

    X = np.random.default_rng(8).normal(size=(250, 12))
    with_numba = distances.pairwise_distances(X)
    monkeypatch.setattr(distances, "_gram_kernel", lambda: None)
    without = distances.pairwise_distances(X)
    np.testing.assert_allclose(without, with_numba, rtol=0, atol=1e-12)
    assert np.all(np.diagonal(without) == 0)
    p1, c1 = _prim_cpu(with_numba, use_numba=True)
    p2, c2 = _prim_cpu(with_numba, use_numba=False)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(c1, c2)


@pytest.mark.parametrize("n,d", [(2, 1), (50, 2), (400, 3), (300, 100)])
@pytest.mark.parametrize("device", ENGINES)
def test_mst_lengths_equal_scipy(n, d, device):
    X = np.random.default_rng(n + d).normal(size=(n, d))
    got = mst_edge_lengths(X, device=device)
    assert got.shape == (n - 1,)
    np.testing.assert_allclose(got, scipy_mst_lengths(X), rtol=1e-12)


def test_single_point_has_empty_tree():
    edges, lengths = mst_edges(np.zeros((1, 4)))
    assert edges.shape == (0, 2) and lengths.shape == (0,)


@pytest.mark.parametrize("device", ENGINES)
def test_mst_edges_form_a_spanning_tree(device):
    X = np.random.default_rng(1).normal(size=(120, 4))
    edges, lengths = mst_edges(X, device=device)
    # n - 1 edges that connect everything (union-find) = a spanning tree.
    parent = list(range(len(X)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in edges:
        ri, rj = find(i), find(j)
        assert ri != rj, "cycle in the returned tree"
        parent[ri] = rj
    assert len({find(i) for i in range(len(X))}) == 1
    np.testing.assert_allclose(lengths, np.linalg.norm(X[edges[:, 0]] - X[edges[:, 1]], axis=1))
    assert np.all(np.diff(lengths) >= 0)


@pytest.mark.parametrize("device", ENGINES)
def test_duplicates_give_zero_edges_and_same_total(device):
    rng = np.random.default_rng(2)
    base = rng.normal(size=(150, 6))
    X = np.vstack([base, base[:40], base[:5]])  # 45 duplicate rows
    rng.shuffle(X)
    lengths = mst_edge_lengths(X, device=device)
    assert lengths.shape == (len(X) - 1,)
    assert np.count_nonzero(lengths == 0) == 45  # exactly zero, not GEMM round-off
    np.testing.assert_allclose(np.sort(lengths[lengths > 0]), scipy_mst_lengths(base), rtol=1e-12)
    # ripser's H0 on the same cloud has the same total persistence.
    np.testing.assert_allclose(lengths.sum(), ripser_h0_finite(X).sum(), rtol=1e-6)


def test_all_identical_points_give_zero_tree():
    lengths = mst_edge_lengths(np.ones((30, 3)))
    assert lengths.shape == (29,) and np.all(lengths == 0)


def kruskal_lexicographic(D):
    """Reference MST under the strict edge order (weight, min(i, j), max(i, j)): the unique
    tree Borůvka must return. Plain Kruskal with union-find over all n (n - 1) / 2 edges."""
    n = D.shape[0]
    a, b = np.triu_indices(n, k=1)
    order = np.lexsort((b, a, D[a, b]))
    parent = np.arange(n)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    tree = set()
    for e in order:
        ra, rb = find(a[e]), find(b[e])
        if ra != rb:
            parent[ra] = rb
            tree.add((int(a[e]), int(b[e])))
    return tree


def grid_with_duplicates():
    # Integer grid: many equal distances; plus duplicate rows (ties at distance 0).
    g = np.arange(8.0)
    X = np.stack(np.meshgrid(g, g, g), -1).reshape(-1, 3)
    return np.vstack([X, X[:10]])


@pytest.mark.parametrize("block_elems", [2**25, 1000])  # one row block per pass, or many
def test_boruvka_returns_the_unique_tree_under_ties(block_elems):
    # With ties, a Borůvka that broke them inconsistently would close cycles; ours orders edges
    # by (weight, min index, max index), so its tree is exactly the lexicographic Kruskal tree.
    X = grid_with_duplicates()
    D = pairwise_distances(X)
    idx = np.sort(np.random.default_rng(3).choice(len(X), 300, replace=False))
    p, c = _boruvka_torch(torch.from_numpy(D), torch.from_numpy(idx), block_elems=block_elems)
    assert p.shape == c.shape == (299,) and np.all(p < c)
    got = set(zip(p.tolist(), c.tolist()))
    assert len(got) == 299
    assert got == kruskal_lexicographic(D[np.ix_(idx, idx)])


def test_engines_agree_with_ties():
    # numpy and numba Prim scan in the same order, so they return the identical tree; Borůvka
    # (torch) may pick another of the tied trees, of the same total length.
    X = grid_with_duplicates()
    D = pairwise_distances(X)
    idx = np.sort(np.random.default_rng(3).choice(len(X), 300, replace=False))
    p_np, c_np = _prim_numpy(D, idx)
    p_nb, c_nb = _prim_cpu(D, idx, use_numba=True)
    np.testing.assert_array_equal(p_nb, p_np)
    np.testing.assert_array_equal(c_nb, c_np)
    p_t, c_t = _boruvka_torch(torch.from_numpy(D), torch.from_numpy(idx))

    def lengths(p, c):
        return np.sort(np.linalg.norm(X[idx[p]] - X[idx[c]], axis=1))

    np.testing.assert_allclose(lengths(p_t, c_t), lengths(p_np, c_np), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lengths(p_np, c_np).sum(), ripser_h0_finite(X[idx]).sum(), rtol=1e-6)


def test_boruvka_equals_prim_without_ties():
    # Generic points: the MST is unique, so both algorithms must return the same edge set.
    X = np.random.default_rng(9).normal(size=(700, 20))
    D = pairwise_distances(X)
    p, c = _prim_cpu(D)
    pt, ct = _boruvka_torch(torch.from_numpy(D), block_elems=50_000)
    prim = {(min(i, j), max(i, j)) for i, j in zip(p.tolist(), c.tolist())}
    assert set(zip(pt.tolist(), ct.tolist())) == prim


def test_sub_block_tree_equals_tree_of_the_subsample():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 16))
    eng = _TreeEngine(X, None, "numpy")
    idx = np.sort(rng.choice(500, 220, replace=False))
    i, j, lengths = eng.tree(idx)
    assert set(np.concatenate([i, j])) <= set(idx)
    np.testing.assert_allclose(np.sort(lengths), scipy_mst_lengths(X[idx]), rtol=1e-12)


@pytest.mark.parametrize("n,d", [(100, 2), (600, 10), (1000, 128)])
def test_h0_total_matches_ripser(n, d):
    X = np.random.default_rng(n).uniform(size=(n, d)) * 10
    got = mst_edge_lengths(X)
    ref = ripser_h0_finite(X)
    assert got.size == ref.size
    np.testing.assert_allclose(got.sum(), ref.sum(), rtol=1e-6)
    np.testing.assert_allclose(got, np.sort(ref), rtol=1e-6)


def test_exact_recomputation_beats_gemm_for_close_points():
    # Tiny clusters far from the origin: GEMM distances are off by ~1e-8, exact lengths are not.
    rng = np.random.default_rng(5)
    X = 1e4 + rng.normal(size=(60, 8)) * 1e-6
    np.testing.assert_allclose(mst_edge_lengths(X), scipy_mst_lengths(X), rtol=1e-9)


def test_precomputed_metric_matches_points():
    X = np.random.default_rng(6).normal(size=(80, 5))
    np.testing.assert_allclose(
        mst_edge_lengths(cdist(X, X), metric="precomputed"), mst_edge_lengths(X), rtol=1e-12
    )


def test_torch_tensor_input():
    X = np.random.default_rng(7).normal(size=(90, 5))
    np.testing.assert_allclose(
        mst_edge_lengths(torch.from_numpy(X).float()), mst_edge_lengths(X.astype(np.float32)),
        rtol=1e-12,
    )
    bf16 = torch.from_numpy(X).bfloat16()
    np.testing.assert_allclose(
        mst_edge_lengths(bf16), mst_edge_lengths(bf16.double().numpy()), rtol=1e-12
    )


def test_torch_distances_are_exactly_symmetric():
    # A GEMM and broadcast additions round asymmetrically; Borůvka's tie-breaking needs
    # D[i, j] == D[j, i] bit for bit, or it can close a cycle among near-equal edges.
    X = np.random.default_rng(10).normal(size=(1500, 40)) * 3 + 7
    D = pairwise_distances_torch(torch.from_numpy(X))
    assert torch.equal(D, D.T)
    np.testing.assert_allclose(D.numpy(), cdist(X, X), rtol=0, atol=1e-10)


def test_torch_engine_on_a_large_tie_heavy_grid():
    # 1000 grid points + 50 duplicates through the public API: float round-off makes the many
    # "equal" grid distances differ in the last bits, which is where an asymmetric matrix used
    # to give Borůvka a cycle.
    g = np.arange(10.0)
    X = np.stack(np.meshgrid(g, g, g), -1).reshape(-1, 3)
    X = np.vstack([X, X[:50]])
    got = mst_edge_lengths(X, device="torch-cpu")
    np.testing.assert_array_equal(got, mst_edge_lengths(X, device="cpu"))
    assert np.count_nonzero(got == 0) == 50 and np.count_nonzero(got == 1.0) == 999


def test_torch_engine_precomputed_copies_and_symmetrizes():
    X = np.random.default_rng(11).normal(size=(300, 6))
    D = cdist(X, X)
    upper = np.triu(np.random.default_rng(12).uniform(-1e-12, 1e-12, size=D.shape), 1)
    D_noisy = D + upper  # symmetric only to ~1e-12, as real precomputed matrices are
    before = D_noisy.copy()
    got = mst_edge_lengths(D_noisy, metric="precomputed", device="torch-cpu")
    np.testing.assert_array_equal(D_noisy, before)  # the caller's array is untouched
    np.testing.assert_allclose(got, mst_edge_lengths(X), rtol=1e-9)


@pytest.mark.parametrize("device", ENGINES)
def test_coordinates_that_overflow_squared_distances_are_rejected(device):
    # 1e200 is finite, but its square is not: both engines must refuse it up front (the torch
    # engine would otherwise mistake inf distances for its own "same component" mask).
    X = np.random.default_rng(13).normal(size=(20, 3))
    X[3, 1] = 1e200
    with pytest.raises(ValueError, match="coordinates up to 1e\\+200"):
        mst_edge_lengths(X, device=device)


def test_boruvka_rejects_inf_distances():
    D = torch.tensor([[0, 1, np.inf, np.inf], [1, 0, np.inf, np.inf],
                      [np.inf, np.inf, 0, 1], [np.inf, np.inf, 1, 0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="inf entries"):
        _boruvka_torch(D)


def test_boruvka_sub_block_in_small_row_blocks_equals_prim():
    # Sub-block (idx) path with many row blocks: the gather must read rows idx, columns idx.
    X = np.random.default_rng(14).normal(size=(900, 10))
    D = pairwise_distances(X)
    idx = np.sort(np.random.default_rng(15).choice(900, 333, replace=False))
    p, c = _prim_cpu(D, idx)
    pt, ct = _boruvka_torch(torch.from_numpy(D), torch.from_numpy(idx), block_elems=3000)
    prim = {(min(i, j), max(i, j)) for i, j in zip(p.tolist(), c.tolist())}
    assert set(zip(pt.tolist(), ct.tolist())) == prim


# --------------------------------------------------------------------------- any dynamic range


def exact_mst_lengths(X):
    """Independent exact H0: Kruskal over every pair of scipy's direct ``||x_i - x_j||`` (cdist
    never forms |x|^2 + |y|^2 - 2<x, y>), sorted."""
    D = cdist(X, X)
    return np.sort([D[i, j] for i, j in kruskal_lexicographic(D)])


def hard_cloud(kind, seed=0):
    """Clouds whose distances are tiny next to their coordinates, where the GEMM identity's
    absolute error (about eps * |x|^2) chose a wrong tree before the flagged entries were settled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(15, 12))
    if kind == "near-duplicates 1e-8":  # 15 clusters of 30, jitter 1e-8 of the spread
        return np.repeat(centres, 30, axis=0) + 1e-8 * rng.normal(size=(450, 12))
    if kind == "near-duplicates 1e-13":
        return np.repeat(centres, 30, axis=0) + 1e-13 * rng.normal(size=(450, 12))
    if kind == "far outliers":  # three points 1e9 times farther out than the cloud's spread
        X = rng.normal(size=(400, 8))
        X[:3] *= 1e9
        return X
    if kind == "offset 1e8":  # near-duplicate clusters far from the origin
        return 1e8 + np.repeat(centres, 30, axis=0) + 1e-6 * rng.normal(size=(450, 12))
    if kind == "far planar clusters":  # low-dimensional, so MST edges are tiny next to 1e6
        X = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 16))
        X[:200, 0] += 1e6
        return X
    if kind == "nested":  # two far groups of near-duplicate clusters: two levels of rebuilding
        X = np.repeat(centres, 30, axis=0) + 1e-9 * rng.normal(size=(450, 12))
        X[:225] += 1e7
        return X
    raise ValueError(kind)


HARD = ["near-duplicates 1e-8", "near-duplicates 1e-13", "far outliers", "offset 1e8",
        "far planar clusters", "nested"]


@pytest.fixture(params=["cpu", "cpu-numpy", "torch-cpu"])
def h0_engine(request, monkeypatch):
    """Every engine: numba CPU, the pure-numpy fallback (numba absent), torch."""
    if request.param == "cpu-numpy":
        from reptopo.topology import distances, mst

        monkeypatch.setattr(distances, "_gram_kernel", lambda: None)
        monkeypatch.setattr(mst, "_numba_kernel", lambda: None)
        return "cpu"
    return request.param


@pytest.mark.parametrize("kind", HARD)
def test_h0_is_exact_at_any_dynamic_range(kind, h0_engine):
    X = hard_cloud(kind)
    ref = exact_mst_lengths(X)
    got = mst_edge_lengths(X, device=h0_engine)
    assert np.all(ref > 0)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("kind", HARD)
def test_every_distance_entry_is_within_the_bound(kind, h0_engine):
    from reptopo.topology.distances import REL_ERROR

    X = hard_cloud(kind)
    if h0_engine == "torch-cpu":
        D = pairwise_distances_torch(torch.from_numpy(X)).numpy()
    else:
        D = pairwise_distances(X)
    ref = cdist(X, X)
    off = ~np.eye(len(X), dtype=bool)
    assert np.array_equal(D, D.T) and np.all(np.diagonal(D) == 0)
    assert np.max(np.abs(D - ref)[off] / ref[off]) <= REL_ERROR


def test_phdim_sums_are_exact_on_near_duplicates():
    from reptopo.topology import phdim

    X = hard_cloud("nested")
    res = phdim(X, n_start=100, n_step=100, n_repeats=2, seed=3)
    from reptopo.topology import phdim_subsample_indices

    subs = phdim_subsample_indices(len(X), res.sizes, 2, seed=3)
    ref = np.array([[exact_mst_lengths(X[idx]).sum() for idx in per] for per in subs])
    np.testing.assert_allclose(res.E, ref, rtol=1e-9, atol=0)


def test_ordinary_clouds_flag_nothing():
    # The common case stays one GEMM and one fused pass: nothing to settle on a Gaussian cloud.
    from reptopo.topology import distances

    X = np.random.default_rng(16).normal(size=(1500, 64))
    D, sq, flagged = distances._NumpyOps.gemm(X, distances.flag_ratio(64))
    assert flagged is None
