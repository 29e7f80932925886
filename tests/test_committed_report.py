"""The committed quick-scale report states the regime its own tables give: the floors, the seed
counts and the E4 zoo's range are recomputed here from reports/quick/*/tables and must read the
same in REPRODUCTION.md; and `make repro`'s models are E1's, so E1's floor covers them."""
from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import CONF, REPO, compose_cfg
from reptopo.paper.regime import check_regime
from reptopo.runtime.config import paper_experiments
from reptopo.runtime.schema import validate_config

QUICK = REPO / "reports" / "quick"


@pytest.mark.skipif(not (QUICK / "REPRODUCTION.md").is_file(), reason="no committed quick-scale report")
@pytest.mark.parametrize("exp", list(paper_experiments(CONF)))
def test_report_states_the_regime_of_its_tables(exp):
    md = (QUICK / "REPRODUCTION.md").read_text()
    regime = md.split("## Regime: the paper's setting and ours")[1].split("## Rules behind the verdicts")[0]
    train = pd.read_csv(QUICK / exp / "tables" / "train_metrics.csv")
    g = check_regime(exp, train)
    (row,) = [line for line in regime.splitlines() if line.startswith(f"| {exp} | ")]
    assert row.endswith(f"| {g['accuracy']} | {g['seeds']} | {'yes' if g['met'] else '**no**'} |")
    (checks,) = [line for line in regime.splitlines() if line.startswith(f"- {exp}: ")]
    for c in g["checks"]:
        assert f"{c['requirement']}: {c['measured']} ({'met' if c['met'] else 'NOT met'})" in checks
    assert train["test_acc"].between(0, 1).all() and {"label", "seed"} <= set(train.columns)


def test_make_repro_trains_e1s_models(tmp_path):
    """The default pipeline's checkpoints are trained exactly as E1's (same model, data and train
    config), so the E1 floor (>= 0.90 on Fashion-MNIST) is make repro's floor too."""
    for model in ("resnet_small", "vgg_small"):
        default = validate_config(compose_cfg(tmp_path, ["experiment=default", f"model={model}", "data=fashion_mnist"]))
        e1 = validate_config(compose_cfg(tmp_path, ["experiment=e1_quick", f"model={model}", "data=fashion_mnist"]))
        assert default.seed == e1.seed == e1.seeds[0]
        for key in ("model", "data", "train"):
            assert OmegaConf.to_container(default[key]) == OmegaConf.to_container(e1[key]), (model, key)
