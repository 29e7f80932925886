"""Distances between persistence diagrams, through giotto-tda: the one module of reptopo that
imports it (giotto-tda 0.6.2's metadata pins scikit-learn 1.3.2 and so numpy < 2; installed
without its dependencies, its diagram distances run on numpy 2 and scikit-learn up to 1.7).

Diagrams are reptopo's: per homology dimension a (m, 2) array of (birth, death) bars, as
:func:`reptopo.topology.persistence_diagrams` returns them. Infinite bars are dropped first: every
Vietoris-Rips diagram has exactly one (the H0 class of the whole cloud), so it carries no
difference, and the distances are defined on finite bars.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

__all__ = ["diagram_distance", "diagram_distance_matrix"]

METRICS = ("wasserstein", "bottleneck")
# hera's relative error bound (giotto-tda's default 0.01; it refuses 0): 1e-7 keeps the distances
# within 1e-7 relative of an exact assignment at a small cost for reptopo's diagram sizes.
_DELTA = 1e-7


def _finite_bars(dgm: Any, name: str) -> np.ndarray:
    arr = np.asarray(dgm, dtype=np.float64)
    if arr.size == 0:
        return np.empty((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} has shape {arr.shape}; expected (m, 2) bars (birth, death)")
    if np.isnan(arr).any() or not np.isfinite(arr[:, 0]).all():
        raise ValueError(f"{name} has NaN or infinite births")
    arr = arr[np.isfinite(arr[:, 1])]
    if np.any(arr[:, 1] < arr[:, 0]):
        raise ValueError(f"{name} has {int(np.sum(arr[:, 1] < arr[:, 0]))} bar(s) with death < birth")
    return arr


def _is_per_dimension(dgm: Any) -> bool:
    """A list of per-dimension diagrams (each 2-D), as opposed to one diagram given as nested lists."""
    return isinstance(dgm, (list, tuple)) and len(dgm) > 0 and all(np.ndim(d) == 2 for d in dgm)


def _as_per_dimension(dgm: Any, name: str) -> list[np.ndarray]:
    """A diagram or a list of per-dimension diagrams -> list of (m_k, 2) finite arrays."""
    if _is_per_dimension(dgm):
        return [_finite_bars(d, f"{name}[{k}]") for k, d in enumerate(dgm)]
    return [_finite_bars(dgm, name)]


def _gtda_input(diagrams: list[list[np.ndarray]]) -> np.ndarray:
    """giotto-tda's (n_diagrams, n_points, 3) array of (birth, death, dimension) triples.

    giotto-tda wants the same number of triples of each dimension in every diagram, so dimension
    k gets one block of width max_m_k + 1 (at least one point, so giotto-tda sees the dimension),
    filled with the diagram's bars and then (0, 0, k) points: diagonal points cost nothing to match.
    """
    n_dims = len(diagrams[0])
    widths = [max(len(per[k]) for per in diagrams) + 1 for k in range(n_dims)]
    out = np.zeros((len(diagrams), sum(widths), 3))
    for s, per in enumerate(diagrams):
        start = 0
        for k, (d, w) in enumerate(zip(per, widths)):
            out[s, start : start + len(d), :2] = d
            out[s, start : start + w, 2] = k
            start += w
    return out


def _pairwise(diagrams: list[list[np.ndarray]], metric: str, p: float, n_a: int | None = None) -> np.ndarray:
    """(n, n, n_dims) distances between all ``diagrams``; with ``n_a``, only those between the
    first ``n_a`` and the rest, (n_a, n - n_a, n_dims)."""
    if metric not in METRICS:
        raise ValueError(f'metric must be one of {", ".join(METRICS)}; got {metric!r}')
    from gtda.diagrams import PairwiseDistance

    params = {"p": float(p), "delta": _DELTA} if metric == "wasserstein" else {"delta": _DELTA}
    dist = PairwiseDistance(metric=metric, metric_params=params, order=None, n_jobs=1)
    X = _gtda_input(diagrams)  # one padding width for both sides
    with warnings.catch_warnings():
        # giotto-tda 0.6.2 calls scikit-learn's check_array with force_all_finite, renamed in 1.6
        # (a FutureWarning per call; it stops working in 1.8, hence scikit-learn < 1.8).
        warnings.filterwarnings("ignore", message=".*force_all_finite.*", category=FutureWarning)
        if n_a is None:
            return dist.fit_transform(X)
        # fit on B, transform A: giotto-tda's (n_a, n_b, n_dims) cross distances, no within-run pairs.
        return dist.fit(X[n_a:]).transform(X[:n_a])


def diagram_distance(dgm_a: Any, dgm_b: Any, metric: str = "wasserstein", *, p: float = 2.0):
    """Wasserstein-p or bottleneck distance between two persistence diagrams.

    Parameters
    ----------
    dgm_a, dgm_b : array-like (m, 2), or lists of them (one per homology dimension)
        Bars (birth, death); infinite deaths are dropped.
    metric : {"wasserstein", "bottleneck"}
        giotto-tda's ``PairwiseDistance`` (hera) with a relative error bound ``delta=1e-7``.
    p : float >= 1, default 2
        Wasserstein order (ignored by the bottleneck distance, the p = inf limit).

    Returns
    -------
    float, or np.ndarray (n_dims,) for lists
        In the units of the diagrams (filtration values).
    """
    a, b = _as_per_dimension(dgm_a, "dgm_a"), _as_per_dimension(dgm_b, "dgm_b")
    if len(a) != len(b):
        raise ValueError(f"dgm_a has {len(a)} homology dimensions and dgm_b {len(b)}")
    d = _pairwise([a, b], metric, p)[0, 1]
    return d.astype(np.float64) if _is_per_dimension(dgm_a) else float(d[0])


def diagram_distance_matrix(diagrams: Sequence[Any], metric: str = "wasserstein", *, p: float = 2.0,
                            diagrams_b: Sequence[Any] | None = None) -> np.ndarray:
    """Distances between every pair of diagrams of one run (layer x layer), per homology dimension,
    or, with ``diagrams_b``, between each diagram of ``diagrams`` and each of ``diagrams_b``.

    Parameters
    ----------
    diagrams : sequence of L diagrams (each a list of per-dimension (m, 2) arrays, or one array)
    metric, p : as in :func:`diagram_distance`
    diagrams_b : sequence of L_b diagrams, optional (another run's layers)

    Returns
    -------
    np.ndarray, float64, shape (n_dims, L, L)
        Symmetric with a zero diagonal; shape (n_dims, L, L_b) with ``diagrams_b`` (only the cross
        pairs are computed).
    """
    per = [_as_per_dimension(d, f"diagrams[{i}]") for i, d in enumerate(diagrams)]
    per_b = [] if diagrams_b is None else [_as_per_dimension(d, f"diagrams_b[{i}]") for i, d in enumerate(diagrams_b)]
    if diagrams_b is None and len(per) < 2:
        raise ValueError("diagram_distance_matrix needs at least two diagrams")
    if diagrams_b is not None and not (per and per_b):
        raise ValueError("diagram_distance_matrix needs at least one diagram on each side")
    if len({len(d) for d in per + per_b}) != 1:
        raise ValueError("the diagrams have different numbers of homology dimensions")
    if diagrams_b is None:
        return np.moveaxis(_pairwise(per, metric, p), 2, 0).astype(np.float64)
    return np.moveaxis(_pairwise(per + per_b, metric, p, n_a=len(per)), 2, 0).astype(np.float64)
