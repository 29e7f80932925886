"""Config values the types cannot check: fixed choices, per-channel normalization, regexes.

Every shipped config must pass; each kind of bad value must fail at once with one error naming
the key (a typo in a choice key used to mean "off" silently, e.g. no MinMax scaling of L_k)."""
from __future__ import annotations

import pytest

from conftest import CONF, compose_cfg
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.choices import CHOICES, LIST_CHOICES, allowed
from reptopo.runtime.schema import validate_config

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


@pytest.mark.parametrize("sizes, message", [
    ("[500]", "must be at least two strictly increasing subsample sizes"),
    ("[900,500]", "must be at least two strictly increasing subsample sizes"),
    ("[1,500]", "must be at least two strictly increasing subsample sizes"),
    ("[500,1000,5000]", "the largest size 5000 exceeds sample.size=3000"),
])
def test_phdim_sizes_are_checked_against_the_sample(tmp_path, sizes, message):
    cfg = compose_cfg(tmp_path, [f"topology.phdim.sizes={sizes}"])
    with pytest.raises(ReptopoError, match=f"config key topology.phdim.sizes: .*{message}"):
        validate_config(cfg)


def test_phdim_sizes_and_algorithm_reach_the_engine_and_only_sizes_the_fingerprint(tmp_path):
    import numpy as np

    from reptopo.analysis.layers import analyze_layer
    from reptopo.runtime.stamps import fingerprint

    base = compose_cfg(tmp_path)
    sized = compose_cfg(tmp_path, ["topology.phdim.sizes=[500,1000,2000,3000]"])
    tiled = compose_cfg(tmp_path, ["topology.phdim.algorithm=tiled"])
    assert validate_config(sized).topology.phdim.sizes == [500, 1000, 2000, 3000]
    # the engine choice computes the same tree (not in the fingerprint); explicit sizes are other numbers
    assert fingerprint(tiled, "homology") == fingerprint(base, "homology") != fingerprint(sized, "homology")
    X = np.random.default_rng(0).uniform(size=(3000, 3))
    labels = np.arange(3000) % 3
    res = analyze_layer(X, labels, validate_config(sized).topology, seed=0)
    assert res.phdim.sizes.tolist() == [500, 1000, 2000, 3000] and res.phdim.algorithm == "dense"
    res = analyze_layer(X, labels, validate_config(tiled).topology, seed=0)
    assert res.phdim.algorithm == "tiled" and res.phdim.sizes[0] == 500


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


def test_every_registered_choice_is_implemented(tmp_path):
    """Each choice in the one registry works in the code that reads it (the code takes its lists
    from the registry; this checks the implementations behind the names)."""
    import numpy as np
    from omegaconf import OmegaConf
    from torch import nn

    from reptopo.datasets.loaders import LOADERS
    from reptopo.datasets.synthetic import GENERATORS
    from reptopo.nets.vision import ACTIVATIONS, replace_activations
    from reptopo.topology import intrinsic_dimension

    def configs(group):
        return [OmegaConf.load(p) for p in sorted((CONF / group).glob("*.yaml"))]

    assert {c.family for c in configs("model") if "family" in c} == set(allowed("model.family"))
    assert {c.kind for c in configs("data")} == set(allowed("data.kind"))
    assert set(LOADERS) == set(allowed("data.loader"))
    assert set(GENERATORS) == set(allowed("data.generator"))
    from reptopo.paper.analyses import ANALYSES

    assert set(ANALYSES) == set(allowed("aggregate.analysis"))
    assert set(ACTIVATIONS) == set(allowed("model.activation"))
    for name in allowed("model.activation"):
        net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        assert replace_activations(net, name) == 1 and isinstance(net[1], ACTIVATIONS[name])
    from reptopo.topology.intrinsic import METHODS

    assert set(METHODS) == set(LIST_CHOICES["topology.intrinsic"])
    X = np.random.default_rng(0).normal(size=(200, 3))
    for method in LIST_CHOICES["topology.intrinsic"]:
        assert 1.5 < intrinsic_dimension(X, method=method) < 4.5


# ---------------------------------------------------------------- each value has one home

GROUPS = ("model", "data", "train", "probe", "sample", "attack", "topology", "tracking", "compare")


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if k == "defaults":
            continue
        if isinstance(v, dict) and v and not k.endswith("kwargs") and k not in ("sweeps", "labels"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _schema_defaults():
    from omegaconf import OmegaConf

    from reptopo.runtime.schema import ConfigSchema

    return _flat(OmegaConf.to_container(OmegaConf.structured(ConfigSchema)))


def _yaml_values():
    """{group: {file: flat raw values}} for every option file, and config.yaml as group ''."""
    from omegaconf import OmegaConf

    files = {"": {"config": _flat(OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml")))}}
    for g in GROUPS:
        files[g] = {p.stem: {f"{g}.{k}": v for k, v in _flat(OmegaConf.to_container(OmegaConf.load(p))).items()}
                    for p in sorted((CONF / g).glob("*.yaml"))}
    return files


def test_no_yaml_file_restates_a_schema_default():
    defaults = {k: v for k, v in _schema_defaults().items() if v != "???"}
    restated = [f"conf/{g + '/' if g else ''}{f}.yaml: {k}={v!r}"
                for g, files in _yaml_values().items() for f, values in files.items()
                for k, v in values.items() if k in defaults and defaults[k] == v]
    assert not restated, f"values with two homes (schema default and YAML): {restated}"


def test_keys_every_yaml_file_sets_have_no_schema_default():
    from omegaconf import OmegaConf

    defaults = _schema_defaults()
    for g, files in _yaml_values().items():
        own = [v for f, v in files.items() if not OmegaConf.load(CONF / g / f"{f}.yaml").get("defaults")] if g else \
            list(files.values())
        always = set.intersection(*(set(v) for v in own))
        doubled = sorted(k for k in always if k in defaults and defaults[k] != "???")
        assert not doubled, f"group {g or 'config.yaml'}: set in every file but defaulted in the schema too: {doubled}"


# ---------------------------------------------------------------- numeric ranges

def test_every_numeric_key_has_a_range():
    """A new int or float key without a range would pass any value: the schema must state one
    (tests/test_bad_input.py then generates its out-of-range cases)."""
    from dataclasses import fields, is_dataclass

    from reptopo.runtime.schema import ConfigSchema, ranged_keys

    def numeric(schema, prefix=""):
        for f in fields(schema):
            default = f.default_factory() if callable(getattr(f, "default_factory", None)) else None
            if is_dataclass(default):
                yield from numeric(type(default), f"{prefix}{f.name}.")
            elif str(f.type) in ("int", "float", "Optional[int]", "Optional[float]"):
                yield f"{prefix}{f.name}"

    keys = set(numeric(ConfigSchema))
    assert len(keys) >= 30 and keys == set(ranged_keys())


@pytest.mark.parametrize("rule, inside, outside", [
    (">= 1", [1, 2, 1e9], [0, 0.999, -1]), ("> 0", [1e-12, 3.0], [0, -1e-12]),
    ("[0, 1]", [0, 0.5, 1], [-0.01, 1.01]), ("[0, 2]", [0, 2], [3, -1]),
])
def test_range_rules(rule, inside, outside):
    from reptopo.runtime.schema import in_range

    assert all(in_range(v, rule) for v in inside) and not any(in_range(v, rule) for v in outside)


def test_out_of_range_value_is_one_line_naming_the_key(tmp_path):
    cfg = compose_cfg(tmp_path, ["train.lr=-1"])
    with pytest.raises(ReptopoError) as err:
        validate_config(cfg)
    assert str(err.value) == "config key train.lr: -1.0 is out of range; expected > 0"
