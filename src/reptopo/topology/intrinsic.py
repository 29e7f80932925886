"""Nearest-neighbour intrinsic-dimension estimates (TwoNN, MLE) via scikit-dimension.

Reported beside PHdim as a cross-check (Ansuini et al. 2019 use TwoNN layer by layer).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._validation import as_points, check_int

__all__ = ["intrinsic_dimension"]


def intrinsic_dimension(
    X: Any,
    method: str = "twonn",
    *,
    n_neighbors: int = 20,
    discard_fraction: float = 0.1,
    deduplicate: bool = True,
) -> float:
    """Intrinsic dimension of a point cloud by TwoNN or by maximum likelihood.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
    method : {"twonn", "mle"}
        ``"twonn"``: ``skdim.id.TwoNN(discard_fraction)`` (Facco et al. 2017, ratio of the 2nd to
        the 1st neighbour distance, the largest ``discard_fraction`` of ratios dropped).
        ``"mle"``: ``skdim.id.MLE()`` with ``n_neighbors`` neighbours (Levina & Bickel 2005,
        pointwise estimates combined by the harmonic mean of MacKay & Ghahramani).
    n_neighbors : int >= 2, default 20
        Neighbours per point for ``"mle"`` (ignored by TwoNN).
    discard_fraction : float in [0, 1), default 0.1
        TwoNN only.
    deduplicate : bool, default True
        Drop repeated points first: both estimators divide by nearest-neighbour distances, which
        are 0 for duplicates.

    Returns
    -------
    float
        Estimated dimension (dimensionless).
    """
    X = as_points(X, min_points=3)
    if method not in ("twonn", "mle"):
        raise ValueError(f'method must be "twonn" or "mle", got {method!r}')
    if deduplicate:
        X = np.unique(X, axis=0)
    if X.shape[0] < 3:
        raise ValueError(f"intrinsic_dimension needs at least 3 distinct points, got {X.shape[0]}")
    if X.shape[1] == 1:
        # skdim requires 2 features; a zero column leaves every distance unchanged.
        X = np.hstack([X, np.zeros_like(X)])

    import skdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skdim warns on clipped n_neighbors; we clip ourselves
        if method == "twonn":
            discard_fraction = float(discard_fraction)
            if not 0.0 <= discard_fraction < 1.0:
                raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
            est = skdim.id.TwoNN(discard_fraction=discard_fraction).fit(X)
        else:
            n_neighbors = min(check_int(n_neighbors, "n_neighbors", 2), X.shape[0] - 1)
            est = skdim.id.MLE().fit(X, n_neighbors=n_neighbors)
    return float(est.dimension_)
