"""The compare stage's pure builder: two runs' layers in, layer x layer matrices and the
same-relative-depth profile out (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from reptopo import similarity

# Measures with a full layer x layer matrix (RTD is computed on the same-depth pairs only).
MATRIX_MEASURES = ("cka", "cka_debiased", "overlap")


@dataclass
class Comparison:
    """``matrices``: measure -> DataFrame (index: run A's layers, columns: run B's layers);
    ``diagonal``: one row per layer of A with its same-depth layer of B and every measure there;
    ``summary``: scalars (means along the diagonal; ``cka_best_depth_gap``: mean |depth of B's
    most CKA-similar layer - depth of A's layer|, Kornblith et al.'s depth correspondence)."""
    matrices: dict[str, pd.DataFrame]
    diagonal: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)


def same_depth_partners(depths_a: Sequence[float], depths_b: Sequence[float]) -> np.ndarray:
    """For each layer of A, the index of B's layer at the nearest relative depth (first on ties)."""
    a, b = np.asarray(depths_a, float), np.asarray(depths_b, float)
    return np.abs(a[:, None] - b[None, :]).argmin(axis=1)


def compare_runs(layers_a: Sequence[np.ndarray], layers_b: Sequence[np.ndarray], names_a: Sequence[str],
                 names_b: Sequence[str], depths_a: Sequence[float], depths_b: Sequence[float], *,
                 measures: Sequence[str], k: int = 10, rtd_batches: int = 3, rtd_batch_size: int = 300,
                 seed: int = 0, diagrams_a=None, diagrams_b=None, diagram_metric: str = "bottleneck",
                 n_threads: int = -1) -> Comparison:
    """Every measure of ``measures`` between run A's layers (each (n, p_i)) and run B's (n, q_j),
    rows being the same n objects. ``diagrams_a/b``: per layer, the list of per-dimension
    diagrams (for ``"diagrams"``: one matrix per homology dimension, ``diagram_h<k>``)."""
    def frame(M):
        return pd.DataFrame(M, index=list(names_a), columns=list(names_b))

    matrices: dict[str, pd.DataFrame] = {}
    if "cka" in measures:
        matrices["cka"] = frame(similarity.cka_matrix(layers_a, layers_b))
    if "cka_debiased" in measures:
        matrices["cka_debiased"] = frame(similarity.cka_matrix(layers_a, layers_b, debiased=True))
    if "overlap" in measures:
        matrices["overlap"] = frame(similarity.neighbour_overlap_matrix(layers_a, layers_b, k=k))
    if "diagrams" in measures:
        cross = similarity.diagram_distance_matrix(diagrams_a, diagram_metric, diagrams_b=diagrams_b)
        for dim, M in enumerate(cross):
            matrices[f"diagram_h{dim}"] = frame(M)
    partner = same_depth_partners(depths_a, depths_b)
    diagonal = pd.DataFrame({"layer_a": list(names_a), "depth_a": list(depths_a),
                             "layer_b": [names_b[j] for j in partner], "depth_b": [depths_b[j] for j in partner]})
    for name, M in matrices.items():
        diagonal[name] = [M.iat[i, j] for i, j in enumerate(partner)]
    if "rtd" in measures:
        diagonal["rtd"] = [similarity.rtd(layers_a[i], layers_b[j], n_batches=rtd_batches,
                                          batch_size=rtd_batch_size, seed=seed, n_threads=n_threads)
                           for i, j in enumerate(partner)]
    summary = {f"mean_diagonal_{c}": float(diagonal[c].mean()) for c in diagonal.columns
               if c not in ("layer_a", "depth_a", "layer_b", "depth_b")}
    if "cka" in matrices:
        best = matrices["cka"].to_numpy().argmax(axis=1)
        summary["cka_best_depth_gap"] = float(np.mean(np.abs(np.asarray(depths_b, float)[best]
                                                             - np.asarray(depths_a, float))))
    return Comparison(matrices, diagonal, summary)
