"""The tiled H0 engine (no N x N matrix): the dense engine's tree, known answers, a memory limit."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from reptopo import topology
from reptopo.topology import _budget
from reptopo.topology.boruvka import _acyclic
from reptopo.topology.distances import edge_lengths
from reptopo.topology.mst import mst_edges
from reptopo.topology.tiled import _kernels, tiled_mst


def _edge_set(p, c):
    return set(map(tuple, np.sort(np.stack([p, c], axis=1), axis=1).tolist()))


def _spanning(n, p, c):
    """True when the edges form one tree on n points (n - 1 edges, connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(p) != n - 1:
        return False
    g = coo_matrix((np.ones(len(p)), (p, c)), shape=(n, n))
    return connected_components(g, directed=False)[0] == 1


def _clusters(n, d, seed=0, spread=20.0, n_clusters=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)) * spread
    return centres[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, d))


CLOUDS = {
    "gaussian-5d": lambda: np.random.default_rng(1).normal(size=(700, 5)),
    "gaussian-64d": lambda: np.random.default_rng(2).normal(size=(900, 64)),
    "clusters": lambda: _clusters(800, 10),
    "line-in-3d": lambda: np.outer(np.random.default_rng(3).uniform(size=400), [1.0, 2.0, -1.0]),
}


@pytest.mark.parametrize("name", sorted(CLOUDS))
@pytest.mark.parametrize("block, k", [(64, 2), (128, 16), (5000, 4)])
def test_tiled_tree_is_the_dense_tree_on_clouds_without_ties(name, block, k):
    X = CLOUDS[name]()
    stats = {}
    p, c = tiled_mst(X, block=block, k=k, stats=stats)
    edges, lengths = mst_edges(X, device="cpu", algorithm="dense")
    assert _edge_set(p, c) == _edge_set(edges[:, 0], edges[:, 1])
    np.testing.assert_array_equal(np.sort(edge_lengths(X, p, c)), lengths)
    assert stats["rounds"] >= 1


def test_candidate_lists_are_rescanned_where_they_run_out():
    # Six far clusters and 2 candidates per point: the last rounds must rescan (a component's
    # candidates all lie inside it), and the tree must still be the dense one.
    X = _clusters(600, 4)
    stats = {}
    p, c = tiled_mst(X, block=100, k=2, stats=stats)
    assert stats["rescanned"] > 0
    np.testing.assert_array_equal(np.sort(edge_lengths(X, p, c)), mst_edges(X, algorithm="dense")[1])


def test_torch_tiled_engine_matches_on_cpu_tensors():
    X = _clusters(500, 6, seed=4)
    p, c = tiled_mst(X, engine="torch-cpu", block=40)  # row blocks of 1600 entries: 4 rows
    assert _spanning(500, p, c)
    np.testing.assert_array_equal(np.sort(edge_lengths(X, p, c)), mst_edges(X, algorithm="dense")[1])


@pytest.mark.parametrize("engine", ["numpy", "torch-cpu"])
def test_ties_and_duplicates_give_the_dense_lengths(engine):
    rng = np.random.default_rng(5)
    lattice = rng.integers(0, 4, size=(300, 3)).astype(float)  # many equal distances, duplicates
    repeated = np.repeat(rng.normal(size=(60, 5)), 4, axis=0)  # each point 4 times
    for X in (lattice, repeated):
        n_distinct = np.unique(X, axis=0).shape[0]
        p, c = tiled_mst(X, engine=engine, block=64, k=3)
        assert _spanning(X.shape[0], p, c)
        lengths = np.sort(edge_lengths(X, p, c))
        np.testing.assert_array_equal(lengths, mst_edges(X, algorithm="dense")[1])
        assert int((lengths == 0).sum()) == X.shape[0] - n_distinct


@pytest.mark.parametrize("dim", [3, 40])
def test_unit_grid_in_rd_has_every_edge_of_length_one(dim):
    # A 7 x 7 x 7 grid of spacing 1, rotated into R^dim and moved far from the origin: its MST
    # has 342 edges, all of length 1 (exact up to the rounding of the rotation).
    g = np.stack(np.meshgrid(*[np.arange(7.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    Q = np.linalg.qr(np.random.default_rng(6).normal(size=(dim, dim)))[0][:, :3]
    X = g @ Q.T + 1e4
    p, c = tiled_mst(X, block=50, k=4)
    assert _spanning(len(g), p, c)
    np.testing.assert_allclose(edge_lengths(X, p, c), 1.0, rtol=0, atol=1e-9)
    # ... and so is the grid's own tree: every edge joins grid neighbours.
    assert np.all(np.abs(g[p] - g[c]).sum(axis=1) == 1)


def test_far_cluster_and_near_duplicates_stay_exact():
    # A tight cluster 1e6 away from the bulk: GEMM distances inside it are pure rounding, so the
    # tiles must settle them exactly, as the dense matrix does.
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(size=(300, 8)), 1e6 + 1e-3 * rng.normal(size=(200, 8))])
    p, c = tiled_mst(X, block=64, k=4)
    np.testing.assert_array_equal(np.sort(edge_lengths(X, p, c)), mst_edges(X, algorithm="dense")[1])


def test_picks_that_would_close_a_cycle_are_dropped():
    # Three components whose picks (0-1, 1-2, 2-0) form a cycle, as near-equal lengths rounded
    # differently in two tiles could: Kruskal in the given order keeps the first two.
    ca, cb = np.array([0, 1, 2]), np.array([1, 2, 0])
    order = np.array([0, 1, 2])
    assert _acyclic(ca, cb, order, 3).tolist() == [True, True, False]
    keep = np.zeros(3, dtype=np.bool_)
    _kernels()["_merge"](np.arange(3, dtype=np.int64), ca, cb, order, keep)
    assert keep.tolist() == [True, True, False]


def test_mst_entry_points_take_the_algorithm():
    X = _clusters(300, 3, seed=8)
    dense = topology.mst_edge_lengths(X, algorithm="dense")
    np.testing.assert_array_equal(topology.mst_edge_lengths(X, algorithm="tiled"), dense)
    h0 = topology.persistence_diagrams(X, maxdim=0, algorithm="tiled")[0]
    np.testing.assert_array_equal(h0[:-1, 1], dense)
    with pytest.raises(ValueError, match="H0 only"):
        topology.persistence_diagrams(X, maxdim=1, algorithm="tiled")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        topology.mst_edges(X, algorithm="blocked")
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    with pytest.raises(ValueError, match="precomputed"):
        topology.mst_edges(D, metric="precomputed", algorithm="tiled")


def test_auto_switches_by_size_and_memory():
    choose = _budget.choose_algorithm
    assert choose("auto", 3000, "numpy", memory_limit=2**30) == "dense"
    assert choose("auto", 3000, "numpy", memory_limit=2**20) == "tiled"  # 72 MB would not fit
    assert choose("auto", _budget.DENSE_MAX_POINTS + 1, "numpy", memory_limit=2**40) == "tiled"
    assert choose("auto", 20_000, "numpy", memory_limit=2**40, many_trees=True) == "dense"
    assert choose("tiled", 10, "numpy") == "tiled" and choose("dense", 10**6, "numpy") == "dense"
    # torch's tiles recompute every distance in each pass: there dense while it fits
    assert choose("auto", 20_000, "torch-cpu", memory_limit=2**40) == "dense"
    assert choose("auto", 20_000, "torch-cpu", memory_limit=2**30) == "tiled"
    assert _budget.available_memory() > 0


_UNDER_A_LIMIT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from reptopo import topology
    X = np.random.default_rng(0).normal(size=(12_000, 8))
    topology.mst_edge_lengths(X[:100], algorithm="tiled")  # compile the kernels first
    size_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (size_kib * 1024 + 700 * 2**20, resource.RLIM_INFINITY))
    out = {}
    try:  # the dense matrix alone is 1.15 GB
        topology.mst_edge_lengths(X, algorithm="dense")
        out["dense"] = "ran"
    except MemoryError:
        out["dense"] = "MemoryError"
    lengths = topology.mst_edge_lengths(X)  # auto: sees the limit, goes tiled
    ph = topology.phdim(X, sizes=[2000, 6000, 12000])
    out.update(sum=float(lengths.sum()), n=int(lengths.size), phdim=ph.dim, algorithm=ph.algorithm)
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_under_a_memory_limit_the_tiled_path_runs_where_the_dense_one_cannot():
    proc = subprocess.run([sys.executable, "-c", _UNDER_A_LIMIT], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dense"] == "MemoryError"
    X = np.random.default_rng(0).normal(size=(12_000, 8))
    dense = topology.mst_edge_lengths(X, algorithm="dense")
    assert out["n"] == 11_999 and out["sum"] == pytest.approx(float(dense.sum()), rel=1e-12)
    ph = topology.phdim(X, sizes=[2000, 6000, 12000], algorithm="dense")
    assert out["algorithm"] == "tiled" and out["phdim"] == pytest.approx(ph.dim, rel=1e-12)


def test_blocked_gram_is_exactly_symmetric_and_the_syrk_product(monkeypatch):
    from reptopo.topology import distances

    monkeypatch.setattr(distances, "_SYRK_MAX_ROWS", 100)
    monkeypatch.setattr(distances, "_GRAM_BLOCK", 64)
    A = np.random.default_rng(9).normal(size=(300, 7))
    G = distances.gram(A)
    assert np.array_equal(G, G.T)
    np.testing.assert_allclose(G, A @ A.T, rtol=0, atol=1e-12)
    D = distances.pairwise_distances(A)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    np.testing.assert_array_equal(mst_edges(A, algorithm="dense")[1], np.sort(edge_lengths(A, *tiled_mst(A))))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the crash is in the Linux OpenBLAS wheel")
def test_a_dense_matrix_where_one_syrk_used_to_segfault():
    # numpy 1.26's OpenBLAS 0.3.23 dies inside X @ X.T for (20000, 200) (numpy issue 19685).
    code = ("import numpy as np; from reptopo.topology.distances import pairwise_distances as p; "
            "D = p(np.random.default_rng(0).standard_normal((20000, 200))); print(D.shape[0], D[0, 0])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1000:]}"
    assert proc.stdout.split() == ["20000", "0.0"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_cgroup_limits_count_the_tightest_group_and_not_the_page_cache(tmp_path, monkeypatch, version):
    # A job's group (2 GiB, 1.5 GiB used of which 0.5 GiB is page cache) inside a parent of 8 GiB.
    GiB = 2**30
    if version == "v1":
        (tmp_path / "proc").write_text("4:memory:/slurm/job_1\n1:cpu:/\n")
        root, names = tmp_path / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        (root).mkdir()
        (root / names[0]).write_text("9223372036854771712\n")  # the root: no limit
        (root / names[1]).write_text(f"{20 * GiB}\n")
    else:
        (tmp_path / "proc").write_text("0::/slurm/job_1\n")
        root, names = tmp_path, ("memory.max", "memory.current", "inactive_file")
    for sub, limit, used, cache in [("slurm", 8 * GiB, 3 * GiB, 0), ("slurm/job_1", 2 * GiB, 3 * GiB // 2, GiB // 2)]:
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        (folder / names[0]).write_text(f"{limit}\n")
        (folder / names[1]).write_text(f"{used}\n")
        (folder / "memory.stat").write_text(f"cache 1\n{names[2]} {cache}\n")
    monkeypatch.setattr(_budget, "_PROC_CGROUP", str(tmp_path / "proc"))
    monkeypatch.setattr(_budget, "_CGROUP_ROOT", str(tmp_path))
    assert _budget._cgroup_room() == GiB  # 2 GiB - (1.5 - 0.5) GiB, tighter than the parent's 5 GiB
    assert _budget.available_memory() <= GiB
    # ... so "auto" keeps a 12,000-point matrix (1.2 GB) out of it.
    assert _budget.choose_algorithm("auto", 3000, "numpy", many_trees=True) == "dense"
    assert _budget.choose_algorithm("auto", 12_000, "numpy", many_trees=True) == "tiled"
