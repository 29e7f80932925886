"""Naitzat et al.'s D-I / D-II / D-III have the documented per-class Betti numbers."""
from __future__ import annotations

import numpy as np
import pytest

from reptopo.runtime.errors import ReptopoError
from reptopo.datasets.synthetic import BETTI, SCALE, generate
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


@pytest.mark.parametrize("name", ["d1", "d2", "d3"])
def test_knn_graph_betti_numbers_of_inputs(name):
    """The per-class measure the Naitzat experiment uses (12-NN graph, loops alive after 2 hops)
    gives the documented Betti numbers on the input sets, 750 points per class."""
    from reptopo.topology import knn_betti_numbers

    x, y = generate(name, 1510, seed=0)
    for c in (0, 1):
        assert tuple(knn_betti_numbers(x[y == c][:750], k=12, n_threads=2)) == BETTI[name][c], (name, c)


def test_knn_graph_betti_numbers_known_shapes_and_errors():
    from reptopo.topology import knn_betti_numbers

    rng = np.random.default_rng(0)
    t = rng.random(600) * 2 * np.pi
    circle = np.stack([np.cos(t), np.sin(t)], 1) + rng.normal(0, 0.02, (600, 2))
    blobs = np.concatenate([rng.normal(size=(100, 3)) * 0.05 + c for c in ([0, 0, 0], [5, 0, 0], [0, 5, 0])])
    assert knn_betti_numbers(circle).tolist() == [1, 1]
    assert knn_betti_numbers(blobs).tolist() == [3, 0]
    # Units do not matter: the graph only sees neighbour order.
    assert knn_betti_numbers(circle * 1e4).tolist() == [1, 1]
    with pytest.raises(ValueError, match="more than k=12 points"):
        knn_betti_numbers(circle[:10], k=12)
