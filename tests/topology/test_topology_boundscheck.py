"""The numba kernels of the homology path under NUMBA_BOUNDSCHECK=1, on a few hundred seeded random
and degenerate clouds, with every result checked against an exact reference.

numba compiles without bounds checks, so an index one past an array's end reads or writes
whatever memory is there: a wrong number or a segfault far from the cause. Here a subprocess
compiles every kernel afresh with bounds checks (its own NUMBA_CACHE_DIR, since numba's disk cache
does not key on the flag) and runs the dense Prim tree, the tiled Borůvka at many tile sizes and
candidate counts, the exact distances, PHdim on both engines, persistence diagrams, TwoNN/MLE and
the k-NN Betti numbers. An out-of-bounds index raises IndexError there; a cloud the engine refuses
must be refused with ValueError. Run as a script, this file is that subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

N_RANDOM = 260


def clouds():
    """(name, X) pairs: seeded random clouds of many shapes and sizes, then degenerate ones."""
    for seed in range(N_RANDOM):
        rng = np.random.default_rng(seed)
        n = int(rng.choice([2, 3, 4, 5, 8, 13, 30, 64, 100, 150, 257, 400]))
        d = int(rng.choice([1, 2, 3, 8, 31, 64, 300]))
        kind = seed % 5
        if kind == 0:
            X = rng.normal(size=(n, d))
        elif kind == 1:
            X = rng.uniform(size=(n, d))
        elif kind == 2:
            X = rng.exponential(size=(n, d)) * 10.0 ** rng.integers(-3, 4)
        elif kind == 3:  # clusters of very different spreads
            centres = rng.normal(size=(3, d)) * 100
            X = centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d)) * 10.0 ** rng.integers(-6, 1, (n, 1))
        else:  # ReLU-like: many exact zeros, repeated rows
            X = np.maximum(rng.normal(size=(n, d)), 0)
            X[rng.integers(0, n, n // 3)] = X[0]
        yield f"random-{seed}", X
    rng = np.random.default_rng(12345)
    base = rng.normal(size=(50, 4))
    yield "one point", base[:1]
    yield "two points", base[:2]
    yield "two equal points", np.zeros((2, 3))
    yield "all equal", np.ones((40, 5))
    yield "all equal but one", np.vstack([np.ones((39, 5)), np.full((1, 5), 2.0)])
    yield "duplicates x4", np.repeat(base, 4, axis=0)
    yield "collinear", np.outer(rng.uniform(size=120), rng.normal(size=6))
    yield "integer grid", np.stack(np.meshgrid(np.arange(12), np.arange(12)), -1).reshape(-1, 2).astype(float)
    yield "integer cube", np.stack(np.meshgrid(*[np.arange(5)] * 3), -1).reshape(-1, 3).astype(float)
    yield "large offset", 1e8 + rng.normal(size=(200, 16))
    yield "offset and tiny spread", 1e3 + 1e-9 * rng.normal(size=(100, 8))
    yield "multi-scale", np.vstack([1e-6 * rng.normal(size=(60, 3)), 1e6 + rng.normal(size=(60, 3))])
    yield "one feature", rng.normal(size=(300, 1))
    yield "wide", rng.normal(size=(20, 2000))
    yield "float32", rng.normal(size=(180, 12)).astype(np.float32)
    yield "tiny values", 1e-150 * rng.normal(size=(50, 4))
    yield "huge values", 1e150 * rng.normal(size=(50, 4))
    yield "one-hot", np.eye(64)
    yield "circle", np.c_[np.cos(np.linspace(0, 2 * np.pi, 200, endpoint=False)),
                          np.sin(np.linspace(0, 2 * np.pi, 200, endpoint=False))]


def prim_reference(D: np.ndarray) -> np.ndarray:
    """Sorted MST edge lengths of a dense distance matrix (plain numpy Prim)."""
    n = D.shape[0]
    if n < 2:
        return np.empty(0)
    in_tree = np.zeros(n, bool)
    in_tree[0] = True
    best = D[0].copy()
    out = []
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        out.append(cand[j])
        in_tree[j] = True
        best = np.minimum(best, D[j])
    return np.sort(np.array(out))


def close(a, b, rel=1e-9) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b))))


def check_cloud(name: str, X: np.ndarray, counts: dict) -> None:
    from scipy.spatial.distance import cdist

    from reptopo import topology
    from reptopo.topology.distances import edge_lengths, pairwise_distances
    from reptopo.topology.tiled import tiled_mst

    X64 = np.asarray(X, dtype=np.float64)
    n = X64.shape[0]
    try:
        lengths = topology.mst_edge_lengths(X, algorithm="dense", device="cpu")
    except ValueError:
        counts["refused"] += 1  # e.g. squares that overflow: refused with one clear message
        return
    ref_D = cdist(X64, X64)
    ref = prim_reference(ref_D)
    assert close(lengths, ref), f"{name}: dense MST lengths differ from the reference"
    if n >= 2:
        assert close(pairwise_distances(X64), ref_D, rel=1e-9), f"{name}: distances differ from cdist"
    for block, k in ((2, 1), (3, 2), (7, 5), (16, 3), (64, 16)):
        parent, child = tiled_mst(X64, engine="numpy", block=block, k=k)
        tiled = np.sort(edge_lengths(X64, parent, child)) if n >= 2 else np.empty(0)
        assert close(tiled, ref), f"{name}: tiled MST (block {block}, k {k}) differs from the reference"
        counts["trees"] += 1
    if n >= 12 and np.any(X64 != X64[0]):
        sizes = [n // 3, (2 * n) // 3, n]
        if sizes[0] >= 2 and sizes[0] < sizes[1] < sizes[2]:
            try:
                dense = topology.phdim(X64, sizes=sizes, seed=0, device="cpu", algorithm="dense")
            except ValueError:  # a subsample of identical points: log E(n) undefined, refused
                counts["phdim refused"] += 1
            else:
                tiled = topology.phdim(X64, sizes=sizes, seed=0, device="cpu", algorithm="tiled")
                assert close(dense.E, tiled.E), f"{name}: PHdim E(n) differs between the dense and tiled engines"
                counts["phdim"] += 1
    if 2 <= n <= 160:
        dgms = topology.persistence_diagrams(X64, maxdim=1, n_threads=1, device="cpu")
        finite = dgms[0][np.isfinite(dgms[0][:, 1]), 1]
        # Zero-length bars (duplicate points) are omitted from diagrams, as in ripser.
        assert close(np.sort(finite), ref[ref > 0]), f"{name}: H0 deaths differ from the MST"
        counts["diagrams"] += 1
    if len(np.unique(X64, axis=0)) >= 8:
        topology.intrinsic_dimensions(X64, ("twonn", "mle"), n_neighbors=5)
        counts["intrinsic"] += 1
    if n > 13:
        topology.knn_betti_numbers(X64, k=12, n_threads=1)
        counts["knn_betti"] += 1
    counts["clouds"] += 1


def sweep() -> dict:
    import numba

    assert numba.config.BOUNDSCHECK, "run with NUMBA_BOUNDSCHECK=1"

    @numba.njit
    def past_the_end(a):
        return a[a.shape[0]]

    try:  # the flag reaches compiled code: an index past the end raises instead of reading memory
        past_the_end(np.zeros(3))
        raise AssertionError("NUMBA_BOUNDSCHECK=1 did not make numba check bounds")
    except IndexError:
        pass
    from reptopo.topology.mst import _numba_kernel
    from reptopo.topology.tiled import _kernels

    assert _numba_kernel() is not None and _kernels() is not None, "the numba kernels did not compile"
    counts = dict.fromkeys(("clouds", "refused", "trees", "phdim", "phdim refused", "diagrams", "intrinsic",
                            "knn_betti"), 0)
    for name, X in clouds():
        check_cloud(name, X, counts)
    return counts


@pytest.mark.e2e
def test_numba_kernels_stay_in_bounds_on_random_and_degenerate_clouds(tmp_path):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"exit {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    # Every cloud ran (only the overflowing ones may be refused) through every engine it fits.
    assert counts["clouds"] + counts["refused"] == N_RANDOM + 19 and counts["refused"] <= 1, counts
    assert counts["trees"] == 5 * counts["clouds"] and counts["phdim refused"] <= 5, counts
    assert counts["phdim"] >= 150 and counts["diagrams"] >= 150 and counts["knn_betti"] >= 150, counts


if __name__ == "__main__":
    print(json.dumps(sweep()))
