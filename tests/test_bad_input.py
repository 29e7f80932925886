"""Bad input, one table, through the real command line: one clear error line naming the file,
key or layer and what was expected; a non-zero exit; no partial outputs."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from conftest import TINY, run_cli

pytestmark = pytest.mark.e2e


def _copy_acts(root, base, case):
    dst = root / "data/activations" / case
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(root / "data/activations" / base, dst)
    return dst


def nan_layer(root, base, case):
    dst = _copy_acts(root, base, case)
    X = np.load(dst / "layer_01.npy")
    X[:5, 0] = np.nan
    X[7, 3] = np.inf
    np.save(dst / "layer_01.npy", X)


def truncated_layer(root, base, case):
    dst = _copy_acts(root, base, case)
    data = (dst / "layer_02.npy").read_bytes()
    (dst / "layer_02.npy").write_bytes(data[: len(data) // 2])


def dead_layer(root, base, case):
    dst = _copy_acts(root, base, case)
    np.save(dst / "layer_00.npy", np.ones((200, 64), dtype=np.float32))


def plain_copy(root, base, case):
    _copy_acts(root, base, case)


def file_in_the_way(root, base, case):
    (root / "not_a_folder").write_text("a file where the MLflow store's folder should be\n")


def results_without_betti(root, base, case):
    # In a data folder of its own: the session's shared data/ must not gain a broken run.
    hom = root / "broken_results/homology" / case
    hom.mkdir(parents=True, exist_ok=True)
    (hom / "summary.csv").write_text("layer,depth,phdim\nfc,1.0,3.2\n")  # betti.csv lost


def half_dataset(root, base, case):
    folder = root / "fmnist_partial"
    folder.mkdir(exist_ok=True)
    src = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as fh:  # a valid IDX header, no labels file
        fh.write(bytes([0, 0, 8, 3]) + (1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(784))
    del src


# (id, stage, overrides, setup, exit code, message, output that must not exist)
CASES = [
    ("unknown-config-option", "train", ["model=resnet9000"], None, 1,
     "Could not find 'model/resnet9000'", "data/train/{case}"),
    ("wrong-type-override", "train", ["train.max_epochs=lots"], None, 2,
     "config key train.max_epochs: Value 'lots' of type 'str' could not be converted to Integer", "data/train/{case}"),
    ("typo-in-a-choice", "homology", ["topology.lifespans.scale=min-max"], plain_copy, 2,
     "config key topology.lifespans.scale: 'min-max' is not one of: null, minmax", "data/homology/{case}"),
    ("normalization-per-channel", "train", ["data.mean=[0.5,0.5,0.5]"], None, 2,
     "config key data.mean: 3 values for data.in_chans=1 (expected one per image channel)", "data/train/{case}"),
    ("mlflow-store-cannot-be-opened", "train",
     ["tracking.enabled=true", "tracking.db_path={root}/not_a_folder/mlflow.db"], file_in_the_way, 2,
     "MLflow tracking store sqlite:///{root}/not_a_folder/mlflow.db cannot be opened", "data/train/{case}"),
    ("accelerator-not-here", "train", ["train.accelerator=mps"], None, 2,  # Apple GPUs: never on Linux
     "train.accelerator='mps' cannot run here", "data/train/{case}"),
    ("results-table-missing", "aggregate",
     ["paths.data_dir={root}/broken_results", "paths.reports_dir={root}/reports/{case}"], results_without_betti, 2,
     "Betti curves not found: {root}/broken_results/homology/{case}/betti.csv", "reports/{case}"),
    ("dataset-root-missing", "train", ["data=fashion_mnist", "data.root={root}/nowhere"], None, 2,
     "Fashion-MNIST data root not found: {root}/nowhere (install the Debian package", "data/train/{case}"),
    ("dataset-root-missing-files", "train", ["data=fashion_mnist", "data.root={root}/fmnist_partial"], half_dataset, 2,
     "missing {root}/fmnist_partial/train-labels-idx1-ubyte.gz", "data/train/{case}"),
    ("probe-names-missing-layer", "activations", ["probe.strategy=names", "probe.layers=[layer1.0,layer7.3]",
                                                  "paths.train_dir={train}"], None, 2,
     "probe.layers names layer(s) ['layer7.3'] that model 'resnet_small' lacks", "data/activations/{case}"),
    ("checkpoint-of-another-architecture", "activations", ["model=vgg_small", "paths.train_dir={train}"], None, 2,
     "was trained for model 'resnet_small'", "data/activations/{case}"),
    ("truncated-activation-file", "homology", [], truncated_layer, 2,
     "layer_02.npy (layer 'fc') is truncated or corrupt", "data/homology/{case}"),
    ("nan-activations", "homology", [], nan_layer, 2,
     "layer 'layer4.1': 6 activation value(s) are NaN or infinite", "data/homology/{case}"),
    ("identical-points", "homology", [], dead_layer, 2,
     "layer 'act1': all 200 points are identical", "data/homology/{case}"),
    ("too-few-samples-for-phdim", "homology", ["topology.phdim.n_start=500"], plain_copy, 2,
     "200 samples, but the PHdim protocol needs more than topology.phdim.n_start=500", "data/homology/{case}"),
]


@pytest.mark.parametrize("case, stage, overrides, setup, code, message, output", CASES, ids=[c[0] for c in CASES])
def test_bad_input(trained_digits, case, stage, overrides, setup, code, message, output):
    root, cfg, _, _ = trained_digits
    if setup:
        setup(root, cfg.run_name, case)
    fill = {"root": root, "case": case, "train": root / "data/train" / cfg.run_name}
    args = [*TINY, f"paths.root={root}", f"run_name={case}", "tracking=none", *[o.format(**fill) for o in overrides]]
    res = run_cli(stage, *args, cwd=root)
    assert res.returncode == code, res.stderr[-3000:]
    assert message.format(**fill) in res.stderr, res.stderr[-3000:]
    if code == 2:  # our errors: exactly one line, no traceback
        lines = [l for l in res.stderr.splitlines() if "error" in l.lower()]
        assert len(lines) == 1 and lines[0].startswith(f"reptopo {stage}: error: "), res.stderr[-3000:]
        assert "Traceback" not in res.stderr
    assert not (root / output.format(**fill)).exists()
