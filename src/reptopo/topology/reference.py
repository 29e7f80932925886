"""Reference implementations the engine is checked and benchmarked against (not used by it).

``authors_phdim`` follows the authors' procedure (Magai & Ayzenberg's public code): ripser's H0
on every subsample, 0.5 * sum of finite lifespans ** alpha, scikit-learn's LinearRegression of
log E on log n, and d = alpha / (alpha - slope).
"""
from __future__ import annotations

import numpy as np


def authors_phdim(X: np.ndarray, subsamples, alpha: float = 1.0) -> tuple[float, np.ndarray]:
    """PHdim by the authors' procedure on the given subsamples (index arrays into ``X``).

    Returns (dimension, E) with E (len(subsamples),) the per-subsample sums (with the 0.5 factor).
    """
    import ripser
    from sklearn.linear_model import LinearRegression

    n_array, E_array = [], []
    for idx in subsamples:
        dgm = ripser.ripser(X[idx], maxdim=0)["dgms"][0]
        fin = dgm[np.isfinite(dgm[:, 1])]
        E_array.append(np.sum(0.5 * (fin[:, 1] - fin[:, 0]) ** alpha))
        n_array.append(len(idx))
    model = LinearRegression().fit(np.log(np.array(n_array).reshape(-1, 1)), np.log(E_array))
    return float(alpha / (alpha - model.coef_[0])), np.array(E_array)
