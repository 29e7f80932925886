"""Direct comparison of two representations of the same objects: arrays in, numbers out.

Like :mod:`reptopo.topology`: plain functions on numpy arrays (torch tensors accepted), no
configuration, I/O or tracking inside; bad input raises ``ValueError`` naming the problem.

- :func:`linear_cka` (Kornblith et al. 2019; ``debiased=True``: the unbiased HSIC estimator of
  Song et al. 2012, as in Nguyen et al. 2021) and :func:`cka_matrix` (layer x layer, one centred
  Gram per layer).
- :func:`rtd`: Representation Topology Divergence (Barannikov et al., ICML 2022).
- :func:`neighbour_overlap`: the mean fraction of shared k nearest neighbours (or of neighbours
  sharing a point's label).
- :func:`diagram_distance`, :func:`diagram_distance_matrix`: Wasserstein and bottleneck distances
  between persistence diagrams, through giotto-tda (imported by this package only).
"""

from .cka import cka_matrix, linear_cka
from .diagrams import diagram_distance, diagram_distance_matrix
from .neighbours import neighbour_overlap, neighbour_overlap_matrix
from .rtd import rtd

__all__ = ["linear_cka", "cka_matrix", "rtd", "neighbour_overlap", "neighbour_overlap_matrix",
           "diagram_distance", "diagram_distance_matrix"]
