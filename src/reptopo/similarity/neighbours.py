"""k-nearest-neighbour overlap between two representations of the same objects (the measure of
Valeriani et al. 2023 and Cheng et al. 2025 for the geometry of layers in large transformers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reptopo.topology._validation import as_points, check_int
from reptopo.topology.distances import pairwise_distances

from ._checks import MIN_POINTS, paired

__all__ = ["neighbour_overlap", "neighbour_overlap_matrix"]

# Rows per block when neighbours are sorted (a block x n temporary).
_ROWS = 1024


def _knn(X: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each point's k nearest other points, nearest first; ties broken by the
    smaller index (a stable sort of exact distances), so the sets are reproducible."""
    D = pairwise_distances(X)
    np.fill_diagonal(D, np.inf)
    out = np.empty((D.shape[0], k), dtype=np.intp)
    for start in range(0, D.shape[0], _ROWS):
        block = D[start : start + _ROWS]
        rows = np.arange(block.shape[0])[:, None]
        part = np.argpartition(block, k - 1, axis=1)[:, :k]  # the k smallest, in no order: O(n) a row
        kth = block[rows, part].max(axis=1, keepdims=True)
        # Where the k-th distance ties with a point left out, argpartition chose among the tied;
        # those rows (rare: duplicates, grids) are sorted whole, so the smaller index wins.
        tied = np.flatnonzero((block <= kth).sum(axis=1) > k)
        order = np.lexsort((part, block[rows, part]))  # by distance, then index
        part = part[rows, order]
        if tied.size:
            part[tied] = np.argsort(block[tied], axis=1, kind="stable")[:, :k]
        out[start : start + _ROWS] = part
    return out


def neighbour_overlap(X: Any, Y: Any = None, *, k: int = 10, labels: Any = None) -> float:
    """Mean fraction of each object's k nearest neighbours in X that are also among its k nearest
    neighbours in Y, or, with ``labels`` instead of Y, that share its label.

    Parameters
    ----------
    X : array-like, shape (n, p)
    Y : array-like, shape (n, q), optional
        The same objects in another representation (row i is object i).
    k : int, 1 <= k < n, default 10
    labels : array-like, shape (n,), optional
        Class labels: the neighbourhood of object i in "Y" is then every other object of its
        class (the overlap is the k-NN label agreement of X).

    Returns
    -------
    float
        In [0, 1]; 1 for identical neighbourhoods. For unrelated representations it is about
        k / (n - 1) (with labels: about the fraction of same-class pairs).
    """
    if (Y is None) == (labels is None):
        raise ValueError("give exactly one of Y (another representation) or labels")
    if labels is None:
        X, Y = paired(X, Y)
    else:
        X = as_points(X, min_points=MIN_POINTS)
        labels = np.asarray(labels)
        if labels.shape != (X.shape[0],):
            raise ValueError(f"labels has shape {labels.shape}; expected ({X.shape[0]},), one per point of X")
        if labels.dtype.kind == "f" and np.isnan(labels).any():
            raise ValueError(f"labels has {int(np.isnan(labels).sum())} NaN value(s); every point needs a class")
    n = X.shape[0]
    k = check_int(k, "k", 1)
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of points ({n})")
    nx = _knn(X, k)
    if labels is not None:
        return float(np.mean(labels[nx] == labels[:, None]))
    return _overlap(nx, _knn(Y, k))


def _overlap(nx: np.ndarray, ny: np.ndarray) -> float:
    """Mean fraction of shared entries between the rows of two (n, k) neighbour-index arrays."""
    n, k = nx.shape
    rows = np.arange(n)[:, None]
    shared = 0
    for start in range(0, n, _ROWS):  # membership of Y's neighbours, one block of rows at a time
        block = slice(start, min(start + _ROWS, n))
        member = np.zeros((block.stop - block.start, n), dtype=bool)
        member[rows[block] - start, ny[block]] = True
        shared += int(member[rows[block] - start, nx[block]].sum())
    return shared / (n * k)


def neighbour_overlap_matrix(layers_a, layers_b=None, *, k: int = 10) -> np.ndarray:
    """:func:`neighbour_overlap` between every layer of one run and every layer of another.

    Parameters
    ----------
    layers_a, layers_b : sequences of array-like, each (n, p_i); ``layers_b`` defaults to ``layers_a``
    k : int, 1 <= k < n

    Returns
    -------
    np.ndarray, float64, shape (len(layers_a), len(layers_b)); each layer's neighbours are found once.
    """
    same = layers_b is None
    layers_b = layers_a if same else layers_b
    if not len(layers_a) or not len(layers_b):
        raise ValueError("neighbour_overlap_matrix needs at least one layer on each side")
    first = as_points(layers_a[0], min_points=MIN_POINTS)
    n = first.shape[0]
    k = check_int(k, "k", 1)
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of points ({n})")
    knn_a = [_knn(paired(A, first)[0], k) for A in layers_a]
    knn_b = knn_a if same else [_knn(paired(B, first)[0], k) for B in layers_b]
    return np.array([[_overlap(a, b) for b in knn_b] for a in knn_a])
