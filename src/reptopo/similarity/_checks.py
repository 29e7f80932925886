"""Input checks shared by :mod:`reptopo.similarity` (one ValueError naming the problem)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reptopo.topology._validation import as_points

MIN_POINTS = 4


def paired(X: Any, Y: Any, min_points: int = MIN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Two representations of the same objects: float64 (n, p) and (n, q), finite, n >= 4."""
    X = as_points(X, name="X", min_points=1)
    Y = as_points(Y, name="Y", min_points=1)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} points and Y {Y.shape[0]}: a comparison needs the same "
                         "objects in both, row by row")
    if X.shape[0] < min_points:
        raise ValueError(f"X and Y have {X.shape[0]} points; a comparison needs at least {min_points}")
    return X, Y
