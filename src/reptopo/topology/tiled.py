"""Exact Euclidean minimum spanning trees without an N x N matrix: Borůvka over distance tiles.

The dense engines (:mod:`.mst`) hold the whole float64 distance matrix: 8 N^2 bytes, 18.6 GiB at
N = 50,000. Here distances exist only one tile at a time (``block x block`` entries from one GEMM
of centred points), so memory is O(N d + N k + block^2).

CPU (numba kernels):

1. **One pass over all tiles** (the upper triangle only; each entry serves its row and its
   column) keeps every point's ``k`` nearest neighbours, in the strict order (distance, index).
2. **Borůvka rounds.** A component's cheapest outgoing edge is the least, over its points, of
   each point's first candidate outside the component. The first candidate outside is the
   point's nearest outside neighbour, because the list holds the ``k`` nearest of everything
   beyond the component it was made for, and components only grow. A point whose candidates
   all fell inside has a lower bound: its k-th distance. It is rescanned, over tiles of its row
   against all columns, only when that bound is below the component's best edge so far. Rescans
   run in order of increasing bound, so a component stops rescanning once its best edge beats
   its remaining points' bounds. A rescan stores the point's ``k`` nearest outside its current
   component, which stay valid in later rounds for the same reason.
3. Picked edges join components in (length, index) order through a union-find, and an edge
   that would close a cycle is skipped (possible only between near-equal lengths computed in
   different tiles), so the result is always a spanning tree.

torch (CUDA, or CPU tensors for tests): the dense engine's Borůvka, with each row block of
distances computed from the points on the fly instead of read from a stored matrix. Each of its
at most log2 N passes redoes the N^2 d GEMM (and recomputes the entries the GEMM cannot
resolve), which a GPU affords; on CPU the candidate lists above avoid that.

Exactness is the dense engine's: every tile entry is settled to within ``REL_ERROR`` (entries
the GEMM cannot resolve, see :func:`~.distances.flag_ratio`, are recomputed as
``||x_i - x_j||`` when they could matter), so the tree's sorted lengths match the dense tree's
to about ``2 * REL_ERROR``, and the caller recomputes the chosen edges exactly. On clouds
without ties it is the same tree.
"""

from __future__ import annotations

import functools

import numpy as np

from .boruvka import boruvka_torch
from .distances import REL_ERROR, _centred, flag_ratio

__all__ = ["tiled_mst", "TILE_BLOCK", "TILE_K"]

#: Rows (and columns) of one distance tile: 2048^2 float64 = 32 MiB.
TILE_BLOCK = 2048
#: Nearest-neighbour candidates kept per point.
TILE_K = 16


# --------------------------------------------------------------------------- numba kernels
# Written as plain functions, compiled together on first use by _kernels() (the kernels call
# _insert, which must be compiled first).


def _insert_py(cd, cj, i, d, j):  # pragma: no cover - compiled by numba
    """Insert (d, j) into row i of the sorted candidate lists if it beats the last entry."""
    k = cd.shape[1]
    last = k - 1
    if d > cd[i, last] or (d == cd[i, last] and j >= cj[i, last]):
        return
    t = last
    while t > 0 and (cd[i, t - 1] > d or (cd[i, t - 1] == d and cj[i, t - 1] > j)):
        cd[i, t] = cd[i, t - 1]
        cj[i, t] = cj[i, t - 1]
        t -= 1
    cd[i, t] = d
    cj[i, t] = j


def _exact_py(X, i, j):  # pragma: no cover - compiled by numba
    acc = 0.0
    for f in range(X.shape[1]):
        diff = X[i, f] - X[j, f]
        acc += diff * diff
    return np.sqrt(acc)


def _tile_distances_py(G, X, sq, rows, cols, kappa, errc, thr_r, thr_c):  # pragma: no cover
    """In place: G (gram of centred points ``rows`` x ``cols``) -> distances. An entry the GEMM
    cannot resolve (``v < kappa (|x|^2 + |y|^2)``) is recomputed exactly when its lower bound
    could beat the row's or the column's current threshold (``thr_r``, ``thr_c``); otherwise it
    keeps its (then irrelevant) GEMM value."""
    nr, nc = G.shape
    for a in range(nr):
        i = rows[a]
        si = sq[i]
        for b in range(nc):
            j = cols[b]
            s = si + sq[j]
            v = s - 2.0 * G[a, b]
            if v < kappa * s:
                lo = v - errc * s
                t = max(thr_r[a], thr_c[b])
                if lo <= 0.0 or lo <= t * t:
                    G[a, b] = _exact(X, i, j)
                    continue
            G[a, b] = np.sqrt(v) if v > 0.0 else 0.0


def _knn_tile_py(G, X, sq, r0, c0, diag, kappa, errc, cd, cj):  # pragma: no cover - numba
    """Pass 1 on the tile rows r0.. x columns c0..: every entry updates its row's and its
    column's candidate lists (the upper triangle only on a diagonal tile)."""
    nr, nc = G.shape
    k = cd.shape[1]
    rows = np.arange(r0, r0 + nr)
    cols = np.arange(c0, c0 + nc)
    thr_r = cd[r0 : r0 + nr, k - 1].copy()
    thr_c = cd[c0 : c0 + nc, k - 1].copy()
    _tile_distances(G, X, sq, rows, cols, kappa, errc, thr_r, thr_c)
    last = k - 1
    for a in range(nr):
        i = r0 + a
        start = a + 1 if diag else 0
        ti = cd[i, last]  # the row's threshold, re-read only after an insertion
        for b in range(start, nc):
            d = G[a, b]
            j = c0 + b
            # (the comparisons before the call: most entries beat neither list)
            if d <= ti:
                _insert(cd, cj, i, d, j)
                ti = cd[i, last]
            if d <= cd[j, last]:
                _insert(cd, cj, j, d, i)


def _rescan_tile_py(G, X, sq, rows, c0, comp, kappa, errc, nd, nj):  # pragma: no cover
    """A rescan tile: rows ``rows`` (global indices) x columns c0..; columns in the row's own
    component are skipped; the row's lists ``nd[a], nj[a]`` keep its k nearest outside."""
    nr, nc = G.shape
    k = nd.shape[1]
    cols = np.arange(c0, c0 + nc)
    thr_r = nd[:, k - 1].copy()
    thr_c = np.zeros(nc)  # columns keep no lists here
    _tile_distances(G, X, sq, rows, cols, kappa, errc, thr_r, thr_c)
    last = k - 1
    for a in range(nr):
        i = rows[a]
        ci = comp[i]
        ti = nd[a, last]
        for b in range(nc):
            d = G[a, b]
            if d <= ti and comp[c0 + b] != ci:
                _insert(nd, nj, a, d, c0 + b)
                ti = nd[a, last]


def _select_py(cd, cj, comp, n_comp, lb_out):  # pragma: no cover - compiled by numba
    """Per component, the best (distance, min index, max index) edge among its points' first
    candidates outside it. ``lb_out[i]``: inf where point i has a candidate outside, else its
    k-th distance (a lower bound on its nearest outside). Returns (best_d, best_a, best_b)."""
    n, k = cd.shape
    best_d = np.full(n_comp, np.inf)
    best_a = np.full(n_comp, n, dtype=np.int64)
    best_b = np.full(n_comp, n, dtype=np.int64)
    for i in range(n):
        ci = comp[i]
        lb_out[i] = cd[i, k - 1]
        for t in range(k):
            j = cj[i, t]
            if j >= 0 and comp[j] != ci:
                lb_out[i] = np.inf
                d = cd[i, t]
                a = min(i, j)
                b = max(i, j)
                if d < best_d[ci] or (d == best_d[ci] and (a < best_a[ci] or (a == best_a[ci] and b < best_b[ci]))):
                    best_d[ci] = d
                    best_a[ci] = a
                    best_b[ci] = b
                break
    return best_d, best_a, best_b


def _find_py(parent, a):  # pragma: no cover - compiled by numba
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _merge_py(parent, ea, eb, order, accepted):  # pragma: no cover - compiled by numba
    """Kruskal on the picked edges (in ``order``): join unless it closes a cycle."""
    for t in range(order.shape[0]):
        e = order[t]
        ra = _find(parent, ea[e])
        rb = _find(parent, eb[e])
        accepted[e] = ra != rb
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)


def _labels_py(parent):  # pragma: no cover - compiled by numba
    """Compact component labels 0..n_comp-1 from the union-find forest; returns (labels, n)."""
    n = parent.shape[0]
    root_label = np.full(n, -1, dtype=np.int64)
    labels = np.empty(n, dtype=np.int64)
    n_comp = 0
    for i in range(n):
        r = _find(parent, i)
        if root_label[r] < 0:
            root_label[r] = n_comp
            n_comp += 1
        labels[i] = root_label[r]
    return labels, n_comp


@functools.cache
def _kernels():
    """The compiled kernels (numba, cached on disk), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)
    g = globals()
    # Helpers first: the kernels look them up as globals when they compile.
    for name in ("_insert", "_exact", "_find"):
        g[name] = jit(g[name + "_py"])
    g["_tile_distances"] = jit(_tile_distances_py)
    return {name: jit(g[name + "_py"]) for name in ("_knn_tile", "_rescan_tile", "_select", "_merge", "_labels")}


# --------------------------------------------------------------------------- the CPU engine


def _tiled_mst_numpy(X: np.ndarray, block: int, k: int, stats: dict | None):
    kern = _kernels()
    n, dim = X.shape
    kappa = flag_ratio(dim)
    errc = kappa * REL_ERROR  # |error of a GEMM squared distance| <= errc * (|x|^2 + |y|^2)
    Xc, sq = _centred(X)
    Xc = np.ascontiguousarray(Xc)
    k = max(1, min(k, n - 1))
    cd = np.full((n, k), np.inf)
    cj = np.full((n, k), -1, dtype=np.int64)

    # 1. k nearest neighbours of every point, upper-triangle tiles.
    for r0 in range(0, n, block):
        A = Xc[r0 : r0 + block]
        for c0 in range(r0, n, block):
            G = A @ Xc[c0 : c0 + block].T
            kern["_knn_tile"](G, X, sq, r0, c0, c0 == r0, kappa, errc, cd, cj)
    complete = k == n - 1  # every list holds every other point: never rescanned

    # 2. Borůvka rounds.
    parent = np.arange(n, dtype=np.int64)
    edges_a, edges_b = [], []
    lb = np.empty(n)
    rounds = rescanned = 0
    while True:
        comp, n_comp = kern["_labels"](parent)
        if n_comp == 1:
            break
        rounds += 1
        best_d, best_a, best_b = kern["_select"](cd, cj, comp, n_comp, lb)
        if not complete:
            todo = np.flatnonzero(lb <= best_d[comp])
            todo = todo[np.argsort(lb[todo], kind="stable")]
            while todo.size:
                rows = todo[:block]
                todo = todo[block:]
                nd = np.full((rows.size, k), np.inf)
                nj = np.full((rows.size, k), -1, dtype=np.int64)
                A = Xc[rows]
                for c0 in range(0, n, block):
                    G = A @ Xc[c0 : c0 + block].T
                    kern["_rescan_tile"](G, X, sq, rows, c0, comp, kappa, errc, nd, nj)
                cd[rows], cj[rows] = nd, nj
                rescanned += rows.size
                best_d, best_a, best_b = kern["_select"](cd, cj, comp, n_comp, lb)
                if todo.size:  # drop the points whose bound no longer beats their component
                    todo = todo[lb[todo] <= best_d[comp[todo]]]
        if not np.isfinite(best_d).all():
            raise ValueError("a component has no outgoing edge of finite length: check X for inf")
        order = np.lexsort((best_b, best_a, best_d))
        accepted = np.zeros(n_comp, dtype=np.bool_)
        kern["_merge"](parent, best_a, best_b, order, accepted)
        edges_a.append(best_a[accepted])
        edges_b.append(best_b[accepted])
    if stats is not None:
        stats.update(rounds=rounds, rescanned=rescanned, k=k, block=block)
    return (np.concatenate(edges_a).astype(np.intp), np.concatenate(edges_b).astype(np.intp))


# --------------------------------------------------------------------------- the torch engine


def _tiled_mst_torch(X, device, block_elems: int):
    import torch

    Xt = torch.as_tensor(X, dtype=torch.float64, device=device)
    kappa = flag_ratio(X.shape[1])
    Xc, sq = _centred(Xt)

    def rows_block(start: int, stop: int):
        """Distances of points start..stop-1 to all points (a fresh (rows, n) tensor), every
        entry within ``REL_ERROR``: the entries the GEMM cannot resolve (the diagonal among
        them) are recomputed as ``||x_i - x_j||``."""
        s = sq[start:stop, None] + sq[None, :]
        v = s - 2.0 * (Xc[start:stop] @ Xc.T)
        a, b = (v < kappa * s).nonzero(as_tuple=True)
        D = v.clamp_(min=0.0).sqrt_()
        for t in range(0, a.numel(), 2**16):
            aa, bb = a[t : t + 2**16], b[t : t + 2**16]
            diff = Xt[aa + start] - Xt[bb]
            D[aa, bb] = (diff * diff).sum(dim=1).sqrt()
        return D

    return boruvka_torch(None, None, block_elems, rows=rows_block, n=X.shape[0])


def tiled_mst(
    X: np.ndarray,
    engine: str = "numpy",
    block: int = TILE_BLOCK,
    k: int = TILE_K,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean MST of a validated point cloud, with distances in tiles.

    Parameters
    ----------
    X : np.ndarray, float64, shape (n_points, n_features)
        Validated points (see :func:`~._validation.as_points`).
    engine : {"numpy", "torch-cpu", "cuda[:N]"}
        "numpy": the numba Borůvka with candidate lists (the torch engine when numba is
        missing); torch: row blocks of ``block**2`` entries on that device.
    block : int
        Tile side (CPU) in points; a torch row block holds ``block**2`` entries.
    k : int
        Candidates kept per point (CPU).
    stats : dict, optional
        Filled with ``rounds``, ``rescanned`` (point rescans over all rounds), ``k``, ``block``.

    Returns
    -------
    parent, child : np.ndarray of intp, shape (n_points - 1,)
        Tree edges (point indices), in the order the rounds add them.
    """
    n = X.shape[0]
    if n < 2:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    if engine == "numpy" and _kernels() is not None:
        return _tiled_mst_numpy(X, int(block), int(k), stats)
    import torch

    dev = torch.device("cpu" if engine in ("numpy", "torch-cpu") else engine)
    # On a GPU, rows blocks of at least 2**25 entries (256 MiB): fewer, larger GEMMs.
    elems = int(block) ** 2 if dev.type == "cpu" else max(int(block) ** 2, 2**25)
    return _tiled_mst_torch(X, dev, elems)
