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

from ._validation import as_input, resolve_device
from .distances import (
    edge_lengths,
    pairwise_distances,
    pairwise_distances_torch,
    symmetrize_upper_,
)

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


# Temporary (rows x n) float64 block of one Borůvka pass, in elements: 2**25 = 256 MiB, small
# next to the N x N matrix it is cut from.
_BORUVKA_BLOCK_ELEMS = 2**25


def _boruvka_torch(D, idx=None, block_elems: int = _BORUVKA_BLOCK_ELEMS):
    """Borůvka MST of ``D[idx][:, idx]`` on ``D.device``: O(log n) vectorised passes.

    Prim needs n sequential steps, which on a GPU means n rounds of tiny kernel launches (slower
    than the numba loop on CPU). Borůvka instead, in each pass, finds for every component its
    cheapest edge to another component with row-wise minima over the whole block (one masked
    min per row block), then merges along those edges; every pass at least halves the number
    of components, so a tree on n points takes at most ceil(log2 n) passes, each a handful of
    kernels and one small host transfer.

    Ties are broken by a strict total order on edges, (weight, min(i, j), max(i, j)), which
    makes the minimum spanning tree unique, so the edges chosen in one pass never close a cycle
    (the classic Borůvka pitfall with equal weights, e.g. duplicate points at distance 0).

    Parameters
    ----------
    D : torch.Tensor, float64, shape (N, N)
        Exactly symmetric distance matrix (see :func:`~.distances.symmetrize_upper_`); only rows
        ``idx`` and columns ``idx`` are read.
    idx : torch.Tensor of int64 on ``D.device``, shape (n,), optional
        Vertices of the sub-graph (global row numbers in ``D``); ``None``: all of ``D``.
    block_elems : int
        Rows are processed in blocks of ``block_elems // n`` rows, so the temporary masked
        (rows x n) block stays small next to ``D``.

    Returns
    -------
    parent, child : np.ndarray of intp, shape (n - 1,)
        Tree edges as *local* positions in ``idx`` (or rows of ``D``), in the order the passes
        add them; ``parent < child`` for every edge.
    """
    import torch
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    dev = D.device
    n = D.shape[0] if idx is None else int(idx.shape[0])
    if n < 2:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    g = None if idx is None else idx.to(device=dev, dtype=torch.int64)
    rows_per_block = max(1, block_elems // n)
    local = torch.arange(n, device=dev)
    no_edge = torch.iinfo(torch.int64).max
    comp = np.arange(n, dtype=np.int64)  # component label (0..n_comp-1) of each vertex, on the host
    found: list[np.ndarray] = []  # edge codes a * n + b, a < b, one array per pass
    n_comp = n
    while n_comp > 1:
        comp_dev = torch.from_numpy(comp).to(dev)
        # Cheapest edge out of each vertex's component: weight, and the smallest partner index
        # among equal weights (argmin returns the first minimum), which is the (a, b)-smallest.
        best_w = torch.empty(n, dtype=D.dtype, device=dev)
        best_j = torch.empty(n, dtype=torch.int64, device=dev)
        for start in range(0, n, rows_per_block):
            stop = min(start + rows_per_block, n)
            same = comp_dev[start:stop, None] == comp_dev[None, :]
            if g is None:
                block = D[start:stop].masked_fill(same, float("inf"))  # a copy; D is untouched
            else:
                # One gather straight to rows x n (index_select by rows first would build a
                # rows x N block), then masked in place.
                block = D[g[start:stop, None], g[None, :]]
                block.masked_fill_(same, float("inf"))
            j = torch.argmin(block, dim=1)
            best_j[start:stop] = j
            best_w[start:stop] = block.gather(1, j[:, None]).squeeze(1)
            del block, same
        # Per component: the minimum weight, then among its vertices attaining it the smallest
        # code (min(i, j), max(i, j)); labels are vertex numbers, so n slots suffice.
        comp_w = torch.full((n,), float("inf"), dtype=D.dtype, device=dev)
        comp_w.scatter_reduce_(0, comp_dev, best_w, reduce="amin")
        if not bool(torch.isfinite(comp_w[comp_dev]).all()):
            # Masked entries are inf too, so an inf distance would pass for "no edge".
            raise ValueError(
                "the distance matrix has inf entries (squared norms overflow float64 for "
                "coordinates beyond ~1e154): rescale X"
            )
        a = torch.minimum(local, best_j)
        b = torch.maximum(local, best_j)
        code = torch.where(best_w == comp_w[comp_dev], a * n + b, no_edge)
        comp_code = torch.full((n,), no_edge, dtype=torch.int64, device=dev)
        comp_code.scatter_reduce_(0, comp_dev, code, reduce="amin")
        codes = torch.unique(comp_code[comp_code != no_edge]).cpu().numpy()
        ea, eb = codes // n, codes % n
        found.append(codes)
        # Merge the components along the new edges: a small graph on the labels 0..n_comp-1
        # (connected_components numbers its output labels the same compact way).
        graph = coo_matrix((np.ones(codes.size), (comp[ea], comp[eb])), shape=(n_comp, n_comp))
        n_comp, merged = connected_components(graph, directed=False)
        comp = merged[comp].astype(np.int64, copy=False)
    codes = np.concatenate(found)
    if codes.size != n - 1:  # a cycle: only possible if D is not exactly symmetric
        raise RuntimeError(
            f"Borůvka returned {codes.size} edges for {n} points: D must be exactly symmetric"
        )
    return (codes // n).astype(np.intp), (codes % n).astype(np.intp)


class _TreeEngine:
    """One dense distance matrix (numpy or torch) plus exact MSTs of any subset of its points.

    Holds at most one N x N matrix. ``X`` is the validated float64 point cloud (``None`` when the
    input was a precomputed distance matrix, whose entries are then the exact lengths).
    """

    def __init__(self, X: np.ndarray | None, D: np.ndarray | None, engine: str):
        self.X = X
        self.engine = engine
        self.D_np = D  # only for metric="precomputed": the exact lengths
        if engine == "numpy":
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
    def from_input(cls, X: np.ndarray, metric: str, engine: str) -> "_TreeEngine":
        if metric == "precomputed":
            return cls(None, X, engine)
        return cls(X, None, engine)

    def dense_numpy(self) -> np.ndarray:
        """The distance matrix as a float64 numpy array (no copy on the numpy engine)."""
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
        if self.engine == "numpy":
            p, c = _prim_cpu(self.D, idx)
        else:
            import torch

            tidx = None if idx is None else torch.as_tensor(idx, device=self._device)
            p, c = _boruvka_torch(self.D, tidx)
        if idx is not None:
            idx = np.asarray(idx, dtype=np.intp)
            p, c = idx[p], idx[c]
        if self.X is not None:
            lengths = edge_lengths(self.X, p, c)
        else:
            lengths = self.D_np[p, c].astype(np.float64, copy=True)
        return p, c, lengths


def mst_edges(
    X: Any, *, metric: str = "euclidean", device: str = "auto"
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

    Returns
    -------
    edges : np.ndarray of intp, shape (n_points - 1, 2)
        Point indices of each tree edge, sorted by increasing length (stable).
    lengths : np.ndarray, float64, shape (n_points - 1,)
        Exact edge lengths ``||x_i - x_j||`` in the units of ``X``, ascending.
    """
    X = as_input(X, metric, min_points=1)
    eng = _TreeEngine.from_input(X, metric, resolve_device(device))
    i, j, lengths = eng.tree()
    order = np.argsort(lengths, kind="stable")
    return np.stack([i[order], j[order]], axis=1), lengths[order]


def mst_edge_lengths(X: Any, *, metric: str = "euclidean", device: str = "auto") -> np.ndarray:
    """Sorted edge lengths of the Euclidean MST = the finite H0 deaths of VR(X).

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        Point cloud (or distance matrix with ``metric="precomputed"``).
    metric, device
        As in :func:`mst_edges`.

    Returns
    -------
    np.ndarray, float64, shape (n_points - 1,)
        Ascending; zeros for duplicate points are included (they are zero-length H0 bars).
    """
    return mst_edges(X, metric=metric, device=device)[1]
