"""Tiny files in the real on-disk formats of the download sets (what torchvision leaves in a root)."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    """Write ``array`` (uint8) in the IDX format that (Fashion-)MNIST ships."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def fake_cifar10(root: Path, per_batch: int = 10, seed: int = 0) -> Path:
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch}: pickled dicts as CIFAR-10 ships them
    (byte-string keys, 'data' uint8 (N, 3072) row-major RGB planes, 'labels' list of ints)."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        entry = {
            b"batch_label": f"batch {i}".encode(),
            b"labels": [int(v) for v in (np.arange(per_batch) + i) % 10],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
        }
        with open(base / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    return base


def fake_svhn(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 0) -> None:
    """root/{train,test}_32x32.mat: X (32, 32, 3, N) uint8 and y (N, 1) with 10 standing for 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # labels 1..10
        savemat(str(Path(root) / f"{name}_32x32.mat"),
                {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y})


def fake_mnist(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 0, compress: bool = False) -> None:
    """root/MNIST/raw/*-ubyte: torchvision's MNIST layout (uncompressed after its download)."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if compress else ""
    write_idx(raw / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), compress)
    write_idx(raw / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train) % 10, compress)
    write_idx(raw / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), compress)
    write_idx(raw / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, compress)
