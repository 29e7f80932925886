"""Linear centred kernel alignment (CKA) between representations of the same n objects.

``CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with the linear kernels ``K = X X^T`` and
``L = Y Y^T`` (Kornblith et al., ICML 2019). It is invariant to orthogonal transforms, isotropic
scaling and translation of either side, and is 1 when Y is such a transform of X.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from reptopo.topology._validation import as_points
from reptopo.topology.distances import gram

from ._checks import MIN_POINTS, paired

__all__ = ["linear_cka", "cka_matrix"]


class _Centred:
    """One representation, centred, with what every HSIC term needs: the squared row norms and,
    made on demand for wide layers (p > n), the Gram matrix."""

    def __init__(self, X: np.ndarray, name: str):
        self.Xc = X - X.mean(axis=0)
        if not np.any(self.Xc):
            raise ValueError(f"{name} has zero variance (all its points are identical): CKA is undefined")
        self.sq = np.einsum("ij,ij->i", self.Xc, self.Xc)
        self._gram = None

    def gram(self) -> np.ndarray:
        if self._gram is None:
            self._gram = gram(self.Xc)  # never one syrk at large n (an OpenBLAS crash)
        return self._gram


def _hsic(a: _Centred, b: _Centred, debiased: bool) -> float:
    """HSIC of the linear kernels of two centred representations, up to a constant factor.

    ``<K, L>_F = ||Xc' Yc||_F^2``, in feature space (n p q) unless both layers are wide, then
    from the Gram matrices (n^2 per pair). ``debiased``: Song et al.'s unbiased estimator,
    ``tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2 / (n-2) 1'K~L~1`` with zero-diagonal K~, L~;
    for centred X, ``K~ 1 = -sq_x``, so every term is a function of ``<K, L>`` and the norms.
    """
    n = a.Xc.shape[0]
    if a.Xc.shape[1] * b.Xc.shape[1] <= n * n:
        kl = float(np.sum((a.Xc.T @ b.Xc) ** 2))
    else:
        kl = float(np.vdot(a.gram(), b.gram()))
    if not debiased:
        return kl
    ss = float(a.sq @ b.sq)
    return kl - ss + a.sq.sum() * b.sq.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ss


def _cka(a: _Centred, b: _Centred, debiased: bool, self_a: float, self_b: float) -> float:
    if self_a <= 0 or self_b <= 0:
        raise ValueError("the debiased HSIC of a representation with itself is <= 0 (too few distinct points)")
    return _hsic(a, b, debiased) / np.sqrt(self_a * self_b)


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
    a, b = _Centred(X, "X"), _Centred(Y, "Y")
    return float(_cka(a, b, debiased, _hsic(a, a, debiased), _hsic(b, b, debiased)))


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
        ``[i, j] = linear_cka(layers_a[i], layers_b[j], debiased)``. Each layer is centred once,
        with its self-HSIC; a pair then costs one (p_i x q_j) cross-covariance (n p_i q_j flops;
        Gram matrices only for layers wider than n).
    """
    same = layers_b is None
    layers_b = layers_a if same else layers_b
    if not len(layers_a) or not len(layers_b):
        raise ValueError("cka_matrix needs at least one layer on each side")
    first = as_points(layers_a[0], name="layers_a[0]", min_points=MIN_POINTS)
    ca = [_Centred(paired(A, first)[0], f"layers_a[{i}]") for i, A in enumerate(layers_a)]
    cb = ca if same else [_Centred(paired(B, first)[0], f"layers_b[{j}]") for j, B in enumerate(layers_b)]
    self_a = [_hsic(c, c, debiased) for c in ca]
    self_b = self_a if same else [_hsic(c, c, debiased) for c in cb]
    out = np.empty((len(ca), len(cb)))
    for i, a in enumerate(ca):
        for j, b in enumerate(cb):
            if same and j < i:
                out[i, j] = out[j, i]  # exactly symmetric
            else:
                out[i, j] = _cka(a, b, debiased, self_a[i], self_b[j])
    return out
