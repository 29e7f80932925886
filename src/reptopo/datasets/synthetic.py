"""Naitzat, Zhitnikov & Lim's synthetic two-class sets ("Topology of deep neural networks",
JMLR 2020), generated with a seed. Each returns ``(x, y)``: float32 points (N, D) and int64
labels (N,), classes balanced as documented below.

Documented per-class Betti numbers, read at the Vietoris-Rips scale ``SCALE[name]`` (bars with
birth <= eps < death, i.e. the Betti curve at eps; ``tests/test_synthetic.py`` checks them with
``reptopo.topology.persistence_diagrams`` on each class):

- D-I (2-D, ``d1``): class 0 = nine disjoint disks (radius 1, centres on a 3x3 grid of spacing 4):
  beta_0 = 9, beta_1 = 0. Class 1 = the square [-6, 6]^2 minus the nine enlarged disks
  (radius 1.5): connected, with nine holes: beta_0 = 1, beta_1 = 9.
- D-II (3-D, ``d2``): class 0 = nine solid balls (radius 1.0) centred on a 3x3 grid (spacing 6)
  in the z = 0 plane: beta_0 = 9; class 1 = nine thin spherical shells (radius 1.6-1.7) around them:
  beta_0 = 9, beta_1 = 0 (beta_2 = 9: each shell encloses a cavity).
- D-III (3-D, ``d3``): nine pairs of linked rings (radius 1, tube noise 0.03, pairs 6 apart); class 0 = one ring
  of each pair (in the xy-plane), class 1 = the other (in the xz-plane, through the first ring's
  centre region): beta_0 = 9, beta_1 = 9 for each class.
"""
from __future__ import annotations

import numpy as np

from reptopo.runtime.errors import ReptopoError

GRID = np.array([(i, j) for i in (-4.0, 0.0, 4.0) for j in (-4.0, 0.0, 4.0)])

# Expected per-class (beta_0, beta_1).
BETTI = {
    "d1": {0: (9, 0), 1: (1, 9)},
    "d2": {0: (9, 0), 1: (9, 0)},
    "d3": {0: (9, 9), 1: (9, 9)},
}


def _split(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _disks(rng, n: int, radius: float) -> np.ndarray:
    centre = GRID[rng.integers(0, 9, n)]
    r = radius * np.sqrt(rng.random(n))
    t = rng.random(n) * 2 * np.pi
    return centre + np.stack([r * np.cos(t), r * np.sin(t)], 1)


def d1(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nine disks vs the rest of the square (2-D)."""
    rng = np.random.default_rng(seed)
    n0, n1 = _split(n)
    a = _disks(rng, n0, 1.0)
    b = np.empty((0, 2))
    while len(b) < n1:
        cand = rng.uniform(-6, 6, (2 * n1, 2))
        dist = np.linalg.norm(cand[:, None] - GRID[None], axis=2).min(1)
        b = np.concatenate([b, cand[dist > 1.5]])
    return _pack(a, b[:n1])


def _ball(rng, n: int, r_lo: float, r_hi: float) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    # Uniform in volume between r_lo and r_hi.
    r = np.cbrt(r_lo**3 + rng.random(n) * (r_hi**3 - r_lo**3))
    return v * r[:, None]


def d2(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nine solid balls vs nine spherical shells around them (3-D)."""
    rng = np.random.default_rng(seed)
    n0, n1 = _split(n)
    centres = np.concatenate([1.5 * GRID, np.zeros((9, 1))], 1)
    a = centres[rng.integers(0, 9, n0)] + _ball(rng, n0, 0.0, 1.0)
    b = centres[rng.integers(0, 9, n1)] + _ball(rng, n1, 1.6, 1.7)
    return _pack(a, b)


def d3(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nine pairs of linked rings (3-D): class 0 the xy-rings, class 1 the xz-rings."""
    rng = np.random.default_rng(seed)
    n0, n1 = _split(n)
    centres = np.concatenate([1.5 * GRID, np.zeros((9, 1))], 1)

    def rings(m: int, plane: str) -> np.ndarray:
        k = rng.integers(0, 9, m)
        t = rng.random(m) * 2 * np.pi
        if plane == "xy":
            p = np.stack([np.cos(t), np.sin(t), np.zeros(m)], 1)
        else:  # xz ring shifted by +1 in x: it passes through the xy ring's disk -> linked
            p = np.stack([1.0 + np.cos(t), np.zeros(m), np.sin(t)], 1)
        return centres[k] + p + rng.normal(scale=0.03, size=(m, 3))

    return _pack(rings(n0, "xy"), rings(n1, "xz"))


def _pack(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([a, b]).astype(np.float32)
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))]).astype(np.int64)
    return x, y


# Rips scale (diameter) at which the Betti numbers above hold for the default sizes
# (>= 600 points per class for d1, 900 for d2, 450 for d3): above the sampling noise,
# below the gaps between components (2 for d1, >= 2.6 for d2, 4 for d3).
SCALE = {"d1": 1.3, "d2": 1.8, "d3": 1.2}

GENERATORS = {"d1": d1, "d2": d2, "d3": d3}


def generate(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if name not in GENERATORS:
        raise ReptopoError(f"data.generator={name!r} is unknown; expected one of {sorted(GENERATORS)}")
    if n < 2:
        raise ReptopoError(f"synthetic set {name}: n={n}; expected at least 2 points")
    return GENERATORS[name](n, seed)
