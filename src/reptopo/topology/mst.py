"""Exact Euclidean minimum spanning trees, hence exact H0 persistence of a Vietoris–Rips filtration.

The finite H0 bars of VR(X) are ``(0, w)`` for the edge weights ``w`` of a minimum spanning tree of
the complete graph on X (Kruskal's algorithm is the H0 persistence algorithm). We build the tree
with a dense O(n^2) algorithm on a precomputed distance matrix (or on a sub-block of it, selected
by an index array, without copying the block), then recompute each of the n-1 chosen edges exactly as
``||x_i - x_j||``: the GEMM-built matrix only has to be good enough to *choose* the tree. It is:
every entry is within ``distances.REL_ERROR`` (1e-10) relative of the exact distance at any
dynamic range, so the chosen tree's sorted lengths are the exact tree's to about 2e-10 (a tree
chosen on weights off by at most a factor 1 +- r has every sorted weight within that factor).

Unlike ``scipy.sparse.csgraph.minimum_spanning_tree`` on a dense matrix, zero distances (duplicate
points) are ordinary edges here, not missing ones.

Three engines, all returning the tree as (parent, child) index arrays: on CPU, Prim in a
numba-compiled loop (numba ships with scikit-dimension), with a pure-numpy loop as fallback that
picks the identical tree; and torch (CUDA when present, or CPU tensors for testing), which runs
Borůvka instead: O(log n) passes of row-wise minima over the whole matrix, rather than Prim's n
sequential steps (n rounds of kernel launches on a GPU). Where distances tie the two may choose
different trees; every minimum spanning tree has the same multiset of edge lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import compiled

from ._budget import check_algorithm, check_memory_limit, choose_algorithm
from ._validation import as_input, resolve_device
from .distances import (
    edge_lengths,
    pairwise_distances,
    pairwise_distances_torch,
    symmetrize_upper_,
)
from .boruvka import boruvka_torch
from .tiled import tiled_mst

__all__ = ["mst_edges", "mst_edge_lengths"]


def _prim_numpy(D: np.ndarray, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense Prim on ``D[idx][:, idx]`` (``idx=None``: all of ``D``), reading ``D`` row by row.

    Parameters
    ----------
    D : np.ndarray, float64, shape (N, N)
        Symmetric distance matrix; only rows ``idx`` and columns ``idx`` are read.
    idx : np.ndarray of int, shape (n,), optional
        Vertices of the sub-graph (global row numbers in ``D``).

    Returns
    -------
    parent, child : np.ndarray of intp, shape (n - 1,)
        Tree edges as *local* positions in ``idx`` (or rows of ``D``), in the order Prim adds them.
    """
    n = D.shape[0] if idx is None else int(idx.shape[0])
    parent_out = np.empty(max(n - 1, 0), dtype=np.intp)
    child_out = np.empty(max(n - 1, 0), dtype=np.intp)
    if n < 2:
        return parent_out, child_out
    g = np.arange(n, dtype=np.intp) if idx is None else np.asarray(idx, dtype=np.intp)
    # Vertices outside the tree, kept compact by swap-removal so each step costs O(#remaining).
    rem = np.arange(1, n, dtype=np.intp)  # local positions
    grem = g[1:].copy()  # their rows in D
    key = D[g[0]].take(grem)  # distance from each remaining vertex to the tree
    par = np.zeros(n - 1, dtype=np.intp)  # local position of the tree vertex realising `key`
    mask = np.empty(n - 1, dtype=bool)
    m = n - 1
    for k in range(n - 1):
        j = int(key[:m].argmin())
        u = int(rem[j])
        gu = int(grem[j])
        child_out[k] = u
        parent_out[k] = par[j]
        m -= 1
        if m == 0:
            break
        rem[j] = rem[m]
        grem[j] = grem[m]
        key[j] = key[m]
        par[j] = par[m]
        # (np.minimum + np.putmask are several times cheaper than np.copyto(where=) here)
        kk, mk = key[:m], mask[:m]
        r = D[gu].take(grem[:m])
        np.less(r, kk, out=mk)
        np.minimum(kk, r, out=kk)
        np.putmask(par[:m], mk, u)
    return parent_out, child_out


def _prim_kernel_py(D, g, parent_out, child_out):  # pragma: no cover - compiled by numba
    """Compiled body of :func:`_prim_numpy` (same swap-removal scheme, same tie-breaking)."""
    n = g.shape[0]
    rem = np.arange(1, n)
    grem = g[1:].copy()
    key = np.empty(n - 1)
    par = np.zeros(n - 1, dtype=np.int64)
    row0 = g[0]
    j = 0
    for t in range(n - 1):
        key[t] = D[row0, grem[t]]
        if key[t] < key[j]:  # strict: first minimum wins, as np.argmin
            j = t
    m = n - 1
    for k in range(n - 1):
        u = rem[j]
        child_out[k] = u
        parent_out[k] = par[j]
        gu = grem[j]
        m -= 1
        rem[j] = rem[m]
        grem[j] = grem[m]
        key[j] = key[m]
        par[j] = par[m]
        # One fused pass: relax the keys through u and find the next minimum.
        best = np.inf
        j = 0
        for t in range(m):
            d = D[gu, grem[t]]
            if d < key[t]:
                key[t] = d
                par[t] = u
            if key[t] < best:
                best = key[t]
                j = t


def _numba_kernel():
    """The numba-compiled Prim kernel, or ``None`` when numba is unavailable (numba comes with
    scikit-dimension; compiled on first use and cached on disk)."""
    return compiled(_prim_kernel_py)


def _prim_cpu(
    D: np.ndarray, idx: np.ndarray | None = None, use_numba: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """CPU Prim: the numba kernel when available (about 10x faster), else :func:`_prim_numpy`.

    Both give the same tree (same scan order and tie-breaking); see :func:`_prim_numpy` for the
    parameters and return values.
    """
    kernel = _numba_kernel() if use_numba else None
    if kernel is None:
        return _prim_numpy(D, idx)
    n = D.shape[0] if idx is None else int(idx.shape[0])
    parent_out = np.empty(max(n - 1, 0), dtype=np.int64)
    child_out = np.empty(max(n - 1, 0), dtype=np.int64)
    if n >= 2:
        g = np.arange(n, dtype=np.int64) if idx is None else np.asarray(idx, dtype=np.int64)
        kernel(np.ascontiguousarray(D), g, parent_out, child_out)
    return parent_out.astype(np.intp, copy=False), child_out.astype(np.intp, copy=False)


class _TreeEngine:
    """One dense distance matrix (numpy or torch) plus exact MSTs of any subset of its points.

    Holds at most one N x N matrix. ``X`` is the validated float64 point cloud (``None`` when the
    input was a precomputed distance matrix, whose entries are then the exact lengths).
    """

    def __init__(self, X: np.ndarray | None, D: np.ndarray | None, engine: str, algorithm: str = "dense"):
        self.X = X
        self.engine = engine
        self.algorithm = algorithm
        self.D_np = D  # only for metric="precomputed": the exact lengths
        if algorithm == "tiled":
            if X is None:
                raise ValueError('algorithm="tiled" needs points, not a precomputed distance matrix')
            self.D = None  # distances only ever exist one tile at a time
        elif engine == "numpy":
            self.D = D if D is not None else pairwise_distances(X)
        else:
            import torch

            dev = torch.device("cpu" if engine == "torch-cpu" else engine)
            if D is not None:
                # A copy (never the caller's array), made exactly symmetric: the input is only
                # checked to be symmetric to 1e-9, and Borůvka needs D[i, j] == D[j, i].
                self.D = symmetrize_upper_(torch.tensor(D, dtype=torch.float64, device=dev))
            else:
                self.D = pairwise_distances_torch(
                    torch.as_tensor(X, dtype=torch.float64, device=dev)
                )
            self._device = dev

    @classmethod
    def from_input(cls, X: np.ndarray, metric: str, engine: str, algorithm: str = "dense") -> "_TreeEngine":
        if metric == "precomputed":
            if algorithm == "tiled":
                raise ValueError('algorithm="tiled" needs points, not metric="precomputed"')
            return cls(None, X, engine)
        return cls(X, None, engine, algorithm)

    def dense_numpy(self) -> np.ndarray:
        """The distance matrix as a float64 numpy array (no copy on the numpy engine)."""
        if self.D is None:
            raise ValueError('the tiled engine holds no distance matrix (H1 needs algorithm="dense")')
        if self.engine == "numpy":
            return self.D
        return self.D.cpu().numpy()

    def tree(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MST of the points ``idx`` (all points when ``None``).

        Returns
        -------
        i, j : np.ndarray of intp, shape (n - 1,)
            Global point indices of each tree edge.
        lengths : np.ndarray, float64, shape (n - 1,)
            Exact edge lengths, in the order the engine adds the edges.
        """
        if self.algorithm == "tiled":
            p, c = tiled_mst(self.X if idx is None else self.X[idx], self.engine)
        elif self.engine == "numpy":
            p, c = _prim_cpu(self.D, idx)
        else:
            import torch

            tidx = None if idx is None else torch.as_tensor(idx, device=self._device)
            p, c = boruvka_torch(self.D, tidx)
        if idx is not None:
            idx = np.asarray(idx, dtype=np.intp)
            p, c = idx[p], idx[c]
        if self.X is not None:
            lengths = edge_lengths(self.X, p, c)
        else:
            lengths = self.D_np[p, c].astype(np.float64, copy=True)
        return p, c, lengths


def mst_edges(
    X: Any,
    *,
    metric: str = "euclidean",
    device: str = "auto",
    algorithm: str = "auto",
    memory_limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean minimum spanning tree of a point cloud.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        Point cloud; or, with ``metric="precomputed"``, a (n_points, n_points) distance matrix.
    metric : {"euclidean", "precomputed"}
    device : {"auto", "cpu", "torch-cpu", "cuda"}
        Engine for the distance matrix and the tree (see
        :func:`reptopo.topology._validation.resolve_device`). Lengths are always exact float64.
    algorithm : {"auto", "dense", "tiled"}
        "dense" builds the N x N matrix (8 N^2 bytes); "tiled" never holds more than two
        ``block x block`` tiles of it (:mod:`~.tiled`), O(N d) memory. Both give the exact tree.
        "auto" (see :func:`~._budget.choose_algorithm`): dense up to ``DENSE_MAX_POINTS`` points
        on CPU while the matrix fits in ``memory_limit``, tiled beyond.
    memory_limit : float, optional
        Bytes "auto" may spend on the matrix; default half of the memory available now.

    Returns
    -------
    edges : np.ndarray of intp, shape (n_points - 1, 2)
        Point indices of each tree edge, sorted by increasing length (stable).
    lengths : np.ndarray, float64, shape (n_points - 1,)
        Exact edge lengths ``||x_i - x_j||`` in the units of ``X``, ascending.
    """
    X = as_input(X, metric, min_points=1)
    engine = resolve_device(device)
    check_algorithm(algorithm)
    memory_limit = check_memory_limit(memory_limit)
    if metric == "precomputed" and algorithm != "tiled":
        algorithm = "dense"  # the matrix is already there
    algorithm = choose_algorithm(algorithm, X.shape[0], engine, memory_limit)
    eng = _TreeEngine.from_input(X, metric, engine, algorithm)
    i, j, lengths = eng.tree()
    order = np.argsort(lengths, kind="stable")
    return np.stack([i[order], j[order]], axis=1), lengths[order]


def mst_edge_lengths(
    X: Any,
    *,
    metric: str = "euclidean",
    device: str = "auto",
    algorithm: str = "auto",
    memory_limit: float | None = None,
) -> np.ndarray:
    """Sorted edge lengths of the Euclidean MST = the finite H0 deaths of VR(X).

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        Point cloud (or distance matrix with ``metric="precomputed"``).
    metric, device, algorithm, memory_limit
        As in :func:`mst_edges`.

    Returns
    -------
    np.ndarray, float64, shape (n_points - 1,)
        Ascending; zeros for duplicate points are included (they are zero-length H0 bars).
    """
    return mst_edges(X, metric=metric, device=device, algorithm=algorithm, memory_limit=memory_limit)[1]
