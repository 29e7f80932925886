"""Vietoris–Rips persistence diagrams (H0: exact MST; H1+: giotto-ph) and Betti curves."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._budget import check_algorithm, check_memory_limit, choose_algorithm
from ._validation import as_input, check_int, resolve_device
from .mst import _TreeEngine

__all__ = ["persistence_diagrams", "betti_curves", "knn_betti_numbers", "filtration_grid", "max_finite_death"]


def _h0_diagram(lengths: np.ndarray) -> np.ndarray:
    """H0 diagram from MST edge lengths: (0, w) per edge with w > 0, then one (0, inf) bar.

    Zero-length bars (duplicate points) are omitted, as ripser and giotto-ph omit every bar with
    death == birth; they carry no persistence and no Betti-curve mass.
    """
    deaths = np.sort(lengths[lengths > 0])
    dgm = np.zeros((deaths.size + 1, 2), dtype=np.float64)
    dgm[:-1, 1] = deaths
    dgm[-1, 1] = np.inf
    return dgm


# Distances giotto-ph's float32 represents with full precision, with margin (float32: ~1.2e-38 to 3.4e38).
_F32_SAFE_MIN, _F32_SAFE_MAX = 1e-30, 1e30


def _sorted_bars(dgm: np.ndarray) -> np.ndarray:
    """float64 copy of a giotto-ph diagram sorted by (birth, death), so multi-threaded runs
    give identical arrays."""
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    order = np.lexsort((dgm[:, 1], dgm[:, 0]))
    return np.ascontiguousarray(dgm[order])


def _diagrams(
    X: np.ndarray,
    maxdim: int,
    metric: str,
    n_threads: int,
    engine: str,
    algorithm: str = "auto",
    memory_limit: int | None = None,
) -> list[np.ndarray]:
    """:func:`persistence_diagrams` on validated input (no checks repeated)."""
    if maxdim >= 1 or metric == "precomputed":
        if algorithm == "tiled":
            raise ValueError(
                'algorithm="tiled" computes H0 only (maxdim=0) from points: H1 and above, and a '
                'precomputed matrix, need the dense matrix (algorithm="dense" or "auto")'
            )
        algorithm = "dense"
    algorithm = choose_algorithm(algorithm, X.shape[0], engine, memory_limit)
    eng = _TreeEngine.from_input(X, metric, engine, algorithm)
    _, _, lengths = eng.tree()
    dgms = [_h0_diagram(lengths)]
    if maxdim == 0:
        return dgms
    n = X.shape[0]
    if n < 3:  # no 1-simplex cycles (nor higher) on fewer than 3 points
        return dgms + [np.empty((0, 2), dtype=np.float64) for _ in range(maxdim)]
    import gph

    # One GEMM distance matrix serves both engines: giotto-ph from points would build its own.
    # giotto-ph reads the upper triangle and works in float32 internally, which holds only about
    # [1e-38, 1e38]: a matrix near those limits goes in scaled to unit diameter and the bars come
    # back in the input's units (Vietoris-Rips diagrams are scale-equivariant); others as they are.
    D = eng.dense_numpy()
    diameter = float(D.max())
    positive = D[D > 0]
    smallest = float(positive.min()) if positive.size else diameter
    scale = diameter if diameter > 0 and (diameter > _F32_SAFE_MAX or smallest < _F32_SAFE_MIN) else 1.0
    res = gph.ripser_parallel(D / scale if scale != 1.0 else D, maxdim=maxdim, metric="precomputed",
                              n_threads=n_threads)
    return dgms + [_sorted_bars(d) * scale for d in res["dgms"][1 : maxdim + 1]]


def persistence_diagrams(
    X: Any,
    maxdim: int = 1,
    *,
    metric: str = "euclidean",
    n_threads: int = -1,
    device: str = "auto",
    algorithm: str = "auto",
    memory_limit: float | None = None,
) -> list[np.ndarray]:
    """Persistence diagrams of the full Vietoris–Rips filtration of a point cloud (no threshold).

    H0 comes from the exact Euclidean minimum spanning tree (deaths are the exact edge lengths
    ``||x_i - x_j||`` in float64); H1 and above come from giotto-ph (``gph.ripser_parallel``, on
    ``n_threads`` cores, fed the same GEMM distance matrix as the MST; its values are float32
    rounded, returned as float64).

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        Point cloud, in any units; or, with ``metric="precomputed"``, a symmetric
        (n_points, n_points) distance matrix with zero diagonal.
    maxdim : int, default 1
        Highest homology dimension computed.
    metric : {"euclidean", "precomputed"}
    n_threads : int, default -1
        Threads for giotto-ph in dimensions >= 1 (-1: all cores).
    device : {"auto", "cpu", "torch-cpu", "cuda"}
        Engine for the distance matrix and the MST (H1+ always runs on CPU in giotto-ph).
    algorithm : {"auto", "dense", "tiled"}
        H0's engine (see :func:`~.mst.mst_edges`); "tiled" (no N x N matrix) needs
        ``maxdim=0``, and "auto" is dense whenever H1+ is asked for.
    memory_limit : float, optional
        Bytes "auto" may spend on the matrix (default: half of the memory available).

    Returns
    -------
    list of np.ndarray, float64
        ``maxdim + 1`` arrays; entry k has shape (n_k, 2) with rows (birth, death) in the units of
        ``X``. Infinite deaths are ``np.inf`` (exactly one in H0, as the Rips complex ends
        connected). Bars with death == birth are omitted, as in ripser and giotto-ph. H0 rows are
        sorted by death (the infinite bar last); higher dimensions by (birth, death).
    """
    maxdim = check_int(maxdim, "maxdim", 0)
    n_threads = check_int(n_threads, "n_threads", -1)
    if n_threads == 0:
        raise ValueError("n_threads must be -1 (all cores) or >= 1, got 0")
    X = as_input(X, metric, min_points=1)
    check_algorithm(algorithm)
    return _diagrams(X, maxdim, metric, n_threads, resolve_device(device), algorithm,
                     check_memory_limit(memory_limit))


def _check_diagrams(diagrams: Any) -> list[np.ndarray]:
    if isinstance(diagrams, np.ndarray) and diagrams.ndim == 2:
        raise ValueError("diagrams must be a list of (n_k, 2) arrays, one per homology dimension")
    out = []
    for k, d in enumerate(diagrams):
        arr = np.asarray(d, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"diagrams[{k}] must have shape (n_bars, 2), got {arr.shape}")
        if np.isnan(arr).any():
            raise ValueError(f"diagrams[{k}] contains NaN")
        reversed_bars = int((arr[:, 0] > arr[:, 1]).sum())
        if reversed_bars:
            raise ValueError(f"diagrams[{k}] has {reversed_bars} bar(s) with birth > death; expected birth <= death")
        out.append(arr)
    if not out:
        raise ValueError("diagrams is empty: expected one array per homology dimension")
    return out


def betti_curves(diagrams: Sequence[Any], grid: Any) -> np.ndarray:
    """Betti curves: the number of bars alive at each filtration value of ``grid``.

    Convention: a bar (b, d) is alive at eps when ``b <= eps < d`` (closed at birth, open at
    death, as for the half-open intervals [b, d) of persistent homology). An infinite bar is alive
    for every eps >= b; a zero-length bar is never alive.

    Parameters
    ----------
    diagrams : sequence of array-like, each (n_k, 2)
        Output of :func:`persistence_diagrams` (dimension k = position in the list).
    grid : array-like, shape (n_grid,)
        Filtration values, in the units of the diagrams (need not be sorted). Use one grid per run
        (e.g. :func:`filtration_grid`) so curves compare across layers and models.

    Returns
    -------
    np.ndarray of int64, shape (len(diagrams), n_grid)
        ``out[k, i]`` = beta_k(grid[i]).
    """
    dgms = _check_diagrams(diagrams)
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1:
        raise ValueError(f"grid must be 1-D, got shape {grid.shape}")
    if np.isnan(grid).any():
        raise ValueError("grid contains NaN")
    out = np.empty((len(dgms), grid.size), dtype=np.int64)
    for k, dgm in enumerate(dgms):
        births = np.sort(dgm[:, 0])
        deaths = np.sort(dgm[:, 1])
        # #{b <= eps} - #{d <= eps} counts b <= eps < d, since every bar has b <= d.
        born = np.searchsorted(births, grid, side="right")
        dead = np.searchsorted(deaths, grid, side="right")
        out[k] = born - dead
    return out


def max_finite_death(diagrams: Sequence[Any]) -> float:
    """Largest finite death over all dimensions of a list of diagrams (0.0 if there is none)."""
    dgms = _check_diagrams(diagrams)
    deaths = [d[np.isfinite(d[:, 1]), 1] for d in dgms]
    deaths = np.concatenate(deaths) if deaths else np.empty(0)
    return float(deaths.max()) if deaths.size else 0.0


def filtration_grid(max_value: float, n_steps: int = 100) -> np.ndarray:
    """Evenly spaced filtration values ``linspace(0, max_value, n_steps)`` for :func:`betti_curves`.

    Pick ``max_value`` once per run (e.g. the largest :func:`max_finite_death` over all layers,
    or sqrt(n_features) for MinMax-scaled data, the diameter of the unit cube) so that curves
    share one axis.

    Returns
    -------
    np.ndarray, float64, shape (n_steps,)
    """
    n_steps = check_int(n_steps, "n_steps", 2)
    max_value = float(max_value)
    if not np.isfinite(max_value) or max_value <= 0:
        raise ValueError(f"max_value must be finite and > 0, got {max_value}")
    return np.linspace(0.0, max_value, n_steps)


def knn_betti_numbers(X: Any, k: int = 12, maxdim: int = 1, min_hops: int = 2, n_threads: int = -1) -> np.ndarray:
    """Betti numbers of a point cloud read off its k-nearest-neighbour graph (Naitzat et al.).

    The symmetrized k-NN graph gives a hop metric (shortest-path edge counts); the result counts
    the bars of its Vietoris–Rips persistence that are born by 1 hop (the graph's clique complex)
    and are still alive after ``min_hops`` hops. beta_0 is the number of connected components of
    the graph; a loop must survive ``min_hops`` hops to count, which removes the tiny cycles that
    sampling noise leaves in a clique complex. A graph adapts to the local density, so clouds of
    any size, units and density (layers of a network) compare. With ``k=12`` and 750 points per
    class, Naitzat et al.'s D-I/D-II/D-III classes give their documented Betti numbers
    (tests/test_synthetic.py).

    Parameters
    ----------
    X : array-like, shape (n_points, n_features), n_points > k
    k : int >= 1, neighbours per point; maxdim : 0 or 1; min_hops : int >= 1

    Returns
    -------
    np.ndarray, int64, shape (maxdim + 1,)
    """
    X = as_input(X, "euclidean", min_points=2)
    k = check_int(k, "k", 1)
    maxdim = check_int(maxdim, "maxdim", 0)
    if maxdim > 1:
        # The born-by-one-hop rule misses classes born later (a 2-sphere's H2 is born at 2 hops).
        raise ValueError(f"knn_betti_numbers is defined for maxdim 0 and 1 only, got maxdim={maxdim}")
    min_hops = check_int(min_hops, "min_hops", 1)
    if X.shape[0] <= k:
        raise ValueError(f"knn_betti_numbers needs more than k={k} points, got {X.shape[0]}")
    import gph
    from scipy.sparse.csgraph import shortest_path
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(X, k, mode="connectivity", include_self=False)
    hops = shortest_path(graph.maximum(graph.T), method="D", unweighted=True, directed=False)
    finite = np.isfinite(hops)
    # Separate components never merge: put them further apart than any path inside one.
    hops[~finite] = hops[finite].max() + min_hops + 2
    dgms = gph.ripser_parallel(hops, maxdim=maxdim, metric="precomputed", n_threads=n_threads)["dgms"]
    return np.array([int(np.sum((d[:, 0] <= 1) & (d[:, 1] > min_hops))) for d in dgms], dtype=np.int64)
