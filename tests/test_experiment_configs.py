"""The paper experiments' configs: both scales compose, names share what they should, DVC agrees."""
from __future__ import annotations

import re

import pytest
import yaml

from conftest import CONF, REPO, compose_cfg
from reptopo.runtime.config import paper_experiments

# Derived from conf/experiment/ (every <name>_quick.yaml but scale_quick), as the code does.
EXPERIMENTS = list(paper_experiments(CONF))


def test_the_paper_experiments_are_derived_from_conf():
    assert EXPERIMENTS == ["e1", "e2", "e3", "e4", "e5", "e7", "naitzat"]
    assert paper_experiments(CONF)["e4"] == "E4 generalization (ResNet zoo)"


@pytest.mark.parametrize("scale", ["quick", "paper"])
@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_every_experiment_composes_at_both_scales(tmp_path, exp, scale):
    from reptopo.runtime.schema import validate_config

    cfg = validate_config(compose_cfg(tmp_path, [f"experiment={exp}_{scale}"]))
    assert cfg.scale == scale and cfg.experiment_name == exp and cfg.aggregate.analysis == exp
    assert cfg.sweeps and all(isinstance(o, str) and "=" in o for ov in cfg.sweeps.values() for o in ov)
    assert str(cfg.paths.reports_dir).endswith(f"reports/{scale}/{exp}")
    assert str(cfg.paths.data_dir).endswith(f"data/exp/{scale}")
    datasets = " ".join(o for ov in cfg.sweeps.values() for o in ov if o.startswith("data="))
    if scale == "paper" and exp in ("e1", "e2", "e3", "e4", "e5"):
        assert "cifar10" in datasets
    if scale == "quick":  # offline data only
        assert not re.search(r"cifar10|svhn|data=mnist\b|sst2|imdb", datasets)


def test_run_names_share_checkpoints_only_when_the_training_config_is_the_same(tmp_path):
    def names(*ov):
        cfg = compose_cfg(tmp_path, list(ov))
        return cfg.train_name, cfg.run_name

    e1 = names("experiment=e1_quick", "model=vgg_small", "data=fashion_mnist")
    e2 = names("experiment=e2_quick", "model=vgg_small", "data=fashion_mnist")
    assert e1 == e2  # E2 reuses E1's Fashion-MNIST runs
    assert names("experiment=e3_quick", "model=vgg_small", "data=fashion_mnist", "model.activation=relu") == e1  # and E3's ReLU runs
    assert names("experiment=e3_quick", "model=vgg_small", "data=fashion_mnist", "model.activation=silu")[0] != e1[0]
    eps = [names("experiment=e5_quick", "model=mobilenetv2", "data=fashion_mnist", f"attack.eps={e}")
           for e in (0.0, 0.005)]
    assert eps[0][0] == eps[1][0] and eps[0][1] != eps[1][1]  # one checkpoint, two activation dumps
    pools = [names("experiment=e7_quick", "model=vit_tiny", "data=fashion_mnist", f"probe={p}") for p in ("blocks", "blocks_mean")]
    assert pools[0][0] == pools[1][0] and pools[0][1] != pools[1][1]
    lr = [names("experiment=e4_quick", "model=cifar_resnet", "model.kwargs.depth=20", "data=fashion_mnist", f"train.lr={v}") for v in (0.003, 0.001)]
    assert lr[0][0] != lr[1][0]
    assert re.fullmatch(r"resnet20-fashion_mnist-[0-9a-f]{8}", lr[0][0])


def test_dvc_lists_exactly_the_experiments_of_conf():
    # DVC cannot glob a folder, so dvc.yaml spells the list out; it must be conf/experiment/'s.
    from reptopo.paper.analyses import ANALYSES

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert dvc["stages"]["experiment"]["matrix"]["name"] == EXPERIMENTS
    deps = dvc["stages"]["reproduction"]["deps"]
    assert [d.split("/")[2] for d in deps if d.startswith("reports/")] == EXPERIMENTS
    assert list(ANALYSES) == EXPERIMENTS  # every experiment has its finding checks
    for exp in EXPERIMENTS:
        for scale in ("quick", "paper"):
            assert (CONF / "experiment" / f"{exp}_{scale}.yaml").is_file()


def test_make_sweep_keeps_its_runs_apart_from_the_dvc_pipeline(tmp_path):
    # `make sweep` trains with other sizes: writing into data/ would replace DVC-tracked outputs.
    sweep = compose_cfg(tmp_path, ["experiment=sweep", "model=resnet_small", "data=fashion_mnist"])
    default = compose_cfg(tmp_path, ["experiment=default", "model=resnet_small", "data=fashion_mnist"])
    assert sweep.run_name == default.run_name  # same names, so the folders must differ
    for key in ("train_dir", "activations_dir", "homology_dir", "metrics_dir", "reports_dir"):
        mine, theirs = str(sweep.paths[key]), str(default.paths[key])
        assert mine != theirs and not mine.startswith(theirs)
    assert str(sweep.paths.data_dir) == f"{tmp_path}/data/sweep"


def _job_labels(tmp_path, exp: str, scale: str) -> list[str]:
    """run_label of every job of the experiment's sweeps (comma lists expanded as Hydra's basic sweeper does)."""
    import itertools

    cfg = compose_cfg(tmp_path, [f"experiment={exp}_{scale}"])
    labels = []
    for overrides in cfg.sweeps.values():
        choices = [[f"{o.split('=', 1)[0]}={v}" for v in o.split("=", 1)[1].split(",")] for o in overrides]
        for job in itertools.product(*choices):
            labels.append(str(compose_cfg(tmp_path, [f"experiment={exp}_{scale}", *job]).run_label))
    return labels


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_compared_pairs_name_runs_of_their_experiment(tmp_path, scale):
    # dvc.yaml's compare_experiment list is exactly the experiments with compare.pairs, and every
    # label of a pair is one job's run label (the compare stage resolves pairs by label).
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    with_pairs = [e for e in EXPERIMENTS if compose_cfg(tmp_path, [f"experiment={e}_{scale}"]).compare.pairs]
    assert dvc["stages"]["compare_experiment"]["matrix"]["name"] == with_pairs == ["e1", "e3", "e7"]
    for exp in with_pairs:
        labels = _job_labels(tmp_path, exp, scale)
        pairs = compose_cfg(tmp_path, [f"experiment={exp}_{scale}"]).compare.pairs
        for name, pair in pairs.items():
            assert len(pair) == 2 and all(labels.count(l) == 1 for l in pair), (exp, name, list(pair), labels)


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_paper_twins_name_the_quick_sweeps(exp):
    # An e*_paper.yaml includes its e*_quick.yaml and Hydra merges their `sweeps:` dicts: a sweep
    # named only in the quick file would run at the paper scale too (on the quick scale's data).
    # (A paper file without `sweeps:` runs the quick ones on its own data sizes: Naitzat.)
    quick = yaml.safe_load((CONF / "experiment" / f"{exp}_quick.yaml").read_text())["sweeps"]
    paper = yaml.safe_load((CONF / "experiment" / f"{exp}_paper.yaml").read_text()).get("sweeps", quick)
    assert set(paper) == set(quick), (exp, sorted(quick), sorted(paper))
