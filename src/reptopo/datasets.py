"""Datasets as in-memory tensors with seeded train/val/test subsets.

Images come back as float32 tensors (N, C, H, W), normalized with the config's mean/std, and
int64 labels (N,). Loaders read local files only; the download sets of later issues plug in
through ``LOADERS``.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reptopo.errors import ReptopoError


@dataclass
class Split:
    """One split: inputs (N, C, H, W) float32, labels (N,) int64, indices into the source files."""

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class ImageDataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_chans: int
    img_size: int


# ---------------------------------------------------------------- raw file readers

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST format; gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise ReptopoError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ReptopoError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise ReptopoError(
            f"{path} is truncated or corrupt: header says shape {shape} ({expected} bytes), "
            f"file holds {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find_file(root: Path, stem: str, what: str, hint: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise ReptopoError(f"{what}: missing {root / (stem + '.gz')} ({hint})")


_FMNIST_HINT = (
    "install the Debian package with `apt-get install dataset-fashion-mnist` "
    "or point data.root at a folder holding the four IDX files"
)


def _load_idx_pair(root: Path, prefix: str, what: str, hint: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find_file(root, f"{prefix}-images-idx3-ubyte", what, hint))
    labels = read_idx(_find_file(root, f"{prefix}-labels-idx1-ubyte", what, hint))
    if images.shape[0] != labels.shape[0]:
        raise ReptopoError(
            f"{what}: {prefix} images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in count"
        )
    return images, labels


def _load_fashion_mnist(root: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not root:
        raise ReptopoError(f"data.root is not set for fashion_mnist ({_FMNIST_HINT})")
    root_path = Path(root)
    if not root_path.is_dir():
        raise ReptopoError(f"Fashion-MNIST data root not found: {root_path} ({_FMNIST_HINT})")
    x_tr, y_tr = _load_idx_pair(root_path, "train", "Fashion-MNIST", _FMNIST_HINT)
    x_te, y_te = _load_idx_pair(root_path, "t10k", "Fashion-MNIST", _FMNIST_HINT)
    return x_tr[:, None], y_tr, x_te[:, None], y_te


def _load_digits(root: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 gray levels -> 0..255 so every image loader hands uint8-like data to normalization.
    images = (digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    # sklearn ships one set: the split below happens by seeded permutation, test = train pool.
    return images, labels, images, labels


LOADERS = {"fashion_mnist": _load_fashion_mnist, "digits": _load_digits}


# ---------------------------------------------------------------- subsets and tensors


def _take(n_wanted: int | None, available: int, key: str) -> int:
    if n_wanted is None:
        return available
    if n_wanted <= 0 or n_wanted > available:
        raise ReptopoError(f"{key}={n_wanted} but only {available} examples are available (expected 1..{available})")
    return int(n_wanted)


def _to_split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray, mean, std) -> Split:
    x = torch.from_numpy(images[idx].astype(np.float32) / 255.0)
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    x = (x - mean_t) / std_t
    y = torch.from_numpy(labels[idx].astype(np.int64))
    return Split(x=x.contiguous(), y=y, indices=idx)


def load_dataset(data_cfg, seed: int) -> ImageDataset:
    """Load the dataset named by ``data_cfg.loader`` with seeded subsets.

    Train and val are disjoint subsets of the training files (one seeded permutation); test is a
    seeded subset of the test files. For ``digits`` (one file) test is drawn from what is left.
    """
    loader = LOADERS.get(data_cfg.loader)
    if loader is None:
        raise ReptopoError(f"data.loader={data_cfg.loader!r} is unknown; expected one of {sorted(LOADERS)}")
    x_tr, y_tr, x_te, y_te = loader(data_cfg.get("root"))
    if x_tr.shape[1] != data_cfg.in_chans or x_tr.shape[-1] != data_cfg.img_size:
        raise ReptopoError(
            f"data.in_chans/img_size = {data_cfg.in_chans}/{data_cfg.img_size} but the files hold "
            f"images of shape {tuple(x_tr.shape[1:])}"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y_tr))
    n_train = _take(data_cfg.get("train_size"), len(perm), "data.train_size")
    n_val = _take(data_cfg.get("val_size"), len(perm) - n_train, "data.val_size") if data_cfg.get("val_size") else 0
    train_idx, val_idx = perm[:n_train], perm[n_train : n_train + n_val]
    if x_te is x_tr:
        rest = perm[n_train + n_val :]
        n_test = _take(data_cfg.get("test_size"), len(rest), "data.test_size")
        test_idx = rest[:n_test]
    else:
        n_test = _take(data_cfg.get("test_size"), len(y_te), "data.test_size")
        test_idx = rng.permutation(len(y_te))[:n_test]
    mean, std = data_cfg.mean, data_cfg.std
    return ImageDataset(
        name=data_cfg.name,
        train=_to_split(x_tr, y_tr, train_idx, mean, std),
        val=_to_split(x_tr, y_tr, val_idx, mean, std),
        test=_to_split(x_te, y_te, test_idx, mean, std),
        num_classes=int(data_cfg.num_classes),
        in_chans=int(data_cfg.in_chans),
        img_size=int(data_cfg.img_size),
    )
