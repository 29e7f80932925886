"""Every paper experiment end to end at a tiny size (real training, attacks, homology, Hydra
multiruns, aggregate with finding checks), then the REPRODUCTION report built from them. Two
training seeds (the quick scale's seed axis, at 2 instead of 3), so every verdict is also checked
per seed and on the seed means, and the compare stage pairs runs seed by seed."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import CONF, FMNIST_ROOT, REPO, assert_png, compose_cfg, run_cli
from reptopo.runtime.config import paper_experiments
from reptopo.topology import knn_betti_numbers

pytestmark = pytest.mark.e2e

EXPERIMENTS = list(paper_experiments(CONF))
TINY = ["data.train_size=256", "data.val_size=64", "data.test_size=150",
        "sample.size=120", "topology.phdim.n_start=50", "topology.phdim.n_step=25",
        "topology.lifespans.max_per_class=40", "topology.lifespans.global_max_points=120", "topology.betti.num=20"]
SEEDS = ["seeds=[0,1]"]  # E4 keeps its one seed (its zoo's models are its replicates)
COMPARED = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["compare_experiment"]["matrix"]["name"]
VERDICTS = {"reproduced", "partly", "not reproduced", "not measured"}


@pytest.fixture(scope="module")
def paper_root(tmp_path_factory):
    if not FMNIST_ROOT.is_dir():
        pytest.skip("Debian dataset-fashion-mnist not installed (make setup installs it)")
    root = tmp_path_factory.mktemp("paper")
    for exp in EXPERIMENTS:
        tracking = "tracking=sqlite" if exp == "e1" else "tracking=none"
        # E4's zoo varies the epochs itself (1 or 3): a command-line value would apply to every job.
        epochs = [] if exp == "e4" else ["train.max_epochs=1"]
        seeds = [] if exp == "e4" else SEEDS
        res = run_cli("experiment", f"experiment={exp}_quick", f"paths.root={root}", tracking, *TINY, *epochs, *seeds,
                      cwd=root)
        assert res.returncode == 0, f"{exp}:\n{res.stderr[-5000:]}"
        if exp in COMPARED:  # dvc stage compare_experiment@<exp>
            res = run_cli("compare", f"experiment={exp}_quick", f"paths.root={root}", tracking, *TINY, *SEEDS, cwd=root)
            assert res.returncode == 0, f"compare {exp}:\n{res.stderr[-5000:]}"
    res = run_cli("reproduction", "scale=quick", f"paths.root={root}", "tracking=none", cwd=root)
    assert res.returncode == 0, res.stderr[-4000:]
    return root


def reports(root, exp):
    return root / "reports" / "quick" / exp


def findings(root, exp):
    return json.loads((reports(root, exp) / "tables" / "findings.json").read_text())


def runs_of(root, exp):
    return sorted(pd.read_csv(reports(root, exp) / "tables" / "summary.csv")["run"].unique())


def test_every_experiment_reports_computed_findings(paper_root):
    ids = {}
    for exp in EXPERIMENTS:
        found = findings(paper_root, exp)
        assert found and all(f["verdict"] in VERDICTS and f["measured"] and f["claim"] for f in found)
        # Every finding checked per seed (E4: its one seed) with verdicts of the same kinds.
        want = ["0"] if exp == "e4" else ["0", "1"]
        assert all(sorted(f["seeds"]) == want and {v["verdict"] for v in f["seeds"].values()} <= VERDICTS for f in found)
        train = pd.read_csv(reports(paper_root, exp) / "tables" / "train_metrics.csv")
        assert list(train.columns[:5]) == ["run", "label", "seed", "model", "dataset"]
        assert sorted(train["seed"].unique().tolist()) == [int(s) for s in want]
        ids[exp] = [f["id"] for f in found]
        timing = json.loads((reports(paper_root, exp) / "timing.json").read_text())
        assert timing["runs"] == len(runs_of(paper_root, exp)) and timing["wall_seconds"] > 0
        assert set(timing["stage_seconds"]) == {"train", "activations", "homology", "aggregate"}
        assert_png(reports(paper_root, exp) / "figures" / "phdim_vs_depth.png")
    assert ids == {"e1": ["1", "2", "A1"], "e2": ["6", "1b"], "e3": ["3"], "e4": ["4"], "e5": ["5"],
                   "e7": ["1T", "2T"], "naitzat": ["N1", "N2"]}


def test_reproduction_report_is_built_from_the_findings(paper_root):
    md = (paper_root / "reports" / "quick" / "REPRODUCTION.md").read_text()
    table = pd.read_csv(paper_root / "reports" / "quick" / "findings.csv", dtype={"id": str})
    for exp in EXPERIMENTS:
        for f in findings(paper_root, exp):
            row = table[(table.id == f["id"]) & (table.experiment == exp)].iloc[0]
            assert row.verdict == f["verdict"] and row.measured == f["measured"]
            assert f"| {f['id']} | {exp} |" in md
            n = len(f["seeds"])
            assert row.seeds.startswith(f"reproduced in ") and f" of {n} seed" in row.seeds
            assert row.seeds.endswith(f"(mean: {f['verdict']})") and f"Finding {f['id']} per seed (" in md
        assert f"| {exp} |" in md.split("## Wall time per stage")[1]  # a timing row per experiment
        assert f"]({exp}/figures/" in md  # figures linked relative to the report
    # The regime: one row per experiment, computed; tiny runs meet no floor of the quick scale.
    regime = md.split("## Regime: the paper's setting and ours")[1].split("## Rules behind the verdicts")[0]
    for exp in EXPERIMENTS:
        assert f"\n| {exp} | " in regime and f"\n- {exp}: " in regime
    assert "| 2 | **no** |" in regime and "NOT met" in regime
    # Every linked figure exists.
    for link in [l.split("](")[1].rstrip(")") for l in md.splitlines() if l.startswith("![")]:
        assert (paper_root / "reports" / "quick" / link).is_file(), link
    # What the runs were made with, from their stamps: CPU, threads, libraries, code.
    from importlib import metadata

    made = md.split("## Made with")[1].split("## Experiments")[0]
    prov = json.loads((paper_root / "reports" / "quick" / "provenance.json").read_text())
    assert prov["machines"] and all(m["cpu"] and m["threads"] >= 1 for m in prov["machines"])
    assert {"train", "activations", "homology", "compare"} <= {s for m in prov["machines"] for s in m["outputs"]}
    assert prov["libraries"]["torch"] == [metadata.version("torch")] and "giotto-ph" in prov["libraries"]
    assert f"- CPU {prov['machines'][0]['cpu']} (" in made and f"torch {metadata.version('torch')}" in made


def test_compared_pairs_and_k1_reach_the_report(paper_root):
    md = (paper_root / "reports" / "quick" / "REPRODUCTION.md").read_text()
    table = pd.read_csv(paper_root / "reports" / "quick" / "findings.csv", dtype={"id": str})
    (k1,) = json.loads((reports(paper_root, "e1") / "compare" / "findings.json").read_text())
    assert k1["id"] == "K1" and k1["verdict"] in VERDICTS and set(k1["values"]) == {"vgg_vs_resnet"}
    assert sorted(k1["seeds"]) == ["0", "1"] and all(set(v["values"]) == {"vgg_vs_resnet"} for v in k1["seeds"].values())
    row = table[table.id == "K1"].iloc[0]
    assert row.experiment == "e1" and row.verdict == k1["verdict"] and f"| K1 | e1 |" in md
    want = {"e1": ["vgg_vs_resnet"], "e3": [f"{a}_vs_relu" for a in ("silu", "tanh", "relu6", "sigmoid", "elu")],
            "e7": ["vit_cls_vs_mean", "minilm_cls_vs_mean", "bert_scratch_cls_vs_mean", "minilm_finetuned_vs_bert_scratch"]}
    assert sorted(want) == sorted(COMPARED)
    for exp, pairs in want.items():
        got = pd.read_csv(reports(paper_root, exp) / "compare" / "pairs.csv")
        # One row per pair and seed; E7's text models have one seed, so their pairs too.
        seeds = {p: [0] if ("minilm" in p or "bert" in p) else [0, 1] for p in pairs}
        assert list(zip(got["pair"], got["seed"])) == [(p, s) for p in pairs for s in seeds[p]]
        summary = pd.read_csv(reports(paper_root, exp) / "tables" / "summary.csv").drop_duplicates("run")
        label, seed = dict(zip(summary["run"], summary["label"])), dict(zip(summary["run"], summary["seed"]))
        assert [label[r] for r in got["run_a"]] == got["label_a"].tolist()  # the runs the labels name
        assert [seed[r] for r in got["run_a"]] == [seed[r] for r in got["run_b"]] == got["seed"].tolist()
        for pair in pairs:
            for s in seeds[pair]:
                assert_png(reports(paper_root, exp) / "compare" / f"{pair}-seed{s}" / "figures" / "cka.png")
            assert f"| {pair} |" in md and f"({exp}/compare/{pair}-seed0/figures/cka.png)" in md
    e3 = pd.read_csv(reports(paper_root, "e3") / "compare" / "pairs.csv")
    assert (e3["label_b"] == "relu").all() and e3["mean_diagonal_cka"].between(0, 1).all()


def test_runs_are_shared_where_the_config_is_the_same(paper_root):
    e1, e2 = runs_of(paper_root, "e1"), runs_of(paper_root, "e2")
    assert len(e1) == 4 and len(e2) == 8 and set(e1) < set(e2)  # 2 models (x 2 datasets) x 2 seeds
    # E3 trains with the default recipe (quick scale: 3 epochs to E1's 2). Here every experiment
    # trains one epoch, so E3's ReLU network is E1's VGG config, and so E1's very runs.
    e3 = pd.read_csv(reports(paper_root, "e3") / "tables" / "summary.csv").drop_duplicates("run")
    relu = set(e3[e3["label"] == "relu"]["run"])
    assert len(relu) == 2 and relu == {r for r in e1 if r.startswith("vgg_small-")}
    # A shared run is labelled by each experiment its own way (E1: model; E2: model and data).
    labels = {exp: pd.read_csv(reports(paper_root, exp) / "tables" / "summary.csv").groupby("run")["label"].first()
              for exp in ("e1", "e2")}
    assert sorted(set(labels["e1"])) == ["resnet_small", "vgg_small"]
    assert sorted(set(labels["e2"])) == ["resnet_small fashion_mnist", "resnet_small mnist_5k",
                                         "vgg_small fashion_mnist", "vgg_small mnist_5k"]
    e5 = json.loads((reports(paper_root, "e5") / "timing.json").read_text())
    assert e5["runs"] == 22 and e5["checkpoints"] == 2  # one checkpoint per seed serves every eps
    e7 = json.loads((reports(paper_root, "e7") / "timing.json").read_text())
    assert e7["runs"] == 8 and e7["checkpoints"] == 4  # the ViT per seed; MiniLM and BERT one seed


def test_e3_e4_e5_e7_naitzat_tables(paper_root):
    labels = pd.read_csv(reports(paper_root, "e3") / "tables" / "summary.csv")["label"].unique()
    assert len(pd.read_csv(reports(paper_root, "e3") / "tables" / "train_metrics.csv")) == 12
    assert sorted(labels) == ["elu", "relu", "relu6", "sigmoid", "silu", "tanh"]

    zoo = pd.read_csv(reports(paper_root, "e4") / "tables" / "zoo.csv")
    assert len(zoo) == 12 and zoo["label"].nunique() == 12 and zoo["test_acc"].between(0, 1).all()
    corr = findings(paper_root, "e4")[0]["values"]["L0"]
    assert corr["pearson_lo"] <= corr["pearson"] <= corr["pearson_hi"]
    assert_png(reports(paper_root, "e4") / "figures" / "zoo_generalization.png")

    attack = pd.read_csv(reports(paper_root, "e5") / "tables" / "attack.csv")
    eps = [0.0, 0.005, 0.015, 0.025, 0.035, 0.045, 0.055, 0.065, 0.075, 0.085, 0.095]
    assert attack.sort_values(["seed", "eps"])["eps"].tolist() == eps * 2 and attack["seed"].tolist() == [0] * 11 + [1] * 11
    assert attack["macro_f1"].between(0, 1).all() and (attack["target"] == 8).all()
    assert_png(reports(paper_root, "e5") / "figures" / "attack_lifespans.png")

    # E7: CLS and masked-mean pooling of the same checkpoints, recorded per layer.
    for run in runs_of(paper_root, "e7"):
        meta = json.loads((paper_root / "data" / "exp" / "quick" / "activations" / run / "meta.json").read_text())
        pools = {l["pooling"] for l in meta["layers"][:-1]}
        assert pools == {meta["probe"]["token_pooling"]} and pools <= {"cls", "mean"}

    cb = pd.read_csv(reports(paper_root, "naitzat") / "tables" / "class_betti.csv")
    assert cb["run"].nunique() == 12 and set(cb["class"]) == {0, 1} and set(cb["seed"]) == {0, 1}
    assert (cb["betti_0"] >= 1).all()
    # The table holds what knn_betti_numbers gives on that run's stored activations.
    topo = compose_cfg(paper_root, ["experiment=naitzat_quick", *TINY]).topology
    row = cb[(cb["layer_index"] == 1) & (cb["class"] == 1)].iloc[0]
    acts = paper_root / "data" / "exp" / "quick" / "activations" / row["run"]
    X = np.load(acts / "layer_01.npy")
    rows = np.flatnonzero(np.load(acts / "labels.npy") == 1)[: topo.class_betti.max_per_class]
    expected = knn_betti_numbers(X[rows].astype(np.float64), k=topo.class_betti.k, maxdim=topo.maxdim,
                                 min_hops=topo.class_betti.min_hops)
    assert [row["betti_0"], row["betti_1"]] == expected.tolist()[:2]
    assert_png(reports(paper_root, "naitzat") / "figures" / "class_betti.png")


def test_findings_reach_mlflow(paper_root):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{paper_root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("reptopo-e1")
    agg = client.search_runs([exp.experiment_id], "tags.stage = 'aggregate'")
    assert agg
    for f in findings(paper_root, "e1"):  # each finding's verdict, as computed, is a run tag
        assert agg[0].data.tags[f"finding_{f['id']}"] == f["verdict"]


def test_reproduction_report_names_a_missing_experiment(tmp_path):
    res = run_cli("reproduction", "scale=quick", f"paths.root={tmp_path}",
                  "tracking=none", cwd=tmp_path)
    assert res.returncode == 2
    assert "reports/quick/e1/tables/findings.json is missing" in res.stderr
    assert not (tmp_path / "reports" / "quick" / "REPRODUCTION.md").exists()


def test_experiment_without_sweeps_is_one_clear_error(tmp_path):
    res = run_cli("experiment", "experiment=tiny", f"paths.root={tmp_path}", "tracking=none", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("reptopo experiment: error: experiment 'tiny' defines no sweeps")


def test_verify_reruns_an_experiment_on_its_pool_and_finds_the_same_numbers(paper_root, tmp_path):
    """make verify's rerun path (experiment, compare and reproduction stages launched in turn) on a
    warm pool: every run and pair is reused, so every verdict and number comes out the same."""
    import shutil

    reference = tmp_path / "reference"
    shutil.copytree(paper_root / "reports" / "quick", reference)
    res = run_cli("verify", "scale=quick", f"verify.reference={reference}", "verify.experiments=[e1]",
                  f"paths.root={paper_root}", "tracking=none", *TINY, "train.max_epochs=1", *SEEDS, cwd=paper_root)
    assert res.returncode == 0, res.stderr[-5000:]
    out = res.stdout + res.stderr
    assert "reptopo compare experiment=e1_quick" in out and "reptopo reproduction scale=quick" in out  # what ran
    table = pd.read_csv(paper_root / "reports" / "quick" / "verify.csv", dtype={"id": str})
    assert table["id"].tolist() == ["1", "2", "A1", "K1"] and not table["verdict_changed"].any()
    assert (table["n_values"] > 0).all() and (table["max_rel_change"] == 0).all()
