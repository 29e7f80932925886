"""Distances between persistence diagrams, through giotto-tda: the one module of reptopo that
imports it (giotto-tda 0.6.2 pins scikit-learn 1.3.2 and so numpy < 2).

Diagrams are reptopo's: per homology dimension a (m, 2) array of (birth, death) bars, as
:func:`reptopo.topology.persistence_diagrams` returns them. Infinite bars are dropped first: every
Vietoris-Rips diagram has exactly one (the H0 class of the whole cloud), so it carries no
difference, and the distances are defined on finite bars.
"""

from __future__ import annotations

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

    Every diagram gets one (0, 0, k) point per dimension k, and shorter ones are padded with more:
    diagonal points cost nothing to match, and giotto-tda reads the dimensions off each sample.
    """
    n_dims = len(diagrams[0])
    width = max(sum(len(d) for d in per) for per in diagrams) + n_dims
    out = np.zeros((len(diagrams), width, 3))
    for s, per in enumerate(diagrams):
        rows = [np.column_stack([d, np.full(len(d), k)]) for k, d in enumerate(per)]
        rows.append(np.column_stack([np.zeros((n_dims, 2)), np.arange(n_dims)]))
        filled = np.vstack(rows)
        out[s, : len(filled)] = filled
        out[s, len(filled) :, 2] = n_dims - 1
    return out


def _pairwise(diagrams: list[list[np.ndarray]], metric: str, p: float) -> np.ndarray:
    if metric not in METRICS:
        raise ValueError(f'metric must be one of {", ".join(METRICS)}; got {metric!r}')
    from gtda.diagrams import PairwiseDistance

    params = {"p": float(p), "delta": _DELTA} if metric == "wasserstein" else {"delta": _DELTA}
    dist = PairwiseDistance(metric=metric, metric_params=params, order=None, n_jobs=1)
    return dist.fit_transform(_gtda_input(diagrams))  # (n, n, n_dims)


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


def diagram_distance_matrix(diagrams: Sequence[Any], metric: str = "wasserstein", *, p: float = 2.0) -> np.ndarray:
    """Distances between every pair of diagrams of one run (layer x layer), per homology dimension.

    Parameters
    ----------
    diagrams : sequence of L diagrams (each a list of per-dimension (m, 2) arrays, or one array)
    metric, p : as in :func:`diagram_distance`

    Returns
    -------
    np.ndarray, float64, shape (n_dims, L, L)
        Symmetric with a zero diagonal.
    """
    per = [_as_per_dimension(d, f"diagrams[{i}]") for i, d in enumerate(diagrams)]
    if len(per) < 2:
        raise ValueError("diagram_distance_matrix needs at least two diagrams")
    if len({len(d) for d in per}) != 1:
        raise ValueError("the diagrams have different numbers of homology dimensions")
    return np.moveaxis(_pairwise(per, metric, p), 2, 0).astype(np.float64)
