"""The paper's topological descriptor: lifespans sums L_k, global and per class ("local").

    L_k(X) = sum over FINITE bars (b, d) of PH_k(VR(X)) of 0.5 * (d - b) ** alpha

on the MinMax-scaled sample (Magai & Ayzenberg; the 0.5 factor is the authors', so total
persistence is 2 * L_k). Local mode averages L_k over classes, each capped at ``max_per_class``
points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import (
    _is_torch_tensor,
    as_points,
    check_alpha,
    check_dims,
    check_int,
    resolve_device,
)
from ._budget import choose_algorithm
from .mst import _TreeEngine
from .persistence import _diagrams

__all__ = ["minmax_scale", "lifespans_from_diagrams", "lifespans_sum", "lifespans_sum_per_class"]


def minmax_scale(X: Any) -> np.ndarray:
    """Scale each feature of the whole sample to [0, 1], as ``sklearn.preprocessing.MinMaxScaler``.

    Same arithmetic as scikit-learn (``X * scale + min``), so results agree bit for bit; a feature
    whose range is below 10 * machine epsilon (a constant feature) maps to 0.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)

    Returns
    -------
    np.ndarray, float64, shape (n_points, n_features), values in [0, 1].
    """
    return _minmax(as_points(X))


def _minmax(X: np.ndarray) -> np.ndarray:
    data_min = X.min(axis=0)
    data_range = X.max(axis=0) - data_min
    # sklearn's _handle_zeros_in_scale: near-zero ranges count as constant features.
    data_range[data_range < 10 * np.finfo(np.float64).eps] = 1.0
    scale = 1.0 / data_range
    offset = -data_min * scale
    out = X * scale
    out += offset
    return out


def lifespans_from_diagrams(
    diagrams: list[np.ndarray], dims: Any, alpha: float = 1.0
) -> np.ndarray:
    """L_k = sum over finite bars of 0.5 * (d - b) ** alpha, for each k in ``dims``.

    Parameters
    ----------
    diagrams : list of (n_k, 2) float arrays (output of :func:`persistence_diagrams`)
    dims : sequence of int
    alpha : float > 0

    Returns
    -------
    np.ndarray, float64, shape (len(dims),), in the units of the diagrams ** alpha.
    """
    alpha = check_alpha(alpha)
    out = np.empty(len(dims), dtype=np.float64)
    for t, k in enumerate(dims):
        dgm = np.asarray(diagrams[k], dtype=np.float64).reshape(-1, 2)
        finite = np.isfinite(dgm[:, 1])
        out[t] = 0.5 * np.sum((dgm[finite, 1] - dgm[finite, 0]) ** alpha)
    return out


def _lifespans_cloud(
    X: np.ndarray, dims: tuple[int, ...], alpha: float, n_threads: int, engine: str
) -> np.ndarray:
    """L_k of one validated cloud for every k in ``dims`` from one diagram computation."""
    if max(dims) == 0:
        # H0 only: the MST edge lengths are the finite bars; no giotto-ph call needed.
        algorithm = choose_algorithm("auto", X.shape[0], engine)
        _, _, lengths = _TreeEngine(X, None, engine, algorithm).tree()
        return np.array([0.5 * np.sum(lengths**alpha)])
    dgms = _diagrams(X, max(dims), "euclidean", n_threads, engine)
    return lifespans_from_diagrams(dgms, dims, alpha)


def _check_common(X, dim, alpha, scale, n_threads, device):
    X = as_points(X, min_points=1)
    dims, scalar = check_dims(dim)
    alpha = check_alpha(alpha)
    if scale not in ("minmax", None):
        raise ValueError(f'scale must be "minmax" or None, got {scale!r}')
    n_threads = check_int(n_threads, "n_threads", -1)
    if n_threads == 0:
        raise ValueError("n_threads must be -1 (all cores) or >= 1, got 0")
    engine = resolve_device(device)
    if scale == "minmax":
        X = _minmax(X)
    return X, dims, scalar, alpha, n_threads, engine


def _class_members(
    labels: Any,
    n_points: int,
    max_per_class: int | None,
    class_subsample: str,
    seed: int | None,
    skip_last_class: bool,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted class values and, for each, the (sorted) row indices used for it."""
    if _is_torch_tensor(labels):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1:
        labels = labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.shape[0] != n_points:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but X has {n_points} points; they must match"
        )
    if labels.dtype == object:
        missing = sum(v is None or (isinstance(v, float) and np.isnan(v)) for v in labels)
    else:
        missing = int(np.isnan(labels).sum()) if labels.dtype.kind == "f" else 0
    if missing:  # NaN would be a class of its own that selects no rows, and its L = 0 would count
        raise ValueError(f"labels has {missing} missing value(s) (NaN or None); every point needs a class")
    if max_per_class is not None:
        max_per_class = check_int(max_per_class, "max_per_class", 1)
    if class_subsample not in ("first", "random"):
        raise ValueError(f'class_subsample must be "first" or "random", got {class_subsample!r}')
    classes = np.unique(labels)
    if skip_last_class:
        if classes.size < 2:
            raise ValueError("skip_last_class=True needs at least 2 classes")
        classes = classes[:-1]
    rng = np.random.default_rng(seed)
    members = []
    for c in classes:
        rows = np.flatnonzero(labels == c)
        if max_per_class is not None and rows.size > max_per_class:
            if class_subsample == "first":
                rows = rows[:max_per_class]
            else:
                rows = np.sort(rng.choice(rows, max_per_class, replace=False))
        members.append(rows)
    return classes, members


def lifespans_sum_per_class(
    X: Any,
    dim: Any,
    alpha: float = 1.0,
    labels: Any = None,
    max_per_class: int | None = 250,
    scale: str | None = "minmax",
    seed: int | None = 0,
    *,
    class_subsample: str = "first",
    skip_last_class: bool = False,
    n_threads: int = -1,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class lifespans sums L_k (the terms that :func:`lifespans_sum` averages in local mode).

    Parameters are those of :func:`lifespans_sum`; ``labels`` is required here.

    Returns
    -------
    classes : np.ndarray, shape (n_classes,)
        Sorted class values used (the last one dropped when ``skip_last_class``).
    values : np.ndarray, float64, shape (n_classes,) if ``dim`` is an int, else
        (n_classes, len(dim)); ``values[c, t]`` = L_{dim[t]} of class ``classes[c]``.
    """
    if labels is None:
        raise ValueError("lifespans_sum_per_class needs labels (one per point of X)")
    X, dims, scalar, alpha, n_threads, engine = _check_common(
        X, dim, alpha, scale, n_threads, device
    )
    classes, members = _class_members(
        labels, X.shape[0], max_per_class, class_subsample, seed, bool(skip_last_class)
    )
    values = np.stack(
        [_lifespans_cloud(X[rows], dims, alpha, n_threads, engine) for rows in members]
    )
    return classes, (values[:, 0] if scalar else values)


def lifespans_sum(
    X: Any,
    dim: Any,
    alpha: float = 1.0,
    labels: Any = None,
    max_per_class: int | None = 250,
    scale: str | None = "minmax",
    seed: int | None = 0,
    *,
    class_subsample: str = "first",
    skip_last_class: bool = False,
    n_threads: int = -1,
    device: str = "auto",
) -> float | np.ndarray:
    """The paper's topological descriptor L_k, global or averaged over classes (local).

    ``L_k = sum over finite bars (b, d) of PH_k(VR) of 0.5 * (d - b) ** alpha``.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
        One layer's representations of the whole sample.
    dim : int or sequence of int
        Homology dimension(s) k. A sequence computes all of them from one diagram per cloud.
    alpha : float > 0, default 1
        Exponent of the bar lengths.
    labels : array-like, shape (n_points,), optional
        Class of each point. ``None``: global mode (L_k of the whole cloud, no subsampling).
        Given: local mode (mean over classes of per-class L_k).
    max_per_class : int or None, default 250
        Local mode: at most this many points per class (``None``: all).
    scale : {"minmax", None}, default "minmax"
        ``"minmax"`` scales the WHOLE sample per feature to [0, 1] (see :func:`minmax_scale`)
        before any class split, as the authors do; ``None`` uses raw values.
    seed : int or None, default 0
        Seed of the random class subsample (only used with ``class_subsample="random"``).
    class_subsample : {"first", "random"}, default "first"
        ``"first"``: the first ``max_per_class`` points of each class in sample order (the
        authors' code). ``"random"``: a uniform random subset (``np.random.default_rng(seed)``,
        classes in sorted order), kept in sample order.
    skip_last_class : bool, default False
        Compatibility switch: drop the last class (in sorted order) from the average, reproducing
        the authors' loop ``for n_class in range(0, 9)`` on 10 classes. Off by default.
    n_threads : int, default -1
        giotto-ph threads for dimensions >= 1.
    device : {"auto", "cpu", "torch-cpu", "cuda"}
        Engine for distances and the MST.

    Returns
    -------
    float if ``dim`` is an int, else np.ndarray of shape (len(dim),): in units of the (scaled)
    data ** alpha.

    Notes
    -----
    The authors also round each per-class value to 3 decimals before averaging; we do not.
    """
    if labels is None:
        X, dims, scalar, alpha, n_threads, engine = _check_common(
            X, dim, alpha, scale, n_threads, device
        )
        values = _lifespans_cloud(X, dims, alpha, n_threads, engine)
    else:
        _, per_class = lifespans_sum_per_class(
            X,
            dim,
            alpha,
            labels,
            max_per_class,
            scale,
            seed,
            class_subsample=class_subsample,
            skip_last_class=skip_last_class,
            n_threads=n_threads,
            device=device,
        )
        scalar = per_class.ndim == 1
        values = np.atleast_1d(per_class.mean(axis=0))
    return float(values[0]) if scalar else values
