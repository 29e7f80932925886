"""PHdim: the 0-dimensional persistent-homology fractal dimension of a point cloud.

For subsample sizes n = n_start, n_start + n_step, ... (while n < N), E(n) is the sum over the
finite H0 bars of a random n-point subsample of (death - birth) ** alpha, i.e. the alpha-weighted
length of its Euclidean minimum spanning tree. Fitting ``log E(n) = slope * log n + intercept``
gives ``PHdim = alpha / (1 - slope)`` (E_alpha(n) ~ n^((d - alpha) / d) on a d-dimensional set;
Schweinhart; Adams et al.; Birdal et al.).

Speed: one GEMM distance matrix of all N points is shared by every subsample, and each E(n) is a
dense O(n^2) MST on the sub-block (Prim on CPU, Borůvka on torch/CUDA; the block is read in
place, never copied), with the n - 1 tree edges then recomputed exactly as ``||x_i - x_j||``.
At most one N x N matrix exists per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._budget import check_algorithm, check_memory_limit, choose_algorithm
from ._validation import as_points, check_alpha, check_int, resolve_device
from .mst import _TreeEngine

__all__ = ["PHDimResult", "phdim", "phdim_sizes", "phdim_log_sizes", "phdim_subsample_indices"]


@dataclass(frozen=True, eq=False)
class PHDimResult:
    """Result of :func:`phdim`. Arrays are read-only.

    Attributes
    ----------
    dim : float
        ``alpha / (1 - slope)``; ``inf`` if ``slope >= 1``.
    sizes : np.ndarray of int64, shape (n_sizes,)
        Subsample sizes n.
    E : np.ndarray of float64, shape (n_sizes, n_repeats)
        ``E[s, r]`` = sum of finite H0 bar lengths ** alpha of repeat r at size ``sizes[s]``
        (units of X ** alpha; no 0.5 factor).
    slope, intercept : float
        Least squares fit of ``mean_r log E[s, r]`` on ``log sizes[s]`` (natural logs). The mean is
        over log E (a geometric mean of E), so ``slope`` is also the mean of the per-repeat slopes.
    dims_per_repeat : np.ndarray of float64, shape (n_repeats,)
        ``alpha / (1 - slope_r)`` from the fit on repeat r alone.
    dim_std : float
        Sample standard deviation (ddof=1) of ``dims_per_repeat``; 0.0 when ``n_repeats == 1``.
    alpha : float
    n_repeats : int
    seed : int or None
    engine : str
        ``"numpy"``, ``"torch-cpu"`` or ``"cuda[:N]"``: where distances and the trees ran.
    algorithm : str
        ``"dense"``: one N x N matrix shared by every subsample; ``"tiled"``: no N x N matrix,
        each subsample's tree on its own (dense when its n x n block fits, else tiled).
    """

    dim: float
    sizes: np.ndarray
    E: np.ndarray
    slope: float
    intercept: float
    dims_per_repeat: np.ndarray
    dim_std: float
    alpha: float
    n_repeats: int
    seed: int | None
    engine: str
    algorithm: str = "dense"


def phdim_sizes(n_points: int, n_start: int = 500, n_step: int = 350) -> np.ndarray:
    """Subsample sizes ``n_start, n_start + n_step, ...`` strictly below ``n_points``.

    Returns
    -------
    np.ndarray of int64, shape (n_sizes,) (empty when ``n_points <= n_start``).
    """
    n_points = check_int(n_points, "n_points", 0)
    n_start = check_int(n_start, "n_start", 2)
    n_step = check_int(n_step, "n_step", 1)
    return np.arange(n_start, n_points, n_step, dtype=np.int64)


def phdim_log_sizes(n_min: int, n_max: int, num: int) -> np.ndarray:
    """About ``num`` log-spaced subsample sizes from ``n_min`` to ``n_max`` (both included),
    rounded to integers, duplicates dropped: for large N, where the protocol's arithmetic
    sizes would be hundreds of steps of 350.

    Returns
    -------
    np.ndarray of int64, shape (<= num,), strictly increasing.
    """
    n_min = check_int(n_min, "n_min", 2)
    n_max = check_int(n_max, "n_max", n_min + 1)
    num = check_int(num, "num", 2)
    return np.unique(np.rint(np.geomspace(n_min, n_max, num)).astype(np.int64))


def check_sizes(sizes: Any, n_points: int) -> np.ndarray:
    """Validate explicit subsample sizes: integers, strictly increasing, at least two, each in
    [2, n_points]. Returns them as an int64 array."""
    try:
        arr = np.asarray(sizes)
    except Exception:  # noqa: BLE001 - reported below
        arr = np.asarray([], dtype=object)
    if arr.ndim != 1 or arr.size < 2 or arr.dtype.kind not in "iu" and not (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.rint(arr))
    ):
        raise ValueError(f"sizes must be a list of at least two integers, got {sizes!r}")
    arr = arr.astype(np.int64)
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"sizes must be strictly increasing, got {arr.tolist()}")
    if arr[0] < 2 or arr[-1] > n_points:
        raise ValueError(
            f"sizes must lie in [2, n_points={n_points}] (a subsample has at least 2 points and "
            f"at most all of X), got {arr[0]}..{arr[-1]}"
        )
    return arr


def phdim_subsample_indices(
    n_points: int, sizes: Any, n_repeats: int = 1, seed: int | None = 0
) -> list[list[np.ndarray]]:
    """The subsamples :func:`phdim` uses, in the order it draws them.

    ``rng = np.random.default_rng(seed)``; then for each size (outer loop, in order) and each
    repeat (inner loop): ``rng.choice(n_points, n, replace=False)``.

    Returns
    -------
    list (per size) of list (per repeat) of np.ndarray of int64, shape (n,)
        Row indices into X, in the order drawn.
    """
    n_repeats = check_int(n_repeats, "n_repeats", 1)
    rng = np.random.default_rng(seed)
    out = []
    for n in np.asarray(sizes, dtype=np.int64):
        if not 1 <= n <= n_points:
            raise ValueError(f"subsample size {n} is outside [1, n_points={n_points}]")
        out.append([rng.choice(n_points, int(n), replace=False) for _ in range(n_repeats)])
    return out


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares line y = slope * x + intercept, for each column of y (shape (n, k))."""
    xc = x - x.mean()
    slope = xc @ (y - y.mean(axis=0)) / (xc @ xc)
    intercept = y.mean(axis=0) - slope * x.mean()
    return slope, intercept


def _dim_from_slope(alpha: float, slope: np.ndarray) -> np.ndarray:
    slope = np.asarray(slope, dtype=np.float64)
    with np.errstate(divide="ignore"):
        dim = np.where(slope < 1.0, alpha / np.where(slope < 1.0, 1.0 - slope, 1.0), np.inf)
    return dim


def phdim(
    X: Any,
    n_start: int = 500,
    n_step: int = 350,
    alpha: float = 1.0,
    n_repeats: int = 1,
    seed: int | None = 0,
    device: str = "auto",
    *,
    sizes: Any = None,
    algorithm: str = "auto",
    memory_limit: float | None = None,
) -> PHDimResult:
    """0-dimensional persistent-homology fractal dimension (PHdim) of a point cloud.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (N, n_features)
        Raw representations (no scaling is applied; the paper pools all classes, N = 3000).
    n_start : int >= 2, default 500
        First subsample size.
    n_step : int >= 1, default 350
        Step between sizes; sizes are ``n_start + i * n_step < N`` (at least two are needed).
    alpha : float > 0, default 1
        Exponent of the H0 bar lengths.
    n_repeats : int >= 1, default 1
        Independent subsamples per size (the paper: 1).
    seed : int or None, default 0
        Seed of the subsampling; see :func:`phdim_subsample_indices` for the exact draw order.
    device : {"auto", "cpu", "torch-cpu", "cuda"}
        ``"auto"``: CUDA (torch) when available, else the CPU (numpy/numba) engine. Results agree
        to float tolerance across engines (E(n) uses exact float64 edge lengths in every case).
    sizes : sequence of int, optional
        Explicit subsample sizes (strictly increasing, at least two, each in [2, N]), e.g.
        :func:`phdim_log_sizes`; ``n_start`` and ``n_step`` are then unused. Default: the
        protocol's ``n_start, n_start + n_step, ... < N``.
    algorithm : {"auto", "dense", "tiled"}
        "dense": one N x N matrix for all subsamples (8 N^2 bytes); "tiled": none, each
        subsample's tree on its own (its n x n block when that fits, else the tiled engine).
        "auto": dense while the N x N matrix fits in ``memory_limit``. Same E(n) either way.
    memory_limit : float, optional
        Bytes the matrices may take; default half of the memory available now.

    Returns
    -------
    PHDimResult

    Notes
    -----
    With ``alpha = 1`` this is the authors' ``PHdim``: their code fits ``log(0.5 * E)``, which
    only moves the intercept, and computes ``alpha / (alpha - slope)``, which equals
    ``alpha / (1 - slope)`` only for ``alpha = 1``; we use the latter (the correct exponent for
    any alpha).
    """
    X = as_points(X, min_points=1)
    n_start = check_int(n_start, "n_start", 2)
    n_step = check_int(n_step, "n_step", 1)
    alpha = check_alpha(alpha)
    n_repeats = check_int(n_repeats, "n_repeats", 1)
    engine = resolve_device(device)
    check_algorithm(algorithm)
    memory_limit = check_memory_limit(memory_limit)
    N = X.shape[0]
    if sizes is not None:
        sizes = check_sizes(sizes, N)
    elif N <= n_start:
        raise ValueError(
            f"X has {N} points, but phdim needs more than n_start={n_start} "
            f"(subsample sizes n_start, n_start + n_step, ... must stay below N)"
        )
    if sizes is None:
        sizes = phdim_sizes(N, n_start, n_step)
    if sizes.size < 2:
        raise ValueError(
            f"X has {N} points: with n_start={n_start} and n_step={n_step} there is only one "
            f"subsample size ({sizes.tolist()}), and the log-log fit needs at least two; "
            f"lower n_start or n_step"
        )
    if not np.any(X != X[0]):
        raise ValueError(
            f"all {N} points of X are identical: every E(n) = 0, so log E(n) and PHdim are "
            f"undefined"
        )

    shared = choose_algorithm(algorithm, N, engine, memory_limit, many_trees=True)
    eng = _TreeEngine(X, None, engine) if shared == "dense" else None
    subsamples = phdim_subsample_indices(N, sizes, n_repeats, seed)
    E = np.empty((sizes.size, n_repeats), dtype=np.float64)
    for s, per_size in enumerate(subsamples):
        for r, idx in enumerate(per_size):
            # Sorted rows make the row reads cache-friendly; the tree does not depend on order.
            idx = np.sort(idx)
            if shared == "dense":
                _, _, lengths = eng.tree(idx)
            else:  # no N x N matrix: this subsample's own n x n block if it fits, else tiles
                own = "tiled" if algorithm == "tiled" else choose_algorithm("auto", idx.size, engine, memory_limit)
                _, _, lengths = _TreeEngine(X[idx], None, engine, own).tree()
            E[s, r] = np.sum(lengths**alpha)
    del eng  # release the N x N matrix before fitting

    if np.any(E <= 0):
        s, r = np.argwhere(E <= 0)[0]
        n_distinct = np.unique(X, axis=0).shape[0]
        raise ValueError(
            f"E(n) = 0 for a subsample of n={sizes[s]} points (repeat {r}): all its points are "
            f"identical (X has only {n_distinct} distinct points among {N}), so log E(n) is "
            f"undefined"
        )
    x = np.log(sizes.astype(np.float64))
    logE = np.log(E)
    slope, intercept = _ols(x, logE.mean(axis=1, keepdims=True))
    slopes_r, _ = _ols(x, logE)
    dims_r = _dim_from_slope(alpha, slopes_r)
    dim_std = float(np.std(dims_r, ddof=1)) if n_repeats > 1 else 0.0
    for arr in (sizes, E, dims_r):
        arr.flags.writeable = False
    return PHDimResult(
        dim=float(_dim_from_slope(alpha, slope[0])),
        sizes=sizes,
        E=E,
        slope=float(slope[0]),
        intercept=float(intercept[0]),
        dims_per_repeat=dims_r,
        dim_std=dim_std,
        alpha=alpha,
        n_repeats=n_repeats,
        seed=seed,
        engine=engine,
        algorithm=shared,
    )
