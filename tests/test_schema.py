"""Config values the types cannot check: fixed choices, per-channel normalization, regexes.

Every shipped config must pass; each kind of bad value must fail at once with one error naming
the key (a typo in a choice key used to mean "off" silently, e.g. no MinMax scaling of L_k)."""
from __future__ import annotations

import pytest

from conftest import CONF, compose_cfg
from reptopo.errors import ReptopoError
from reptopo.schema import CHOICES, LIST_CHOICES, validate_config

DATASETS = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("data", DATASETS)
def test_every_dataset_config_validates(tmp_path, data):
    cfg = validate_config(compose_cfg(tmp_path, [f"data={data}"]))
    if cfg.data.kind == "image":
        assert len(cfg.data.mean) == len(cfg.data.std) == cfg.data.in_chans


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_validates(tmp_path, model):
    validate_config(compose_cfg(tmp_path, [f"model={model}"]))


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_unknown_choice_names_the_key_and_the_choices(tmp_path, key):
    cfg = compose_cfg(tmp_path, [f"++{key}=no_such_value"])  # ++: some keys are only in the schema
    shown = ", ".join("null" if a is None else a for a in CHOICES[key])
    with pytest.raises(ReptopoError) as err:
        validate_config(cfg)
    assert str(err.value) == f"config key {key}: 'no_such_value' is not one of: {shown}"


@pytest.mark.parametrize("key", sorted(LIST_CHOICES))
def test_unknown_list_item_is_rejected(tmp_path, key):
    cfg = compose_cfg(tmp_path, [f"{key}=[{LIST_CHOICES[key][0]},pca]"])
    with pytest.raises(ReptopoError, match=f"config key {key}: 'pca' is not one of"):
        validate_config(cfg)


@pytest.mark.parametrize("device, ok", [("auto", True), ("cpu", True), ("torch-cpu", True),
                                        ("cuda", True), ("cuda:1", True), ("gpu", False),
                                        ("cuda:", False), ("cpu ", False)])
def test_phdim_device(tmp_path, device, ok):
    cfg = compose_cfg(tmp_path, [f"topology.phdim.device='{device}'"])
    if ok:
        assert validate_config(cfg).topology.phdim.device == device
    else:
        with pytest.raises(ReptopoError, match="config key topology.phdim.device"):
            validate_config(cfg)


@pytest.mark.parametrize("override, message", [
    ("data.mean=[0.5,0.5,0.5]", "config key data.mean: 3 values for data.in_chans=1 (expected one per image channel)"),
    ("data.std=[]", "config key data.std: 0 values for data.in_chans=1"),
    ("data.std=[0.0]", "config key data.std: [0.0] has a value <= 0"),
    ("probe.pattern='layer['", "config key probe.pattern: 'layer[' is not a valid regex"),
    ("model.blocks='(a|b'", "config key model.blocks: '(a|b' is not a valid regex"),
])
def test_cross_key_values(tmp_path, override, message):
    cfg = compose_cfg(tmp_path, ["data=fashion_mnist", override])
    with pytest.raises(ReptopoError) as err:
        validate_config(cfg)
    assert str(err.value).startswith(message)


def test_choices_match_the_code_that_reads_them():
    from reptopo import datasets, models
    from reptopo.topology import intrinsic_dimension
    import numpy as np

    assert set(CHOICES["model.family"]) == set(models.FAMILIES)
    assert set(CHOICES["data.kind"]) == set(datasets.KINDS)
    X = np.random.default_rng(0).normal(size=(200, 3))
    for method in LIST_CHOICES["topology.intrinsic"]:
        assert 1.5 < intrinsic_dimension(X, method=method) < 4.5
