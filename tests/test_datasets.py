"""Loaders read the real on-disk formats and fail with one clear message."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from omegaconf import OmegaConf

from reptopo.datasets import load_dataset, read_idx
from reptopo.errors import ReptopoError


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the IDX format that (Fashion-)MNIST ships, gzip-compressed."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def fake_fmnist(root, n_train=40, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)


def fmnist_cfg(root, **sizes):
    base = OmegaConf.load("conf/data/fashion_mnist.yaml")
    base.root = str(root)
    for k, v in sizes.items():
        base[k] = v
    return base


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), arr)


def test_fashion_mnist_loader_shapes_and_disjoint_splits(tmp_path):
    fake_fmnist(tmp_path)
    ds = load_dataset(fmnist_cfg(tmp_path, train_size=25, val_size=10, test_size=20), seed=3)
    assert ds.train.x.shape == (25, 1, 28, 28) and ds.val.x.shape == (10, 1, 28, 28)
    assert ds.test.x.shape == (20, 1, 28, 28)
    assert ds.train.y.dtype.is_floating_point is False and int(ds.train.y.max()) <= 9
    assert not set(ds.train.indices) & set(ds.val.indices)
    # Normalization uses the config's mean/std: raw 0..255 / 255 -> (v - 0.286) / 0.353.
    raw = read_idx(tmp_path / "train-images-idx3-ubyte.gz")[ds.train.indices[0]].astype(np.float32) / 255
    np.testing.assert_allclose(ds.train.x[0, 0].numpy(), (raw - 0.2860) / 0.3530, rtol=1e-5)
    again = load_dataset(fmnist_cfg(tmp_path, train_size=25, val_size=10, test_size=20), seed=3)
    np.testing.assert_array_equal(ds.train.indices, again.train.indices)


def test_real_fashion_mnist_when_installed():
    import pathlib

    if not pathlib.Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Debian dataset-fashion-mnist not installed")
    ds = load_dataset(fmnist_cfg("/usr/share/datasets/fashion-mnist", train_size=100, val_size=10, test_size=50), 0)
    assert ds.train.x.shape == (100, 1, 28, 28) and ds.num_classes == 10
    assert sorted(np.unique(read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"))) == list(range(10))


def test_missing_root_names_the_fix(tmp_path):
    with pytest.raises(ReptopoError, match=r"data root not found: .*nowhere.*apt-get install dataset-fashion-mnist"):
        load_dataset(fmnist_cfg(tmp_path / "nowhere"), seed=0)


def test_missing_file_is_named(tmp_path):
    fake_fmnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ReptopoError, match="missing .*t10k-labels-idx1-ubyte.gz"):
        load_dataset(fmnist_cfg(tmp_path, train_size=10, val_size=5, test_size=5), seed=0)


def test_truncated_idx_file(tmp_path):
    fake_fmnist(tmp_path)
    data = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(data[:-100])
    with pytest.raises(ReptopoError, match="truncated or corrupt"):
        load_dataset(fmnist_cfg(tmp_path, train_size=10, val_size=5, test_size=5), seed=0)


def test_too_many_examples_requested(tmp_path):
    fake_fmnist(tmp_path)
    with pytest.raises(ReptopoError, match=r"data.train_size=500 but only 40"):
        load_dataset(fmnist_cfg(tmp_path, train_size=500), seed=0)
