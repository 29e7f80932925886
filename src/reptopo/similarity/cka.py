"""Linear centred kernel alignment (CKA) between representations of the same n objects.

``CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with the linear kernels ``K = X X^T`` and
``L = Y Y^T`` (Kornblith et al., ICML 2019). It is invariant to orthogonal transforms, isotropic
scaling and translation of either side, and is 1 when Y is such a transform of X.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._checks import MIN_POINTS, paired

__all__ = ["linear_cka", "cka_matrix"]


def _hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """The unbiased HSIC estimator of Song et al. (2012), up to the constant 1 / (n (n - 3)).

    ``[tr(K~ L~) + (1' K~ 1)(1' L~ 1) / ((n - 1)(n - 2)) - 2 / (n - 2) 1' K~ L~ 1]``, with K~ and L~
    the Gram matrices with their diagonals set to 0.
    """
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    k1, l1 = Kt.sum(axis=1), Lt.sum(axis=1)
    return float(np.vdot(Kt, Lt) + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * k1 @ l1)


def linear_cka(X: Any, Y: Any, debiased: bool = False) -> float:
    """Linear CKA of two representations of the same objects.

    Parameters
    ----------
    X : array-like, shape (n, p)
    Y : array-like, shape (n, q)
        Row i of both is object i (the same sample through two layers or two models).
    debiased : bool, default False
        Use the unbiased HSIC estimator (Song et al. 2012), as Nguyen et al. (ICLR 2021) do: the
        plain estimator is biased upwards for n not much larger than p and q (independent
        clouds score well above 0); the debiased one is about 0 for them. It can be slightly
        negative.

    Returns
    -------
    float
        In [0, 1] (debiased: about [-1, 1]), dimensionless.
    """
    X, Y = paired(X, Y)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    for name, A in (("X", Xc), ("Y", Yc)):
        if not np.any(A):
            raise ValueError(f"{name} has zero variance (all its points are identical): CKA is undefined")
    if debiased:
        K, L = Xc @ Xc.T, Yc @ Yc.T
        kl, kk, ll = _hsic_unbiased(K, L), _hsic_unbiased(K, K), _hsic_unbiased(L, L)
        if kk <= 0 or ll <= 0:
            raise ValueError("the debiased HSIC of X or Y with itself is <= 0 (too few distinct points)")
        return kl / np.sqrt(kk * ll)
    n, p, q = X.shape[0], X.shape[1], Y.shape[1]
    if p * q <= n * n:  # feature space: ||Xc' Yc||_F^2 = tr(Kc Lc), without the n x n Grams
        xy = np.sum((Xc.T @ Yc) ** 2)
        return float(xy / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)))
    K, L = Xc @ Xc.T, Yc @ Yc.T
    return float(np.vdot(K, L) / (np.linalg.norm(K) * np.linalg.norm(L)))


def _unit_centred_gram(X: np.ndarray, debiased: bool) -> np.ndarray:
    """The centred linear Gram matrix of ``X``, flattened and scaled to unit Frobenius norm.

    ``debiased``: the unbiased centring (zero diagonal; Kornblith et al.'s ``center_gram`` with
    ``unbiased=True``), whose inner products are the unbiased HSIC up to a constant.
    """
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    if debiased:
        n = K.shape[0]
        np.fill_diagonal(K, 0.0)
        means = K.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        K -= means[:, None]
        K -= means[None, :]
        np.fill_diagonal(K, 0.0)
    norm = np.linalg.norm(K)
    if norm == 0:
        raise ValueError("a layer has zero variance (all its points are identical): CKA is undefined")
    return (K / norm).ravel()


def cka_matrix(layers_a: Sequence[Any], layers_b: Sequence[Any] | None = None, debiased: bool = False) -> np.ndarray:
    """Linear CKA between every layer of one run and every layer of another (or of itself).

    Parameters
    ----------
    layers_a : sequence of array-like, each (n, p_i)
    layers_b : sequence of array-like, each (n, q_j), optional
        Default: ``layers_a`` (a symmetric layer x layer matrix with ones on the diagonal).
    debiased : bool, default False
        As in :func:`linear_cka`.

    Returns
    -------
    np.ndarray, float64, shape (len(layers_a), len(layers_b))
        ``[i, j] = linear_cka(layers_a[i], layers_b[j], debiased)``. One centred Gram per layer,
        each n x n float64 (72 MB at n = 3000), reused for every pair; a pair then costs one
        inner product.
    """
    same = layers_b is None
    layers_b = layers_a if same else layers_b
    if not len(layers_a) or not len(layers_b):
        raise ValueError("cka_matrix needs at least one layer on each side")
    checked_a = [paired(A, layers_a[0])[0] for A in layers_a]
    checked_b = checked_a if same else [paired(B, layers_a[0])[0] for B in layers_b]
    if checked_a[0].shape[0] < MIN_POINTS:
        raise ValueError(f"the layers have {checked_a[0].shape[0]} points; CKA needs at least {MIN_POINTS}")
    Ga = np.stack([_unit_centred_gram(A, debiased) for A in checked_a])
    Gb = Ga if same else np.stack([_unit_centred_gram(B, debiased) for B in checked_b])
    out = Ga @ Gb.T
    if same:
        out = (out + out.T) / 2  # exactly symmetric
    return out
