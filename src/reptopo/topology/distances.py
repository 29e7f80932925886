"""Euclidean distances: GEMM-built dense matrices, accurate to 1e-10 relative in every entry.

The dense matrix uses ``||x - y||^2 = ||x||^2 + ||y||^2 - 2 <x, y>`` so that almost all the work is
one matrix product (BLAS on CPU, cuBLAS on GPU). That identity has an absolute error of about
``eps * (||x||^2 + ||y||^2)`` in the squared distance, so it loses relative precision for points
much closer to each other than to the centre: near-duplicates, a far cluster, a far outlier.
Three steps bound every entry's relative error by ``REL_ERROR`` instead:

1. The points are centred on a coordinate-wise median (robust to far outliers), which shrinks
   the norms.
2. Every entry whose squared distance is within the worst-case rounding bound's reach
   (``d^2 < kappa * (|x|^2 + |y|^2)``, see :func:`flag_ratio`) is flagged.
3. The flagged pairs are settled. They split into the connected components of the "flagged"
   graph. A component whose points are much closer to their own median than to the global one
   (a far cluster, a cluster of near-duplicates) gets its sub-block rebuilt by the same GEMM on
   locally centred points, recursively. Every other flagged pair is recomputed directly as
   ``||x_i - x_j||``. On an ordinary cloud nothing, or only a few near pairs, is flagged.

With every entry within ``REL_ERROR`` of the exact distance, the minimum spanning tree chosen on
the matrix has the exact one's sorted edge lengths to about ``2 * REL_ERROR``; the MST code then
recomputes its edges exactly with :func:`edge_lengths`.
"""

from __future__ import annotations

import numpy as np

from ._jit import compiled

__all__ = [
    "REL_ERROR",
    "flag_ratio",
    "pairwise_distances",
    "pairwise_distances_torch",
    "symmetrize_upper_",
    "edge_lengths",
    "gram",
]

#: Bound on the relative error of every entry of the distance matrices built here.
REL_ERROR = 1e-10

# A component is rebuilt by its own GEMM when its squared norms about its own median are at most
# this fraction of those at the current level (so each level gains 10x in scale), and it has at
# least _MIN_REBUILD points (smaller ones are cheaper to settle pair by pair).
_REBUILD_SHRINK = 1e-2
_MIN_REBUILD = 32

# Pairs per chunk when flagged pairs are recomputed directly (chunk x n_features temporaries).
_PAIR_CHUNK = 2**16


def flag_ratio(n_features: int) -> float:
    """``kappa``: an entry is flagged when its GEMM squared distance is below
    ``kappa * (|x|^2 + |y|^2)`` (centred norms).

    The worst-case rounding error of ``|x|^2 + |y|^2 - 2 <x, y>`` in float64 is at most
    ``(2 * gamma_d + 4u) * (|x|^2 + |y|^2)`` with ``u = 2**-53`` and
    ``gamma_d = d u / (1 - d u)`` (Higham, dot products in any summation order, so BLAS and cuBLAS
    blockings included); ``d + 2`` covers the centring. Entries above the threshold then have a
    relative error of at most ``REL_ERROR`` in the squared distance, half that in the distance.
    """
    u = 2.0**-53
    m = (n_features + 2) * u
    gamma = m / (1.0 - m)
    return (2.0 * gamma + 4.0 * u) / REL_ERROR


def _gram_to_distances_py(G, sq, kappa, parent):  # pragma: no cover - compiled by numba
    """In place: G[i, j] <- sqrt(max(sq[i] + sq[j] - 2 G[i, j], 0)), zero diagonal. Each flagged
    pair (i != j) joins i and j in the union-find forest ``parent``. Returns the number of rows
    with a flagged entry.

    The distance loop is branch-free (numba vectorises it) and counts the row's flags on the
    way; only a row with flags is read a second time, for the union-find.
    """
    n = G.shape[0]
    rows = 0
    for i in range(n):
        si = sq[i]
        vii = 2.0 * si - 2.0 * G[i, i]
        c = 0
        for j in range(n):
            v = si + sq[j] - 2.0 * G[i, j]
            G[i, j] = np.sqrt(v) if v > 0.0 else 0.0
            # (The test on v here and on d * d below differ only within 2 ulps of the threshold,
            # where an entry's error bound is REL_ERROR either way.)
            c += 1 if v < kappa * (si + sq[j]) else 0
        c -= 1 if vii < kappa * (si + si) else 0  # the diagonal is no pair
        G[i, i] = 0.0
        if c == 0:
            continue
        rows += 1
        for j in range(n):
            d = G[i, j]
            if j != i and d * d < kappa * (si + sq[j]):
                a = i  # union-find with path halving (inline: numba cannot call plain Python)
                while parent[a] != a:
                    parent[a] = parent[parent[a]]
                    a = parent[a]
                b = j
                while parent[b] != b:
                    parent[b] = parent[parent[b]]
                    b = parent[b]
                if a != b:
                    parent[max(a, b)] = min(a, b)
    for i in range(n):  # parents have smaller indices, so one ascending pass labels every point
        parent[i] = parent[parent[i]]
    return rows


def _settle_members_py(D, X, sq, kappa, members, starts):  # pragma: no cover - numba
    """In place: every flagged pair (a, b) within each group ``members[starts[g]:starts[g + 1]]``
    gets ``D[a, b] = D[b, a] = ||X[a] - X[b]||``, summed directly (no temporaries)."""
    d = X.shape[1]
    for g in range(starts.shape[0] - 1):
        for s in range(starts[g], starts[g + 1]):
            a = members[s]
            for t in range(s + 1, starts[g + 1]):
                b = members[t]
                r = D[a, b]
                if r * r < kappa * (sq[a] + sq[b]):
                    acc = 0.0
                    for k in range(d):
                        diff = X[a, k] - X[b, k]
                        acc += diff * diff
                    r = np.sqrt(acc)
                    D[a, b] = r
                    D[b, a] = r


def _gram_kernel():
    """numba-compiled :func:`_gram_to_distances_py`; None without numba."""
    return compiled(_gram_to_distances_py)


def _settle_kernel():
    """numba-compiled :func:`_settle_members_py`; None without numba."""
    return compiled(_settle_members_py)


def _centred(X):
    """``X`` minus a robust centre, and the squared row norms (numpy or torch).

    The centre is the coordinate-wise median of at most about 1000 evenly strided rows: any point
    in the bulk of the cloud serves (a far outlier must not drag it out, as it drags the mean),
    and the subsample keeps it at O(1000 d) next to the O(n^2 d) GEMM.
    """
    step = max(1, X.shape[0] // 1024)
    if isinstance(X, np.ndarray):
        Xc = X - np.median(X[::step], axis=0)
        return Xc, np.einsum("ij,ij->i", Xc, Xc)
    Xc = X - X[::step].median(dim=0).values
    return Xc, (Xc * Xc).sum(dim=1)


# Up to this many rows one BLAS syrk (numpy's A @ A.T) builds the Gram matrix. Beyond, blocks:
# the OpenBLAS 0.3.23 of the numpy 1.26 wheels segfaults inside A @ A.T for large n (numpy issue
# 19685; here from n = 20,000 at d = 200 and n = 24,000 at d = 128, never below 18,000).
_SYRK_MAX_ROWS = 8192
_GRAM_BLOCK = 2048


def gram(A: np.ndarray) -> np.ndarray:
    """``A @ A.T``, exactly symmetric, float64 (n, n) for ``A`` of shape (n, d).

    One syrk up to ``_SYRK_MAX_ROWS`` rows; beyond, GEMMs on the upper-triangle blocks, each
    copied to its mirror block (so the result stays exactly symmetric, as syrk's is).
    """
    n = A.shape[0]
    if n <= _SYRK_MAX_ROWS:
        return A @ A.T
    G = np.empty((n, n), dtype=np.result_type(A.dtype, np.float64))
    Bt = np.ascontiguousarray(A.T)  # a separate buffer: numpy then calls GEMM, never syrk
    b = _GRAM_BLOCK
    for r0 in range(0, n, b):
        r1 = min(r0 + b, n)
        G[r0:r1, r0:] = A[r0:r1] @ Bt[:, r0:]
        diag = G[r0:r1, r0:r1]
        diag[...] = np.triu(diag) + np.triu(diag, 1).T  # a GEMM block need not be symmetric
        G[r1:, r0:r1] = G[r0:r1, r1:].T
    return G


def _flagged_by_blocks(D, sq, kappa, xp):
    """All flagged pairs (i < j), in row blocks of about 4M entries (numpy or torch ``xp``):
    int64 host arrays."""
    n = D.shape[0]
    cols = xp.arange(n) if xp is np else xp.arange(n, device=D.device)
    found_i, found_j = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    step = max(1, 2**22 // max(n, 1))
    for start in range(0, n, step):
        blk = D[start : start + step]
        mask = blk * blk < kappa * (sq[start : start + step, None] + sq[None, :])
        mask &= cols[None, :] > cols[start : start + blk.shape[0], None]
        if xp is np:
            i, j = mask.nonzero()
        else:
            i, j = (t.cpu().numpy() for t in mask.nonzero(as_tuple=True))
        found_i.append(i.astype(np.int64) + start)
        found_j.append(j.astype(np.int64))
    return np.concatenate(found_i), np.concatenate(found_j)


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label of each of ``n`` points in the graph of the pairs (i, j)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


class _NumpyOps:
    """The numpy side of :func:`_distances`: GEMM block, flagged pairs, writes."""

    @staticmethod
    def gemm(X: np.ndarray, kappa: float):
        """(D, sq, flagged): the centred GEMM matrix of ``X``, its squared centred norms, and
        ``None`` when no entry is flagged, else (component labels, the flagged pairs or None)."""
        Xc, sq = _centred(X)
        G = gram(Xc)  # the only n x n allocation; the rest in place
        kernel = _gram_kernel()
        if kernel is not None:
            parent = np.arange(G.shape[0], dtype=np.int64)
            # One fused pass instead of five full-matrix numpy passes; it also joins the flagged
            # pairs' components without listing them (a far cluster flags ~n^2/4 pairs).
            flagged = kernel(G, sq, kappa, parent)
            return G, sq, (parent, None) if flagged else None
        step = max(1, 2**22 // max(G.shape[0], 1))
        for start in range(0, G.shape[0], step):  # row blocks: small temporaries
            blk = G[start : start + step]
            # (sq_i + sq_j) first: it is symmetric, so D is exactly symmetric like G (syrk)
            blk *= -2.0
            blk += sq[start : start + step, None] + sq[None, :]
            np.maximum(blk, 0.0, out=blk)
            np.sqrt(blk, out=blk)
        np.fill_diagonal(G, 0.0)
        i, j = _flagged_by_blocks(G, sq, kappa, np)
        return G, sq, (_components(G.shape[0], i, j), (i, j)) if i.size else None

    @staticmethod
    def settle_pairs(D, X, sq, kappa: float, labels, direct, pairs) -> None:
        """Recompute directly the flagged pairs of the components ``c`` with ``direct[c]``."""
        if pairs is None:  # the numba path: pairs were never listed
            points = np.flatnonzero(direct[labels])
            members = points[np.argsort(labels[points], kind="stable")]
            starts = np.searchsorted(labels[members], np.flatnonzero(direct))
            starts = np.append(starts, members.size).astype(np.int64)
            _settle_kernel()(D, X, sq, kappa, members.astype(np.int64), starts)
            return
        keep = direct[labels[pairs[0]]]
        i, j = pairs[0][keep], pairs[1][keep]
        for s in range(0, i.size, _PAIR_CHUNK):
            a, b = i[s : s + _PAIR_CHUNK], j[s : s + _PAIR_CHUNK]
            v = edge_lengths(X, a, b)
            D[a, b] = v
            D[b, a] = v

    @staticmethod
    def put_block(D, C, sub):
        D[np.ix_(C, C)] = sub

    @staticmethod
    def take(a, C):
        return a[C]


class _TorchOps:
    """The torch side of :func:`_distances` (same steps on ``X.device``)."""

    @staticmethod
    def gemm(X, kappa: float):
        import torch

        Xc, sq = _centred(X)
        D = Xc @ Xc.T
        D.mul_(-2.0)
        D.add_(sq[:, None])
        D.add_(sq[None, :])
        D.clamp_(min=0.0)
        D.sqrt_()
        D.fill_diagonal_(0.0)
        i, j = _flagged_by_blocks(D, sq, kappa, torch)
        return D, sq, (_components(D.shape[0], i, j), (i, j)) if i.size else None

    @staticmethod
    def settle_pairs(D, X, sq, kappa: float, labels, direct, pairs) -> None:
        import torch

        keep = direct[labels[pairs[0]]]
        i, j = pairs[0][keep], pairs[1][keep]
        for s in range(0, i.size, _PAIR_CHUNK):
            a = torch.from_numpy(i[s : s + _PAIR_CHUNK]).to(D.device)
            b = torch.from_numpy(j[s : s + _PAIR_CHUNK]).to(D.device)
            diff = X[a] - X[b]
            v = (diff * diff).sum(dim=1).sqrt_()
            D[a, b] = v
            D[b, a] = v

    @staticmethod
    def put_block(D, C, sub):
        import torch

        c = torch.from_numpy(C).to(D.device)
        D[c[:, None], c[None, :]] = sub

    @staticmethod
    def take(a, C):
        import torch

        return a[torch.from_numpy(C).to(a.device)]


def _distances(X, ops):
    """Dense distance matrix of ``X`` (numpy or torch, per ``ops``) with every entry within
    ``REL_ERROR`` of the exact distance: the three steps of the module docstring."""
    kappa = flag_ratio(X.shape[1])
    D, sq, flagged = ops.gemm(X, kappa)
    if flagged is None:
        return D
    labels, pairs = flagged
    sizes = np.bincount(labels, minlength=1)
    settle_directly = sizes >= 2  # per component; singletons have no flagged pair
    for c in np.flatnonzero(sizes >= _MIN_REBUILD):
        C = np.flatnonzero(labels == c)
        XC = ops.take(X, C)
        _, sq_local = _centred(XC)
        if float(sq_local.mean()) <= _REBUILD_SHRINK * float(ops.take(sq, C).mean()):
            ops.put_block(D, C, _distances(XC, ops))  # its flagged pairs are settled in there
            settle_directly[c] = False
    ops.settle_pairs(D, X, sq, kappa, labels, settle_directly, pairs)
    return D


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    """Dense Euclidean distance matrix of a point cloud, every entry within ``REL_ERROR``.

    Parameters
    ----------
    X : np.ndarray, float64, shape (n_points, n_features)
        Validated point cloud (see :func:`reptopo.topology._validation.as_points`).

    Returns
    -------
    np.ndarray, float64, shape (n_points, n_points)
        Distances in the units of ``X``, exactly symmetric, exact zeros on the diagonal. Peak
        memory is this one matrix plus O(n_points * n_features), plus the flagged pairs (none
        or a few per point on ordinary clouds) and the sub-blocks rebuilt for far clusters.
    """
    return _distances(X, _NumpyOps)


def pairwise_distances_torch(X):
    """Torch twin of :func:`pairwise_distances` (same steps, runs on ``X.device``).

    Parameters
    ----------
    X : torch.Tensor, float64, shape (n_points, n_features)

    Returns
    -------
    torch.Tensor, float64, shape (n_points, n_points), on ``X.device``
        Exactly symmetric (a GEMM ``A @ A.T`` need not be, unlike numpy's syrk; Borůvka's
        tie-breaking relies on ``D[i, j] == D[j, i]``). Unlike the numba path, the flagged
        pairs are listed (16 bytes each, on the host) to find their components.
    """
    # Symmetrised last: the GEMM and the two broadcast additions ((g + a) + b != (g + b) + a)
    # both round asymmetrically.
    return symmetrize_upper_(_distances(X, _TorchOps))


def symmetrize_upper_(D, block_rows: int = 1024):
    """In place: copy the upper triangle of the square torch tensor ``D`` onto its lower one.

    Works in blocks of ``block_rows`` rows, so the only temporary is one diagonal block, never a
    second N x N matrix. Returns ``D``.
    """
    import torch

    n = D.shape[0]
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        # Rows start:stop, columns < start: disjoint from their source, rows < start.
        D[start:stop, :start] = D[:start, start:stop].T
        diag = D[start:stop, start:stop]
        diag.copy_(torch.triu(diag) + torch.triu(diag, diagonal=1).T)
    return D


def edge_lengths(X: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact Euclidean lengths ``||X[i] - X[j]||`` of a list of edges.

    Parameters
    ----------
    X : np.ndarray, float64, shape (n_points, n_features)
    i, j : np.ndarray of int, shape (n_edges,)

    Returns
    -------
    np.ndarray, float64, shape (n_edges,)
    """
    diff = X[i] - X[j]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))
