"""PHdim with explicit subsample sizes and without an N x N matrix."""
from __future__ import annotations

import numpy as np
import pytest

from reptopo import topology


def _cloud(n=1500, d=3, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, d))


def test_explicit_sizes_equal_to_the_protocol_give_the_protocol_result():
    X = _cloud()
    ref = topology.phdim(X, n_start=200, n_step=300, n_repeats=2, seed=3)
    own = topology.phdim(X, sizes=ref.sizes.tolist(), n_repeats=2, seed=3)
    np.testing.assert_array_equal(own.E, ref.E)
    assert own.dim == ref.dim


def test_log_spaced_sizes_and_a_uniform_cube_dimension():
    X = _cloud(3000, 3, seed=1)
    sizes = topology.phdim_log_sizes(200, 3000, 10)
    assert sizes[0] == 200 and sizes[-1] == 3000 and np.all(np.diff(sizes) > 0) and len(sizes) == 10
    res = topology.phdim(X, sizes=sizes, n_repeats=3)
    np.testing.assert_array_equal(res.sizes, sizes)
    assert 2.6 < res.dim < 3.4  # the cube is 3-dimensional


@pytest.mark.parametrize("how", [dict(algorithm="tiled"), dict(memory_limit=10**6)])
def test_without_the_shared_matrix_every_e_n_is_the_same(how):
    X = _cloud(1200, 5, seed=2)
    dense = topology.phdim(X, n_start=200, n_step=250, n_repeats=2, algorithm="dense")
    other = topology.phdim(X, n_start=200, n_step=250, n_repeats=2, **how)
    assert dense.algorithm == "dense" and other.algorithm == "tiled"
    np.testing.assert_allclose(other.E, dense.E, rtol=1e-13)
    assert other.dim == pytest.approx(dense.dim, rel=1e-12)


@pytest.mark.parametrize("sizes, match", [
    ([500], "at least two"),
    ([500, 400], "strictly increasing"),
    ([1, 400], r"\[2, n_points"),
    ([500, 2000], r"\[2, n_points=1500\]"),
    (["a", "b"], "at least two integers"),
    ([500.5, 700], "at least two integers"),
])
def test_bad_sizes_are_refused(sizes, match):
    with pytest.raises(ValueError, match=match):
        topology.phdim(_cloud(), sizes=sizes)
