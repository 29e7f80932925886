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


def complex_layer(root, base, case):
    dst = _copy_acts(root, base, case)
    X = np.load(dst / "layer_01.npy")
    np.save(dst / "layer_01.npy", X + 1j * X)


def nan_labels(root, base, case):
    dst = _copy_acts(root, base, case)
    y = np.load(dst / "labels.npy").astype(np.float64)
    y[[3, 11, 19]] = np.nan
    np.save(dst / "labels.npy", y)


def scaled_layer(factor):
    def setup(root, base, case):
        dst = _copy_acts(root, base, case)
        X = np.load(dst / "layer_00.npy").astype(np.float64)
        np.save(dst / "layer_00.npy", X * factor)
    return setup


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
     "layer 'layer3.1': 6 activation value(s) are NaN or infinite", "data/homology/{case}"),
    ("identical-points", "homology", [], dead_layer, 2,
     "layer 'act1': all 200 points are identical", "data/homology/{case}"),
    ("complex-activations", "homology", [], complex_layer, 2,
     "layer 'layer3.1': activations are complex64; expected real numbers", "data/homology/{case}"),
    ("nan-labels", "homology", [], nan_labels, 2,
     "labels file {root}/data/activations/{case}/labels.npy: 3 label(s) are NaN", "data/homology/{case}"),
    ("activations-below-float-range", "homology", [], scaled_layer(1e-200), 2,
     "layer 'act1': X spans only ", "data/homology/{case}"),
    ("activations-beyond-float-range", "homology", [], scaled_layer(1e200), 2,
     "layer 'act1': X has coordinates up to ", "data/homology/{case}"),
    # Activations made with a smaller sample than this config's (sample.size passes the config check).
    ("too-few-samples-for-phdim", "homology", ["sample.size=600", "topology.phdim.n_start=500"], plain_copy, 2,
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


# ---------------------------------------------------------------- every numeric key out of range

def _bad_values(rule: str, kind: type) -> list:
    """Values just outside ``rule`` (">= a", "> a" or "[a, b]")."""
    from reptopo.runtime.schema import parse_range

    lo, lo_in, hi, hi_in = parse_range(rule)
    below = (lo - 1 if lo_in else lo) if kind is int else (lo - 0.5 if lo_in else lo)
    out = [below]
    if hi != float("inf"):
        out.append(hi + 1 if kind is int else hi + 0.5)
    return [kind(v) for v in out]


def _range_cases():
    from dataclasses import fields, is_dataclass

    from reptopo.runtime.schema import ConfigSchema, ranged_keys

    def kinds(schema, prefix=""):
        out = {}
        for f in fields(schema):
            default = f.default_factory() if callable(getattr(f, "default_factory", None)) else None
            if is_dataclass(default):
                out.update(kinds(type(default), f"{prefix}{f.name}."))
            else:
                out[f"{prefix}{f.name}"] = int if "int" in str(f.type) else float
        return out

    types = kinds(ConfigSchema)
    stages = ["train", "activations", "homology", "aggregate", "compare", "pipeline", "experiment", "reproduction"]
    cases = []
    for i, (key, rule) in enumerate(sorted(ranged_keys().items())):
        for value in _bad_values(rule, types[key]):
            cases.append((f"{key}={value}", stages[len(cases) % len(stages)], key, value, rule))
    return cases


RANGE_CASES = _range_cases()


def test_every_ranged_key_has_a_case():
    from reptopo.runtime.schema import ranged_keys

    assert {c[2] for c in RANGE_CASES} == set(ranged_keys()) and len(ranged_keys()) >= 30


@pytest.mark.parametrize("case, stage, key, value, rule", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_numeric_key_out_of_range(trained_digits, case, stage, key, value, rule):
    root, _, _, _ = trained_digits
    name = "range-" + key.replace(".", "-")
    args = [*TINY, f"paths.root={root}", f"run_name={name}", f"experiment_name={name}", "tracking=none",
            f"{key}={value}"]
    res = run_cli(stage, *args, cwd=root)
    assert res.returncode == 2, res.stderr[-3000:]
    lines = [l for l in res.stderr.splitlines() if "error" in l.lower()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert lines[0] == f"reptopo {stage}: error: config key {key}: {value!r} is out of range; expected {rule}"
    assert not list(root.glob(f"data/*/{name}")) and not (root / "reports" / name).exists()


CROSS_CASES = [
    # (id, overrides, message)
    ("limit-batches-not-whole", ["train.limit_train_batches=2.5"],
     "config key train.limit_train_batches: 2.5 is neither a fraction in (0, 1) nor a whole number of batches"),
    ("limit-batches-one", ["train.limit_train_batches=1"],
     "config key train.limit_train_batches: 1.0 is ambiguous (Lightning reads 1 as one batch and 1.0 as all of "
     "them); expected a fraction in (0, 1), a whole number >= 2 of batches, or null for all"),
    ("steps-per-call-with-limit", ["train.limit_train_batches=2", "train.steps_per_call=3"],
     "config keys train.limit_train_batches=2.0 and train.steps_per_call=3: Lightning would limit groups of "
     "minibatches, not minibatches; use one of them (train.steps_per_call=1 with a limit)"),
    ("group-by-length-on-images", ["train.group_by_length=8"],
     "config key train.group_by_length=8: batches by length are for token sequences, and data=digits is of kind "
     "'image'; expected train.group_by_length=0 or a text dataset"),
    ("sample-too-small-for-phdim", ["sample.size=100", "topology.phdim.n_start=60", "topology.phdim.n_step=40"],
     "config key sample.size: 100 is too small for PHdim (topology.phdim.n_start=60, n_step=40): the fit needs two "
     "subsample sizes below it, so expected >= 101"),
    ("attack-target-not-a-class", ["attack=fgsm_targeted", "attack.target=10"],
     "config key attack.target: 10 is not a class of data 'digits' (expected 0..9)"),
    ("attack-without-target", ["attack=fgsm_targeted", "attack.target=null"],
     "config key attack.target: null, but attack.method='fgsm_targeted' needs a target class"),
    ("attack-settings-without-attack", ["attack.eps=0.1"],
     "config key attack.eps: 0.1, but attack.method is null (attack=none), so nothing is attacked; choose "
     "attack=fgsm_targeted or drop it"),
    ("attack-target-without-attack", ["attack.target=3"],
     "config key attack.target: 3, but attack.method is null (attack=none), so nothing is attacked; choose "
     "attack=fgsm_targeted or drop it"),
    ("attack-on-points", ["data=naitzat_d1", "attack=fgsm_targeted", "attack.target=1"],
     "config key attack.method: 'fgsm_targeted' perturbs images, but data 'naitzat_d1' is points (expected attack=none)"),
    ("probe-names-without-layers", ["probe.strategy=names"],
     "config key probe.layers: None, but probe.strategy='names' records exactly those layers (expected a list of "
     "module names)"),
    ("probe-pattern-without-pattern", ["probe.strategy=pattern"],
     "config key probe.pattern: None, but probe.strategy='pattern' records the modules whose name matches it "
     "(expected a regex)"),
    ("cifar-resnet-large-stem", ["model=cifar_resnet", "model.small_input=false"],
     "config key model.small_input: false, but model.family='cifar_resnet' always has the 3x3 stride-1 stem of a "
     "CIFAR ResNet (expected true)"),
    ("vgg-small-input", ["model=vgg_small", "model.small_input=true"],
     "config key model.small_input: true, but model.family='timm_vgg' has no stem to adapt (only timm models read "
     "it; expected false)"),
    ("compare-k-above-the-sample", ["compare.k=200"],
     "config key compare.k: 200 neighbours, but the sample has sample.size=200 points (expected < 200)"),
    ("target-class-not-a-class", ["aggregate.target_class=12"],
     "config key aggregate.target_class: 12 is not a class of data 'digits' (expected 0..9)"),
    ("class-betti-above-h1", ["topology.class_betti.enabled=true", "topology.maxdim=2"],
     "config key topology.maxdim: 2 with topology.class_betti.enabled; the k-NN graph Betti numbers are defined "
     "for degrees 0 and 1 only (expected <= 1)"),
]


@pytest.mark.parametrize("case, overrides, message", CROSS_CASES, ids=[c[0] for c in CROSS_CASES])
def test_cross_key_rules_fail_before_any_stage_runs(trained_digits, case, overrides, message):
    root, _, _, _ = trained_digits
    tiny = [o for o in TINY if not (o.startswith("data=") and any(x.startswith("data=") for x in overrides))]
    res = run_cli("train", *tiny, f"paths.root={root}", f"run_name={case}", "tracking=none", *overrides, cwd=root)
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.strip().splitlines()[-1] == f"reptopo train: error: {message}"
    assert not list(root.glob(f"data/*/{case}"))
