"""Timings of reptopo.similarity against the straightforward way, side by side.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_similarity.py          # n = 3000, ~2 min
    PYTHONPATH=src .venv/bin/python benchmarks/bench_similarity.py --quick  # n = 1000

1. Layer x layer linear CKA, 10 x 10 layers of n objects (widths 64-512): ``cka_matrix`` (one
   centred Gram per layer, then one inner product per pair) vs 100 calls of ``linear_cka``.
2. RTD, one batch of 500 objects (two directions, each one giotto-ph call on a 1000 x 1000
   R-Cross matrix): ``rtd(..., n_batches=1)`` vs ripser.py on the same two matrices.
3. Neighbour overlap, k = 10: ``neighbour_overlap`` vs scikit-learn ``NearestNeighbors`` sets and
   Python set intersections.
4. Bottleneck distances between two runs' diagrams (H0 and H1 of 6 + 6 layers, min(n, 600) points
   each): ``diagram_distance_matrix(a, diagrams_b=b)`` (the cross pairs only) vs the joint
   12 x 12 matrix the compare stage used to take its cross block from.

Data are Gaussian clouds (seed 0) pushed through random ReLU maps, so the layers are related.
Every function is warmed up once first. A script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _table import run_rows


def _layers(n: int, n_layers: int = 10) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 64))
    out = []
    for i in range(n_layers):
        width = [64, 128, 256, 512][i % 4]
        X = np.maximum(X @ rng.normal(size=(X.shape[1], width)) / np.sqrt(X.shape[1]), 0)
        out.append(X)
    return out


def _time(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_cka(n: int) -> dict:
    from reptopo.similarity import cka_matrix, linear_cka

    layers = _layers(n)
    cka_matrix([L[:50] for L in layers[:2]])
    t_ref, ref = _time(lambda: np.array([[linear_cka(a, b) for b in layers] for a in layers]))
    t_ours, ours = _time(lambda: cka_matrix(layers))
    return {"task": f"CKA 10x10 layers n={n}", "ref_name": "100 x linear_cka", "t_ref": t_ref, "t_ours": t_ours,
            "extra": f"largest difference {np.max(np.abs(ref - ours)):.1e}"}


def bench_rtd(n: int) -> dict:
    import ripser

    from reptopo.similarity import rtd
    from reptopo.similarity.rtd import _normalised_distances, r_cross_matrix

    layers = _layers(n)
    X, Y = layers[2], layers[7]
    rtd(X[:60], Y[:60])
    idx = np.sort(np.random.default_rng(0).choice(n, size=500, replace=False))

    def reference():
        r1, r2 = _normalised_distances(X[idx]), _normalised_distances(Y[idx])
        tot = 0.0
        for a, b in ((r1, r2), (r2, r1)):
            h1 = ripser.ripser(r_cross_matrix(a, b), distance_matrix=True, maxdim=1)["dgms"][1]
            tot += np.sum(h1[:, 1] - h1[:, 0])
        return tot / 2

    t_ref, ref = _time(reference)
    t_ours, ours = _time(lambda: rtd(X, Y, n_batches=1, batch_size=500, seed=0))
    return {"task": "RTD one batch of 500", "ref_name": "ripser.py, same matrices", "t_ref": t_ref, "t_ours": t_ours,
            "extra": f"RTD ours {ours:.5f}, ripser.py {ref:.5f} on the same batch; "
                     f"{t_ours:.2f} s per batch on {os.cpu_count()} cores"}


def bench_overlap(n: int) -> dict:
    from sklearn.neighbors import NearestNeighbors

    from reptopo.similarity import neighbour_overlap

    layers = _layers(n)
    X, Y = layers[2], layers[7]
    neighbour_overlap(X[:50], Y[:50], k=5)

    def reference():
        sets = []
        for A in (X, Y):
            idx = NearestNeighbors(n_neighbors=11).fit(A).kneighbors(A, return_distance=False)
            sets.append([set(row[row != i][:10]) for i, row in enumerate(idx)])
        return np.mean([len(a & b) / 10 for a, b in zip(*sets)])

    t_ref, ref = _time(reference)
    t_ours, ours = _time(lambda: neighbour_overlap(X, Y, k=10))
    return {"task": f"neighbour overlap n={n} k=10", "ref_name": "sklearn kNN + sets", "t_ref": t_ref,
            "t_ours": t_ours, "extra": f"overlap ours {ours:.4f}, reference {ref:.4f}"}


def bench_diagrams(n: int) -> dict:
    from reptopo.similarity import diagram_distance_matrix
    from reptopo.topology import persistence_diagrams

    m = min(n, 600)
    layers = _layers(m, 12)
    dgms = [persistence_diagrams(L, maxdim=1) for L in layers]
    a, b = dgms[:6], dgms[6:]
    diagram_distance_matrix(a[:1], "bottleneck", diagrams_b=b[:1])
    t_ref, ref = _time(lambda: diagram_distance_matrix([*a, *b], "bottleneck")[:, :6, 6:])
    t_ours, ours = _time(lambda: diagram_distance_matrix(a, "bottleneck", diagrams_b=b))
    return {"task": f"bottleneck 6x6 layers, {m} points", "ref_name": "joint 12x12, cross block", "t_ref": t_ref,
            "t_ours": t_ours, "extra": f"largest difference {np.max(np.abs(ref - ours)):.1e}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 1000")
    args = parser.parse_args(argv)
    n = 1000 if args.quick else 3000
    run_rows(f"reptopo similarity benchmark (n={n})", (lambda fn=fn: fn(n) for fn in (bench_cka, bench_rtd, bench_overlap,
                                                                                   bench_diagrams)),
             task_width=30, ref_width=26)

if __name__ == "__main__":
    main()
