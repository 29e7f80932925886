"""The fixed, seeded sample of inputs that the activations stage runs through a trained model."""
from __future__ import annotations

import numpy as np

from reptopo.runtime.errors import ReptopoError


def sample_rows(n_available: int, size: int, seed: int, split: str = "train") -> np.ndarray:
    """(size,) int64 row indices of a split of ``n_available`` examples, drawn without replacement
    with ``seed``, in random order (the local lifespans take the first points of each class)."""
    if size < 1 or size > n_available:
        raise ReptopoError(
            f"sample.size={size} but the {split} split has {n_available} examples "
            f"(expected 1..{n_available}; raise data.{split}_size or lower sample.size)"
        )
    return np.random.default_rng(seed).choice(n_available, size=size, replace=False).astype(np.int64)


def pooling_of(raw_shape: list[int] | None, token_pooling: str) -> str:
    """How a probe's raw output of per-example shape ``raw_shape`` was pooled to a vector:
    ``gap`` (conv maps (C, H, W), global average), the token pooling (sequences (T, D)) or ``none``."""
    if raw_shape and len(raw_shape) == 3:
        return "gap"
    if raw_shape and len(raw_shape) == 2:
        return token_pooling
    return "none"
