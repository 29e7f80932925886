"""Training seeds as replicates: per-seed and seed-mean verdicts, seeded figures, the regime
(accuracy floors, seeds, the E4 zoo) and the compare stage's pairs seed by seed. Known answers on
small hand-made tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reptopo.analysis import figures
from reptopo.analysis.tables import RunTables, combine_runs, legend_column, with_config
from reptopo.paper import findings as fnd
from reptopo.paper.analyses import analyze, compare_findings_with_seeds
from reptopo.paper.regime import FLOORS, accuracy_by_config, check_regime
from reptopo.paper.report import ExperimentResults, reproduction_report
from reptopo.runtime.errors import ReptopoError
from reptopo.stages.compare import resolve_pairs
from reptopo.stages.experiment import with_seed_axis

HUNCH = [12.0, 18.0, 15.0, 9.0, 3.0]   # rises then falls: finding 2 reproduced
RISE = [3.0, 9.0, 15.0, 18.0, 19.0]    # rises only: not reproduced


def _run(name, label, seed, phdim, acc=0.9, model="m", dataset="d"):
    n = len(phdim)
    summary = pd.DataFrame({"layer_index": range(n), "layer": [f"l{i}" for i in range(n)],
                            "depth": [(i + 1) / n for i in range(n)], "label": label, "model": model,
                            "dataset": dataset, "phdim": phdim, "twonn": phdim, "L0_local": [10.0] * (n - 1) + [1.0],
                            "L1_local": [2.0] * (n - 1) + [0.1]})
    betti = pd.DataFrame({"layer_index": [0], "layer": ["l0"], "depth": [0.2], "filtration": [0.0], "betti_0": [1]})
    return RunTables(name=name, label=label, seed=seed, summary=summary, betti=betti, train={"test_acc": acc})


def test_combine_tags_seeds_and_the_seed_means_are_row_by_row_averages():
    runs = [_run("a0", "A", 0, HUNCH, 0.90), _run("a1", "A", 1, RISE, 0.94), _run("b0", "B", 0, HUNCH, 0.80),
            _run("b1", "B", 1, HUNCH, 0.84)]
    c = combine_runs(runs)
    assert c.seeds == [0, 1]
    assert list(c.train.columns[:5]) == ["run", "label", "seed", "model", "dataset"]
    assert c.train.set_index("run")["seed"].to_dict() == {"a0": 0, "a1": 1, "b0": 0, "b1": 1}
    assert sorted(c.for_seed(1).summary["run"].unique()) == ["a1", "b1"] and len(c.for_seed(1).train) == 2
    m = c.seed_means()
    assert sorted(m.summary["run"].unique()) == ["mean A m d", "mean B m d"]
    a = m.summary[m.summary["run"] == "mean A m d"].sort_values("layer_index")
    np.testing.assert_allclose(a["phdim"], (np.array(HUNCH) + np.array(RISE)) / 2)
    assert m.train.set_index("run")["test_acc"].to_dict() == pytest.approx({"mean A m d": 0.92, "mean B m d": 0.82})
    # Seeds of one label are one curve: the legend keeps the labels.
    assert legend_column(with_config(c.summary)) == "label"


def test_each_seed_and_the_means_get_the_same_rule():
    # Seed 0 rises and falls for both labels; seed 1 only for B. The mean of A (HUNCH + RISE) / 2
    # = [7.5, 13.5, 15, 13.5, 11] peaks inside but keeps 73 % at the logits: <= 0.75 x, reproduced.
    runs = [_run("a0", "A", 0, HUNCH), _run("a1", "A", 1, RISE), _run("b0", "B", 0, HUNCH), _run("b1", "B", 1, HUNCH)]
    found, figs, _ = analyze("e1", "e1", combine_runs(runs))
    f2 = next(f for f in found if f.id == "2")
    assert {s: v["verdict"] for s, v in f2.seeds.items()} == {"0": fnd.REPRODUCED, "1": fnd.PARTLY}
    assert f2.verdict == fnd.REPRODUCED and "mean A m d" in f2.values
    assert f2.seed_summary == "reproduced in 1 of 2 seeds, partly in 1 (mean: reproduced)"
    assert f2.as_dict()["seeds"]["1"]["measured"].startswith("A: 3.0 -> peak 19.0")
    # The means' rule is not the vote of the seeds: the same curves with a flatter mean fail it.
    flat = [_run("a0", "A", 0, HUNCH), _run("a1", "A", 1, [3.0, 9.0, 15.0, 18.0, 30.0])]
    f2 = next(f for f in analyze("e1", "e1", combine_runs(flat))[0] if f.id == "2")
    assert f2.verdict == fnd.NOT and f2.seed_summary == "reproduced in 1 of 2 seeds, not reproduced in 1 (mean: not reproduced)"
    # One seed: no means, the seed's own verdict.
    one = analyze("e1", "e1", combine_runs(runs[:1]))[0]
    assert one[1].seed_summary == "reproduced in 1 of 1 seed (mean: reproduced)"


def test_seeded_depth_curves_draw_thin_seeds_a_bold_mean_and_a_band():
    df = pd.DataFrame({"label": ["A"] * 6, "seed": [0, 0, 0, 1, 1, 1], "depth": [0.3, 0.6, 1.0] * 2,
                       "phdim": [1.0, 3.0, 2.0, 3.0, 5.0, 2.0]})
    fig = figures.depth_curves(df, "phdim", "PHdim", "t", group="label")
    ax = fig.axes[0]
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths == [0.8, 0.8, 2.4]
    bold = max(ax.lines, key=lambda line: line.get_linewidth())
    np.testing.assert_allclose(bold.get_ydata(), [2.0, 4.0, 2.0])
    (band,) = ax.collections
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(4.0 + np.std([3.0, 5.0], ddof=1))
    assert "mean of 2 seeds" in ax.get_legend().get_texts()[0].get_text()
    figures.save(fig, "/dev/null")


def test_regime_floors_seeds_and_zoo():
    train = pd.DataFrame({"run": [f"r{i}" for i in range(6)], "label": ["vgg"] * 3 + ["res"] * 3,
                          "seed": [0, 1, 2] * 2, "model": ["vgg"] * 3 + ["res"] * 3, "dataset": "fashion_mnist",
                          "test_acc": [0.91, 0.92, 0.93, 0.90, 0.905, 0.899]})
    g = check_regime("e1", train)
    (floor, seeds) = g["checks"]
    assert not floor["met"] and "lowest 0.899 (res, seed 2) of 6 runs" in floor["measured"] and seeds["met"]
    assert not g["met"] and g["seeds"] == "3" and g["accuracy"] == "0.899-0.930"
    assert check_regime("e1", train.assign(test_acc=0.95))["met"]
    assert not check_regime("e1", train[train["seed"] < 2].assign(test_acc=0.95))["met"]  # 2 seeds < 3
    by = accuracy_by_config(train).set_index("label")
    assert by.loc["res", "seeds"] == 3 and by.loc["res", "lowest"] == 0.899
    assert by.loc["vgg", "mean"] == pytest.approx(0.92) and by.loc["vgg", "sd"] == pytest.approx(0.01)
    zoo = pd.DataFrame({"run": [f"z{i}" for i in range(12)], "label": [f"z{i}" for i in range(12)], "seed": 0,
                        "model": ["resnet8"] * 6 + ["resnet14"] * 6, "dataset": "fashion_mnist",
                        "test_acc": np.linspace(0.82, 0.90, 12)})
    assert check_regime("e4", zoo)["met"]
    narrow = check_regime("e4", zoo.assign(test_acc=np.linspace(0.85, 0.90, 12)))
    assert [c["met"] for c in narrow["checks"]] == [True, True, True, False]  # spread 0.05 < 0.06
    assert not check_regime("e4", zoo.assign(model="resnet8"))["met"]  # one depth
    assert not check_regime("e4", zoo.iloc[:11])["met"]  # 11 models
    assert {f.experiment for f in FLOORS} == {"e1", "e2", "e3", "e4", "e5", "e7", "naitzat"}


def test_report_gives_the_seed_tally_per_seed_values_and_the_regime():
    f = {"id": "2", "experiment": "e1", "claim": "c", "paper": "p", "measured": "mean m", "verdict": fnd.REPRODUCED,
         "rule": "r", "seeds": {"0": {"verdict": fnd.REPRODUCED, "measured": "m0", "values": {}},
                                "1": {"verdict": fnd.NOT, "measured": "m1", "values": {}}}}
    train = pd.DataFrame({"run": ["a", "b"], "label": ["vgg", "vgg"], "seed": [0, 1], "model": "vgg",
                          "dataset": "fashion_mnist", "test_acc": [0.91, 0.95]})
    md, table = reproduction_report("quick", [ExperimentResults("e1", "E1", [f], train=train)])
    assert table.loc[0, "seeds"] == "reproduced in 1 of 2 seeds, not reproduced in 1 (mean: reproduced)"
    assert table.loc[0, "seed_verdicts"] == "0: reproduced; 1: not reproduced"
    assert "| **reproduced** | reproduced in 1 of 2 seeds, not reproduced in 1 (mean: reproduced) |" in md
    assert "| 1 | NOT reproduced | m1 |" in md and "| mean | reproduced | mean m |" in md
    assert "| vgg (vgg, fashion_mnist) | 2 | 0.930 | 0.028 | 0.910 |" in md
    regime = md.split("## Regime")[1].split("## Rules")[0]
    assert "| e1 | VGG-like and ResNet-like CNNs | CIFAR-10 |" in regime and "| 2 | **no** |" in regime
    assert ">= 3 training seeds per configuration: 2 to 2 over 1 configurations (NOT met)" in regime
    assert "Rule changes since" in md and "- none" in md


def test_seed_axis_is_added_to_sweeps_that_do_not_set_a_seed():
    assert with_seed_axis(["model=a"], [0, 1, 2]) == ["model=a", "seed=0,1,2"]
    assert with_seed_axis(["model=a", "seed=4"], [0, 1]) == ["model=a", "seed=4"]
    assert with_seed_axis(["model=a"], None) == ["model=a"]


def test_pairs_resolve_seed_by_seed(tmp_path):
    csv = tmp_path / "summary.csv"
    pd.DataFrame({"run": ["a0", "a1", "b0", "b1"], "label": ["A", "A", "B", "B"], "seed": [0, 1, 0, 1]}).to_csv(csv)
    assert resolve_pairs(csv, {"ab": ["A", "B"]}, "e1") == {"ab": {0: ("a0", "b0", "A", "B"), 1: ("a1", "b1", "A", "B")}}
    pd.DataFrame({"run": ["a0", "a1", "b0"], "label": ["A", "A", "B"], "seed": [0, 1, 0]}).to_csv(csv)
    with pytest.raises(ReptopoError, match=r"'A' has seeds \[0, 1\] but 'B' has \[0\]"):
        resolve_pairs(csv, {"ab": ["A", "B"]}, "e1")
    pd.DataFrame({"run": ["a0", "a9", "b0"], "label": ["A", "A", "B"], "seed": [0, 0, 0]}).to_csv(csv)
    with pytest.raises(ReptopoError, match="label 'A' names 2 runs of seed 0"):
        resolve_pairs(csv, {"ab": ["A", "B"]}, "e1")


def test_k1_per_seed_and_on_the_mean_cka():
    d = [0.25, 0.5, 0.75, 1.0]
    diag = np.eye(4) + 0.1
    anti = np.fliplr(np.eye(4)) + 0.1
    # Seed 0 matches layers at equal depth, seed 1 reversed; the mean matrix ties every row, and
    # argmax takes the first tie, so the mean is not reproduced.
    found = compare_findings_with_seeds("e1", "e1", {0: {"p": (diag, d, d)}, 1: {"p": (anti, d, d)}})
    (k1,) = found
    assert {s: v["verdict"] for s, v in k1.seeds.items()} == {"0": fnd.REPRODUCED, "1": fnd.NOT}
    assert k1.verdict == fnd.NOT
    (same,) = compare_findings_with_seeds("e1", "e1", {0: {"p": (diag, d, d)}, 1: {"p": (diag * 2, d, d)}})
    assert same.verdict == fnd.REPRODUCED and same.seed_summary == "reproduced in 2 of 2 seeds (mean: reproduced)"
    json.dumps(same.as_dict())  # findings.json stays JSON


@pytest.mark.parametrize("seeds", ["[-1]", "[0,0]", "[]"])
def test_bad_seed_lists_are_one_clear_error(tmp_path, seeds):
    from conftest import compose_cfg
    from reptopo.runtime.schema import validate_config

    with pytest.raises(ReptopoError, match=r"config key seeds: .* expected distinct training seeds >= 0"):
        validate_config(compose_cfg(tmp_path, [f"seeds={seeds}"]))
    assert validate_config(compose_cfg(tmp_path, ["seeds=[0,2]"])).seeds == [0, 2]


def test_runs_are_read_in_sweep_and_job_order_whatever_order_they_finished(tmp_path):
    """Parallel jobs (hydra/launcher=local) append their runs as they finish; the experiment's
    aggregate sees them in sweep order, then job order, each run once."""
    import json

    from reptopo.stages.experiment import read_runs

    lines = [{"run": "b1", "sweep": "second", "job": 1}, {"run": "a2", "sweep": "first", "job": 2},
             {"run": "b0", "sweep": "second", "job": 0}, {"run": "a0", "sweep": "first", "job": 0},
             {"run": "a1", "sweep": "first", "job": 1}, {"run": "a0", "sweep": "second", "job": 2}]
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps({**r, "train": r["run"], "label": r["run"], "seed": 0}) + "\n" for r in lines))
    assert [r["run"] for r in read_runs(runs, "e0", ["first", "second"])] == ["a0", "a1", "a2", "b0", "b1"]
