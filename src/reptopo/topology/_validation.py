"""Input checks shared by the public entry points of :mod:`reptopo.topology`.

Every public function validates its inputs once, here, and raises ``ValueError`` with a message
that names the argument and the problem; the private engines downstream assume clean input.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "as_points",
    "as_distance_matrix",
    "as_input",
    "check_alpha",
    "check_int",
    "check_dims",
    "resolve_device",
]


def _is_torch_tensor(x: Any) -> bool:
    # Avoid importing torch just to check a type: numpy-only callers never pay for it.
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _to_float64(X: Any, name: str) -> np.ndarray:
    complex_input = X.is_complex() if _is_torch_tensor(X) else np.iscomplexobj(X)
    if complex_input:  # numpy would drop the imaginary part with only a warning
        raise ValueError(f"{name} is complex; expected real numbers (take .real or abs() first)")
    if _is_torch_tensor(X):
        # .double() first: numpy has no bfloat16, and we want float64 anyway.
        X = X.detach().cpu().double().numpy()
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(X).__name__}: {exc}") from exc
    return arr


# Largest |coordinate| accepted: squared distances (up to (2 * 1e150)^2 * n_features) must stay
# below float64's ~1.8e308 for any realistic feature count.
_MAX_COORDINATE = 1e150
# Smallest non-zero extent accepted: below it squared distances underflow float64 (~1e-308), so
# distinct points would look identical.
_MIN_EXTENT = 1e-150


def _check_finite(arr: np.ndarray, name: str) -> None:
    if np.isfinite(arr).all():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    raise ValueError(
        f"{name} contains non-finite values: {n_nan} NaN and {n_inf} inf "
        f"out of {arr.size} entries (shape {arr.shape})"
    )


def as_points(X: Any, name: str = "X", min_points: int = 1) -> np.ndarray:
    """Validate a point cloud and return it as a C-contiguous float64 array.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (n_points, n_features)
    name : str
        Name used in error messages.
    min_points : int
        Minimum number of rows required.

    Returns
    -------
    np.ndarray, float64, shape (n_points, n_features)
    """
    arr = _to_float64(X, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_points, n_features), "
            f"got a {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name} needs at least {min_points} points, got {arr.shape[0]}")
    _check_finite(arr, name)
    largest = float(np.abs(arr).max())
    if largest > _MAX_COORDINATE:
        raise ValueError(
            f"{name} has coordinates up to {largest:.3g}: squared distances would overflow "
            f"float64 (limit {_MAX_COORDINATE:.0e}); rescale the points"
        )
    extent = float(np.ptp(arr, axis=0).max()) if arr.shape[0] else 0.0
    if 0.0 < extent < _MIN_EXTENT:
        raise ValueError(
            f"{name} spans only {extent:.3g} (largest coordinate range): squared distances would "
            f"underflow float64 (limit {_MIN_EXTENT:.0e}); rescale the points"
        )
    return np.ascontiguousarray(arr)


def as_distance_matrix(D: Any, name: str = "X") -> np.ndarray:
    """Validate a dense distance matrix (``metric="precomputed"``).

    Requirements: square, finite, non-negative, symmetric (to 1e-9 of the largest entry) and a
    zero diagonal (vertices are born at 0, which the MST formula for H0 assumes).

    Returns
    -------
    np.ndarray, float64, shape (n_points, n_points)
    """
    arr = _to_float64(D, name)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(
            f"{name} must be a square (n_points, n_points) distance matrix when "
            f'metric="precomputed", got shape {arr.shape}'
        )
    if arr.shape[0] < 1:
        raise ValueError(f"{name} is empty")
    _check_finite(arr, name)
    if (arr < 0).any():
        raise ValueError(f"{name} has {int((arr < 0).sum())} negative distances")
    if np.any(np.diagonal(arr) != 0):
        raise ValueError(
            f"{name} must have a zero diagonal (all points born at filtration value 0); "
            f"{int(np.count_nonzero(np.diagonal(arr)))} diagonal entries are non-zero"
        )
    scale = max(float(arr.max()), 1.0)
    if np.abs(arr - arr.T).max() > 1e-9 * scale:
        raise ValueError(f"{name} is not symmetric")
    return np.ascontiguousarray(arr)


def as_input(X: Any, metric: str, name: str = "X", min_points: int = 1) -> np.ndarray:
    """Dispatch to :func:`as_points` or :func:`as_distance_matrix` according to ``metric``."""
    if metric == "precomputed":
        arr = as_distance_matrix(X, name)
        if arr.shape[0] < min_points:
            raise ValueError(f"{name} needs at least {min_points} points, got {arr.shape[0]}")
        return arr
    if metric != "euclidean":
        raise ValueError(f'metric must be "euclidean" or "precomputed", got {metric!r}')
    return as_points(X, name, min_points)


def check_alpha(alpha: Any) -> float:
    """Return ``alpha`` as a float, requiring a finite value > 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"alpha must be a real number > 0, got {alpha!r}")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be finite and > 0, got {alpha}")
    return alpha


def check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int, requiring an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_dims(dim: Any) -> tuple[tuple[int, ...], bool]:
    """Normalise a homology dimension or sequence of them.

    Returns
    -------
    dims : tuple of int, each >= 0
    scalar : bool
        True when ``dim`` was a single integer (the caller then returns a float).
    """
    if isinstance(dim, numbers.Integral) and not isinstance(dim, bool):
        return (check_int(dim, "dim", 0),), True
    try:
        dims = tuple(dim)
    except TypeError:
        raise ValueError(f"dim must be an int or a sequence of ints, got {dim!r}") from None
    if not dims:
        raise ValueError("dim must not be an empty sequence")
    return tuple(check_int(d, "dim", 0) for d in dims), False


def resolve_device(device: str) -> str:
    """Map the user's ``device`` choice to an engine: ``"numpy"``, ``"torch-cpu"`` or ``"cuda"``.

    ``"auto"`` picks ``"cuda"`` when torch sees a GPU and the numpy engine otherwise; ``"cpu"`` is
    the numpy engine; ``"torch-cpu"`` runs the torch engine on CPU tensors (for testing it);
    ``"cuda"`` (or ``"cuda:N"``) forces the GPU and fails if there is none.
    """
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, got {device!r}")
    if device in ("cpu", "numpy"):
        return "numpy"
    if device == "torch-cpu":
        return "torch-cpu"
    if device == "auto":
        try:
            import torch
        except ImportError:  # torch is optional for the numpy engine
            return "numpy"
        return "cuda" if torch.cuda.is_available() else "numpy"
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but torch sees no CUDA device")
        return device
    raise ValueError(
        f'device must be "auto", "cpu", "torch-cpu" or "cuda[:N]", got {device!r}'
    )
