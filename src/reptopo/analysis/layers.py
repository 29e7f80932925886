"""Per-layer topology of one representation: the computations of the homology stage, without I/O.

``analyze_layer`` takes a layer's pooled activations (N, D) and labels (N,) and returns every
descriptor of the paper protocol (see docs/paper-protocol.md and docs/ARCHITECTURE.md):
PHdim on the raw cloud, lifespans sums L_0/L_1 in local (per-class) and global mode on the
MinMax-scaled cloud, the global persistence diagrams (for Betti curves) and TwoNN/MLE.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reptopo import topology
from reptopo.runtime.errors import ReptopoError


@dataclass
class LayerResult:
    """Descriptors of one layer. Lifespans are in MinMax-scaled units; PHdim is unitless."""

    phdim: "topology.PHDimResult"
    lifespans_local: dict[int, float]
    lifespans_per_class: dict[int, dict[int, float]]
    lifespans_global: dict[int, float]
    diagrams: list[np.ndarray]
    n_global: int
    intrinsic: dict[str, float] = field(default_factory=dict)
    # class -> Betti numbers (maxdim + 1,) of its k-NN graph; empty unless enabled.
    class_betti: dict[int, list[int]] = field(default_factory=dict)


def check_layer(X: np.ndarray, layer: str, n_needed: int, sizes=None) -> None:
    """Raise one clear error for a layer that cannot be analysed (not real, non-finite, too small,
    constant)."""
    if X.dtype.kind not in "fiu":  # a complex cast to float would drop the imaginary part silently
        raise ReptopoError(f"layer {layer!r}: activations are {X.dtype}; expected real numbers")
    if X.ndim != 2:
        raise ReptopoError(f"layer {layer!r}: activations must be 2-D (samples, features), got shape {X.shape}")
    bad = int(np.size(X) - np.isfinite(X).sum())
    if bad:
        raise ReptopoError(f"layer {layer!r}: {bad} activation value(s) are NaN or infinite")
    if sizes is not None and X.shape[0] < int(sizes[-1]):
        raise ReptopoError(
            f"layer {layer!r}: {X.shape[0]} samples, but topology.phdim.sizes asks for subsamples of up "
            f"to {int(sizes[-1])} (raise sample.size or lower the sizes)"
        )
    if sizes is None and X.shape[0] <= n_needed:
        raise ReptopoError(
            f"layer {layer!r}: {X.shape[0]} samples, but the PHdim protocol needs more than "
            f"topology.phdim.n_start={n_needed} (raise sample.size or lower n_start)"
        )
    if np.ptp(X, axis=0).max() == 0:
        raise ReptopoError(
            f"layer {layer!r}: all {X.shape[0]} points are identical (a dead layer); its PHdim and lifespans are undefined"
        )


def analyze_layer(X: np.ndarray, labels: np.ndarray, topo_cfg, seed: int, layer: str = "layer",
                  n_threads: int = -1) -> LayerResult:
    """Compute every descriptor of one layer. ``X`` (N, D) raw activations, ``labels`` (N,);
    ``n_threads`` caps giotto-ph (-1 = all cores). A cloud the topology engine refuses (extreme
    scales, bad labels) raises one ``ReptopoError`` naming the layer."""
    X = np.asarray(X)
    check_layer(X, layer, int(topo_cfg.phdim.n_start), topo_cfg.phdim.get("sizes"))
    try:
        return _analyze(X.astype(np.float64, copy=False), labels, topo_cfg, seed, n_threads)
    except ValueError as exc:
        raise ReptopoError(f"layer {layer!r}: {exc}") from None


def _analyze(X: np.ndarray, labels: np.ndarray, topo_cfg, seed: int, n_threads: int) -> LayerResult:
    """:func:`analyze_layer` on a checked float64 layer."""
    dims = list(range(int(topo_cfg.maxdim) + 1))
    alpha = float(topo_cfg.alpha)
    lcfg = topo_cfg.lifespans
    sizes = topo_cfg.phdim.get("sizes")

    ph = topology.phdim(
        X, n_start=int(topo_cfg.phdim.n_start), n_step=int(topo_cfg.phdim.n_step), alpha=alpha,
        n_repeats=int(topo_cfg.phdim.n_repeats), seed=seed, device=topo_cfg.phdim.get("device", "auto"),
        sizes=None if sizes is None else [int(n) for n in sizes], algorithm=topo_cfg.phdim.get("algorithm", "auto"),
    )

    scaled = topology.minmax_scale(X) if lcfg.scale == "minmax" else X
    classes, per_class = topology.lifespans_sum_per_class(
        scaled, dims, alpha=alpha, labels=labels, max_per_class=int(lcfg.max_per_class), scale=None, seed=seed,
        class_subsample=lcfg.class_subsample, skip_last_class=bool(lcfg.skip_last_class), n_threads=n_threads,
    )
    local = {k: float(np.mean(per_class[:, i])) for i, k in enumerate(dims)}
    by_class = {k: {int(c): float(per_class[j, i]) for j, c in enumerate(classes)} for i, k in enumerate(dims)}

    # The global cloud: a seeded subsample of the scaled sample (H1 cost grows fast with N).
    n_global = min(len(scaled), int(lcfg.global_max_points))
    rows = np.sort(np.random.default_rng(seed).choice(len(scaled), size=n_global, replace=False))
    diagrams = topology.persistence_diagrams(scaled[rows], maxdim=int(topo_cfg.maxdim), n_threads=n_threads)
    glob = dict(zip(dims, map(float, topology.lifespans_from_diagrams(diagrams, dims, alpha=alpha))))

    intrinsic = topology.intrinsic_dimensions(X, list(topo_cfg.get("intrinsic") or []))
    return LayerResult(ph, local, by_class, glob, diagrams, n_global, intrinsic,
                       class_betti_numbers(X, labels, topo_cfg, n_threads))


def class_betti_numbers(X: np.ndarray, labels: np.ndarray, topo_cfg, n_threads: int = -1) -> dict:
    """Per-class Betti numbers of the k-NN graph (Naitzat et al.), on the raw cloud's first
    ``class_betti.max_per_class`` points of each class; {} when ``class_betti.enabled`` is off."""
    cb = topo_cfg.get("class_betti")
    if not cb or not cb.enabled:
        return {}
    out = {}
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)[: int(cb.max_per_class)]
        if rows.size <= int(cb.k):
            raise ReptopoError(f"topology.class_betti: class {int(c)} has {rows.size} points; "
                               f"expected more than class_betti.k={int(cb.k)}")
        betti = topology.knn_betti_numbers(X[rows], k=int(cb.k), maxdim=int(topo_cfg.maxdim),
                                           min_hops=int(cb.min_hops), n_threads=n_threads)
        out[int(c)] = betti.tolist()
    return out


def shared_grid(diagrams_per_layer: list[list[np.ndarray]], num: int) -> np.ndarray:
    """One filtration grid for a whole run: ``num`` points over [0, largest finite death of any layer]."""
    top = max(topology.max_finite_death(d) for d in diagrams_per_layer)
    return topology.filtration_grid(top if top > 0 else 1.0, int(num))
