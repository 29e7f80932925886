"""Datasets as in-memory tensors with seeded train/val/test subsets (``load_dataset``): images,
texts and synthetic point clouds (:mod:`reptopo.datasets.synthetic`)."""
from reptopo.datasets.loaders import Dataset, Split, load_dataset

__all__ = ["Dataset", "Split", "load_dataset"]
