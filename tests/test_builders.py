"""The pure builders behind the thin stages: arrays and DataFrames in, tables and text out.

Known answers: each table cell is the LayerResult value it came from; the long Betti table
round-trips to the engine's curves; labels, optional files and findings land where they should.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import CONF
from reptopo import topology
from reptopo.analysis.layers import analyze_layer
from reptopo.analysis.tables import (RunTables, aggregate_report, betti_arrays, combine_runs, homology_tables,
                                     layer_metrics, legend_column)
from reptopo.paper.findings import Finding
from reptopo.paper.report import ExperimentResults, reproduction_report
from reptopo.probing.sampling import pooling_of, sample_rows
from reptopo.runtime.errors import ReptopoError

TOPO = OmegaConf.load(CONF / "topology" / "paper.yaml")
TOPO.phdim.n_start, TOPO.phdim.n_step, TOPO.lifespans.max_per_class, TOPO.lifespans.global_max_points = 40, 20, 30, 90
TOPO.betti.num = 15


@pytest.fixture(scope="module")
def one_run():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 30)
    clouds = [rng.normal(size=(90, 5)), rng.normal(size=(90, 3)) * [1.0, 2.0, 0.5]]
    layers = [{"index": i, "name": f"layer{i}", "depth": (i + 1) / 2, "shape": list(X.shape)} for i, X in enumerate(clouds)]
    results = [analyze_layer(X, labels, TOPO, seed=0, layer=l["name"]) for X, l in zip(clouds, layers)]
    tables, grid_info, curves = homology_tables(layers, results, 90, int(TOPO.betti.num),
                                                {"label": "lbl", "model": "m", "dataset": "d"})
    return layers, results, tables, grid_info, curves


def test_homology_tables_carry_each_layer_result(one_run):
    layers, results, tables, grid_info, curves = one_run
    summary = tables["summary.csv"]
    assert list(summary.columns[:11]) == ["layer_index", "layer", "depth", "label", "model", "dataset", "n_samples",
                                          "n_features", "phdim", "phdim_std", "phdim_slope"]
    assert list(summary.columns[11:15]) == ["L0_local", "L0_global", "L1_local", "L1_global"]
    for row, r, l in zip(summary.itertuples(), results, layers):
        assert (row.phdim, row.L1_local, row.L0_global, row.twonn) == (r.phdim.dim, r.lifespans_local[1],
                                                                        r.lifespans_global[0], r.intrinsic["twonn"])
        assert row.n_features == l["shape"][1] and row.label == "lbl"
    grid = np.asarray(grid_info["values"])
    top = max(topology.max_finite_death(r.diagrams) for r in results)
    assert grid[0] == 0 and grid[-1] == pytest.approx(top) and len(grid) == 15 == grid_info["num"]
    np.testing.assert_array_equal(curves[1], topology.betti_curves(results[1].diagrams, grid))
    points = tables["phdim_points.csv"]
    assert len(points) == sum(r.phdim.E.size for r in results)
    np.testing.assert_array_equal(points[points.layer_index == 0]["E"], results[0].phdim.E.ravel())
    assert tables["class_betti.csv"].empty  # off in this protocol
    per_class = tables["lifespans_per_class.csv"]
    assert per_class[(per_class.layer_index == 1) & (per_class.dim == 0) & (per_class["class"] == 2)]["L"].item() \
        == results[1].lifespans_per_class[0][2]


def test_betti_table_round_trips_to_the_curves(one_run):
    layers, _, tables, grid_info, curves = one_run
    grid, back, names = betti_arrays(tables["betti.csv"])
    np.testing.assert_array_equal(grid, grid_info["values"])
    np.testing.assert_array_equal(back, curves)
    assert names == [l["name"] for l in layers]


def test_layer_metrics_are_rounded_per_layer(one_run):
    summary = one_run[2]["summary.csv"]
    metrics = layer_metrics(summary)
    assert set(metrics) == {"phdim", "L0_local", "L1_local"}
    assert metrics["phdim"]["layer1"] == round(summary["phdim"].iloc[1], 4)


def _run(name, label=None, train=True, attack=None, phdim=(1.0, 2.0)):
    summary = pd.DataFrame({"layer_index": [0, 1], "layer": ["a", "b"], "depth": [0.5, 1.0], "phdim": list(phdim)})
    betti = pd.DataFrame({"layer_index": [0, 0, 1, 1], "layer": ["a", "a", "b", "b"], "depth": [.5, .5, 1, 1],
                          "filtration": [0.0, 1.0] * 2, "betti_0": [3, 1, 2, 1], "betti_1": [0, 0, 1, 0]})
    return RunTables(name=name, summary=summary, betti=betti, label=label,
                     train={"test_acc": 0.9} if train else None, attack=attack,
                     per_class=pd.DataFrame({"layer_index": [0], "dim": [0], "class": [0], "L": [1.5]}))


def test_combine_runs_tags_rows_and_keeps_optional_files_optional():
    c = combine_runs([_run("r1", label="ReLU", attack={"eps": 0.1}), _run("r2", train=False)])
    assert c.summary["run"].tolist() == ["r1", "r1", "r2", "r2"]
    assert c.summary["label"].tolist() == ["ReLU", "ReLU", "r2", "r2"]  # no label: the run name
    assert c.train.to_dict("records") == [{"run": "r1", "label": "ReLU", "seed": -1, "test_acc": 0.9}]  # seed unknown
    assert c.attacks.to_dict("records") == [{"run": "r1", "eps": 0.1}]
    assert list(c.per_class.columns) == ["run", "layer_index", "dim", "class", "L"] and len(c.per_class) == 2
    assert c.class_betti.empty and set(c.betti) == {"r1", "r2"}
    assert legend_column(c.summary) == "label"
    assert legend_column(combine_runs([_run("r1", label="x"), _run("r2", label="x")]).summary) == "run"


def test_aggregate_report_lists_findings_runs_and_figures():
    c = combine_runs([_run("r1")])
    f = Finding(id="1", experiment="e1", claim="PHdim collapses", paper="yes", measured="0.3x", verdict="reproduced",
                rule="ratio < 0.25")
    md = aggregate_report("e1", "quick", ["r1"], [f], c.train, c.summary, ["phdim_vs_depth.png"])
    assert md.startswith("# reptopo report: experiment `e1` (quick scale)\n")
    assert "| 1 | PHdim collapses | 0.3x | **reproduced** | reproduced |" in md  # no seeds: the verdict
    assert "| r1 | r1 | a | 0.5 | 1 |" in md and "![phdim_vs_depth](../figures/phdim_vs_depth.png)" in md


def test_reproduction_report_counts_every_verdict():
    def finding(fid, verdict):
        return {"id": fid, "experiment": "x", "claim": f"claim {fid}", "paper": "p", "measured": "m",
                "verdict": verdict, "rule": f"rule {fid}"}

    exps = [ExperimentResults("e1", "E1 curves", [finding("1", "reproduced"), finding("2", "partly")],
                              timing={"runs": 2, "checkpoints": 2, "stage_seconds": {"train": 200.0}, "wall_seconds": 30},
                              train=pd.DataFrame({"test_acc": [0.91, 0.93]}), figures=["a.png", "betti_r.png"]),
            ExperimentResults("e2", "E2 data", [finding("3", "reproduced")])]
    md, table = reproduction_report("quick", exps)
    assert table["experiment"].tolist() == ["e1", "e1", "e2"] and table["id"].tolist() == ["1", "2", "3"]
    assert "Verdicts: partly: 1, reproduced: 2" in md
    assert "| e1 | 2 | 2 | 3.3 min | - | - | - | 30 s |" in md
    assert "### E1 curves" in md and "test accuracy 0.910-0.930" in md
    assert "![e1 a](e1/figures/a.png)" in md and "betti_r" not in md  # per-run Betti figures stay out
    with pytest.raises(ReptopoError, match="hold no findings"):
        reproduction_report("quick", [ExperimentResults("e1", "E1", [])])


def test_sample_rows_are_seeded_distinct_and_checked():
    rows = sample_rows(100, 30, seed=4)
    np.testing.assert_array_equal(rows, sample_rows(100, 30, seed=4))
    assert len(set(rows)) == 30 and rows.max() < 100 and not np.array_equal(rows, sample_rows(100, 30, seed=5))
    with pytest.raises(ReptopoError, match=r"sample.size=101 but the test split has 100 examples"):
        sample_rows(100, 101, seed=0, split="test")
    assert [pooling_of(s, "mean") for s in ([16, 7, 7], [12, 64], [10], None)] == ["gap", "mean", "none", "none"]
