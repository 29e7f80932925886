"""Nearest-neighbour intrinsic-dimension estimates (TwoNN, MLE, GRIDE) via scikit-dimension.

Reported beside PHdim as a cross-check (Ansuini et al. 2019 use TwoNN layer by layer).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ._validation import as_points, check_int

__all__ = ["intrinsic_dimension", "intrinsic_dimensions", "gride_profile"]

METHODS = ("twonn", "mle", "gride")
# Up to this many distinct points TwoNN and MLE read their neighbours off one exact distance matrix
# (8 n^2 bytes: 512 MiB here), shared by both; beyond it scikit-dimension's own search does.
_DENSE_KNN_MAX = 8192


def intrinsic_dimension(
    X: Any,
    method: str = "twonn",
    *,
    n_neighbors: int = 20,
    discard_fraction: float = 0.1,
    deduplicate: bool = True,
    n1: int = 4,
) -> float:
    """Intrinsic dimension of a point cloud by TwoNN, maximum likelihood or GRIDE.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
    method : {"twonn", "mle", "gride"}
        ``"twonn"``: ``skdim.id.TwoNN(discard_fraction)`` (Facco et al. 2017, ratio of the 2nd to
        the 1st neighbour distance, the largest ``discard_fraction`` of ratios dropped).
        ``"mle"``: ``skdim.id.MLE()`` with ``n_neighbors`` neighbours (Levina & Bickel 2005,
        pointwise estimates combined by the harmonic mean of MacKay & Ghahramani).
        ``"gride"``: ``skdim.id.GRIDE(n1, 2 * n1)`` (Denti et al. 2022): the likelihood of the
        ratio of the (2 n1)-th to the n1-th neighbour distance. A larger ``n1`` probes a larger
        scale, less sensitive to short-scale noise than TwoNN (which is GRIDE at n1 = 1); see
        :func:`gride_profile` for the estimate across scales.
    n_neighbors : int >= 2, default 20
        Neighbours per point for ``"mle"`` (ignored by TwoNN).
    discard_fraction : float in [0, 1), default 0.1
        TwoNN only.
    n1 : int >= 1, default 4
        GRIDE only: the order of the nearer neighbour (the scale).
    deduplicate : bool, default True
        Drop repeated points first: both estimators divide by nearest-neighbour distances, which
        are 0 for duplicates.

    Returns
    -------
    float
        Estimated dimension (dimensionless).
    """
    return intrinsic_dimensions(X, (method,), n_neighbors=n_neighbors, discard_fraction=discard_fraction,
                                deduplicate=deduplicate, n1=n1)[method]


def intrinsic_dimensions(
    X: Any,
    methods: Sequence[str] = ("twonn", "mle"),
    *,
    n_neighbors: int = 20,
    discard_fraction: float = 0.1,
    deduplicate: bool = True,
    n1: int = 4,
) -> dict[str, float]:
    """:func:`intrinsic_dimension` by each of ``methods`` at once: ``{method: dimension}``.

    TwoNN and MLE read their nearest neighbours off one exact distance matrix (shared; up to 8192
    distinct points, beyond which scikit-dimension searches itself), which is what the homology
    stage asks for on every layer; the estimators are scikit-dimension's, given those neighbours.
    The numbers equal scikit-dimension's own to rounding (its neighbour search computes the same
    Euclidean distances another way). Parameters as in :func:`intrinsic_dimension`.
    """
    methods = tuple(methods)
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not methods:
        return {}
    X = as_points(X, min_points=3)
    if deduplicate:
        X = np.unique(X, axis=0)
    if X.shape[0] < 3:
        raise ValueError(f"intrinsic_dimension needs at least 3 distinct points, got {X.shape[0]}")
    if X.shape[1] == 1:
        # skdim requires 2 features; a zero column leaves every distance unchanged.
        X = np.hstack([X, np.zeros_like(X)])

    import skdim

    n_neighbors = min(check_int(n_neighbors, "n_neighbors", 2), X.shape[0] - 1)
    discard_fraction = float(discard_fraction)
    if "twonn" in methods and not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    knn = None
    if X.shape[0] <= _DENSE_KNN_MAX and {"twonn", "mle"} & set(methods):
        knn = _nearest_neighbours(X, max(2, n_neighbors if "mle" in methods else 2))
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skdim warns on clipped n_neighbors; we clip ourselves
        for method in methods:
            if method == "twonn":
                if knn is None:
                    est = skdim.id.TwoNN(discard_fraction=discard_fraction).fit(X)
                else:  # (r1, r2): the distances to the first and second neighbour
                    est = skdim.id.TwoNN(discard_fraction=discard_fraction, dist=True).fit(knn[0][:, :2])
            elif method == "gride":
                n1 = check_int(n1, "n1", 1)
                if 2 * n1 >= X.shape[0]:
                    raise ValueError(f"GRIDE with n1={n1} needs more than {2 * n1} distinct points, got {X.shape[0]}")
                est = skdim.id.GRIDE(n1=n1, n2=2 * n1).fit(X)
            elif knn is None:
                est = skdim.id.MLE().fit(X, n_neighbors=n_neighbors)
            else:
                est = skdim.id.MLE().fit(X, precomputed_knn_arrays=(knn[0][:, :n_neighbors], knn[1][:, :n_neighbors]))
            out[method] = float(est.dimension_)
    return out


def _nearest_neighbours(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest other points: (distances, indices), both (n, k), nearest first
    (ties by the smaller index), from the exact distance matrix (``distances.pairwise_distances``)."""
    from .distances import pairwise_distances

    D = pairwise_distances(X)
    np.fill_diagonal(D, np.inf)
    part = np.argpartition(D, k - 1, axis=1)[:, :k]
    rows = np.arange(D.shape[0])[:, None]
    order = np.lexsort((part, D[rows, part]))  # by distance, then index
    idx = part[rows, order]
    return D[rows, idx], idx


def gride_profile(X: Any, range_max: int = 64) -> dict[str, np.ndarray]:
    """GRIDE's intrinsic dimension across scales (Denti et al. 2022), via scikit-dimension.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        Duplicates are dropped first, as in :func:`intrinsic_dimension`.
    range_max : int >= 2, default 64
        Largest neighbour order: scales n1 = 1, 2, 4, ... with n2 = 2 n1 <= range_max.

    Returns
    -------
    dict of np.ndarray, each (n_scales,)
        ``scale`` (n1), ``dimension``, ``error`` (standard error from the Fisher information) and
        ``radius`` (mean distance to the n2-th neighbour, in the units of X: the length scale
        each estimate refers to). A plateau over scales is the estimate to trust.
    """
    X = np.unique(as_points(X, min_points=3), axis=0)
    range_max = check_int(range_max, "range_max", 2)
    if X.shape[0] < 4:
        raise ValueError(f"gride_profile needs at least 4 distinct points, got {X.shape[0]}")
    if X.shape[1] == 1:
        X = np.hstack([X, np.zeros_like(X)])
    import skdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = skdim.id.GRIDE(multiscale=True, range_max=min(range_max, X.shape[0] - 1)).fit(X)
    return {"scale": np.asarray(est.scales_), "dimension": np.asarray(est.dimension_scales_, dtype=np.float64),
            "error": np.asarray(est.error_scales_, dtype=np.float64),
            "radius": np.asarray(est.radius_scales_, dtype=np.float64)}
