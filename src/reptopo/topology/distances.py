"""Euclidean distances: one GEMM-based dense matrix, plus exact lengths for a few chosen pairs.

The dense matrix uses ``||x - y||^2 = ||x||^2 + ||y||^2 - 2 <x, y>`` so that almost all the work is
one matrix product (BLAS on CPU, cuBLAS on GPU). That identity loses relative precision for
points much closer to each other than to the origin, so (i) points are centred first, which
shrinks the norms, and (ii) callers that need exact lengths (the MST edges) recompute them
directly as ``||x_i - x_j||`` with :func:`edge_lengths`.
"""

from __future__ import annotations

import numpy as np

from ._jit import compiled

__all__ = ["pairwise_distances", "pairwise_distances_torch", "symmetrize_upper_", "edge_lengths"]


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    """Dense Euclidean distance matrix of a point cloud, built in place from one GEMM.

    Parameters
    ----------
    X : np.ndarray, float64, shape (n_points, n_features)
        Validated point cloud (see :func:`reptopo.topology._validation.as_points`).

    Returns
    -------
    np.ndarray, float64, shape (n_points, n_points)
        Distances in the units of ``X``; exact zeros on the diagonal, negatives from rounding
        clamped to 0. Peak memory is this one matrix plus O(n_points * n_features).
    """
    Xc = X - X.mean(axis=0)  # translation-invariant; smaller norms mean less cancellation
    sq = np.einsum("ij,ij->i", Xc, Xc)
    G = Xc @ Xc.T  # the only n x n allocation (numpy uses syrk for A @ A.T); the rest is in place
    kernel = _gram_kernel()
    if kernel is not None:
        kernel(G, sq)  # one fused pass instead of five full-matrix numpy passes
        return G
    G *= -2.0
    G += sq[:, None]
    G += sq[None, :]
    np.maximum(G, 0.0, out=G)
    np.sqrt(G, out=G)
    np.fill_diagonal(G, 0.0)
    return G


def _gram_to_distances_py(G, sq):  # pragma: no cover - compiled by numba
    """In place: G[i, j] <- sqrt(max(sq[i] + sq[j] - 2 G[i, j], 0)), zero diagonal."""
    n = G.shape[0]
    for i in range(n):
        for j in range(n):
            v = sq[i] + sq[j] - 2.0 * G[i, j]
            G[i, j] = np.sqrt(v) if v > 0.0 else 0.0
        G[i, i] = 0.0


def _gram_kernel():
    """numba-compiled :func:`_gram_to_distances_py`; None without numba."""
    return compiled(_gram_to_distances_py)


def pairwise_distances_torch(X):
    """Torch twin of :func:`pairwise_distances` (same formula, runs on ``X.device``).

    Parameters
    ----------
    X : torch.Tensor, float64, shape (n_points, n_features)

    Returns
    -------
    torch.Tensor, float64, shape (n_points, n_points), on ``X.device``
        Exactly symmetric (a GEMM ``A @ A.T`` need not be, unlike numpy's syrk; Borůvka's
        tie-breaking relies on ``D[i, j] == D[j, i]``).
    """
    Xc = X - X.mean(dim=0)
    sq = (Xc * Xc).sum(dim=1)
    D = Xc @ Xc.T
    D.mul_(-2.0)
    D.add_(sq[:, None])
    D.add_(sq[None, :])
    D.clamp_(min=0.0)
    D.sqrt_()
    D.fill_diagonal_(0.0)
    # Last: the GEMM and the two broadcast additions ((g + a) + b != (g + b) + a) both round
    # asymmetrically.
    return symmetrize_upper_(D)


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
