"""Topology engine of reptopo: exact, fast persistent-homology measures of point clouds.

Plain functions on numpy arrays (torch tensors are accepted too); no configuration, file I/O or
printing inside. Definitions follow Magai & Ayzenberg (see docs/paper-protocol.md):

- :func:`persistence_diagrams`: Vietoris–Rips diagrams, H0 from an exact Euclidean MST and H1+
  from giotto-ph; :func:`betti_curves` on a shared filtration grid; :func:`knn_betti_numbers`
  (Betti numbers of a k-NN graph, for per-class counts as in Naitzat et al.).
- :func:`lifespans_sum`: the paper's descriptor L_k (global, or averaged over classes).
- :func:`phdim`: the 0-dimensional PH fractal dimension, with repeats and a seed.
- :func:`intrinsic_dimension`, :func:`intrinsic_dimensions`: TwoNN / MLE / GRIDE cross-checks via scikit-dimension
  (:func:`gride_profile`: GRIDE across scales).
- :func:`mst_edge_lengths`, :func:`minmax_scale`: the building blocks.

Invalid input raises ``ValueError`` naming the problem.
"""

from .descriptors import (
    lifespans_from_diagrams,
    lifespans_sum,
    lifespans_sum_per_class,
    minmax_scale,
)
from .intrinsic import gride_profile, intrinsic_dimension, intrinsic_dimensions
from .mst import mst_edge_lengths, mst_edges
from .persistence import betti_curves, knn_betti_numbers, filtration_grid, max_finite_death, persistence_diagrams
from .phdim import PHDimResult, phdim, phdim_log_sizes, phdim_sizes, phdim_subsample_indices

__all__ = [
    "persistence_diagrams",
    "betti_curves",
    "knn_betti_numbers",
    "filtration_grid",
    "max_finite_death",
    "lifespans_sum",
    "lifespans_sum_per_class",
    "lifespans_from_diagrams",
    "minmax_scale",
    "phdim",
    "PHDimResult",
    "phdim_sizes",
    "phdim_log_sizes",
    "phdim_subsample_indices",
    "intrinsic_dimension",
    "intrinsic_dimensions",
    "gride_profile",
    "mst_edge_lengths",
    "mst_edges",
]
