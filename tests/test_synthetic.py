"""Naitzat et al.'s D-I / D-II / D-III have the documented per-class Betti numbers."""
from __future__ import annotations

import numpy as np
import pytest

from reptopo.errors import ReptopoError
from reptopo.synthetic import BETTI, SCALE, generate
from reptopo.topology import persistence_diagrams


def betti_at(dgms, eps: float) -> tuple[int, ...]:
    """Bars alive at Rips scale eps (birth <= eps < death), per homology dimension."""
    return tuple(int(np.sum((d[:, 0] <= eps) & (d[:, 1] > eps))) for d in dgms)


@pytest.mark.parametrize("name, n", [("d1", 1200), ("d2", 1800), ("d3", 900)])
def test_per_class_betti_numbers(name, n):
    x, y = generate(name, n, seed=0)
    assert x.shape == (n, 2 if name == "d1" else 3) and np.bincount(y).tolist() == [n // 2, n - n // 2]
    for c in (0, 1):
        dgms = persistence_diagrams(x[y == c], maxdim=1, n_threads=2)
        assert betti_at(dgms, SCALE[name]) == BETTI[name][c], (name, c)


def test_seeded_and_reproducible():
    a, _ = generate("d3", 100, seed=4)
    b, _ = generate("d3", 100, seed=4)
    c, _ = generate("d3", 100, seed=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ReptopoError, match="data.generator='d4' is unknown"):
        generate("d4", 10)
