"""The real pipeline: `dvc repro` in a temp git repo on a tiny config, MLflow store, figures."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import DEFAULT_PIPELINE, REPO, _sh, assert_png

pytestmark = pytest.mark.e2e

RUNS = ["resnet_small-fashion_mnist", "vgg_small-fashion_mnist"]


def test_every_stage_output_exists(pipeline_repo):
    repo, *_ = pipeline_repo
    for run in RUNS:
        train = repo / "data/train" / run
        assert (train / "model.safetensors").stat().st_size > 10_000
        acts = repo / "data/activations" / run
        layers = sorted(acts.glob("layer_*.npy"))
        assert len(layers) == 3
        assert all(np.load(p).shape[0] == 200 for p in layers)
        assert np.load(acts / "labels.npy").shape == (200,)
        hom = repo / "data/homology" / run
        summary = pd.read_csv(hom / "summary.csv")
        assert summary["depth"].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
        assert np.isfinite(summary[["phdim", "L0_local", "L1_local", "L0_global", "L1_global"]].to_numpy()).all()
        assert (summary["phdim"] > 0.5).all()
        betti = pd.read_csv(hom / "betti.csv")
        assert len(betti) == 3 * 20 and {"filtration", "betti_0", "betti_1"} <= set(betti.columns)
        # H0 Betti curve starts at the number of points (all born at 0) and ends at 1 component.
        first_layer = betti[betti.layer_index == 0]
        assert first_layer["betti_0"].iloc[0] == 200 and first_layer["betti_0"].iloc[-1] == 1
        for png in ("betti_curves.png", "diagrams.png", "phdim_fit.png", "phdim_vs_depth.png"):
            assert_png(hom / "figures" / png)
        train_metrics = json.loads((repo / "data/metrics" / run / "train.json").read_text())
        assert train_metrics == json.loads((repo / "data/train" / run / "metrics.json").read_text())
        assert 0 <= train_metrics["test_acc"] <= 1 and train_metrics["n_parameters"] > 1000
    figs = repo / "reports/tiny/figures"
    for png in ["phdim_vs_depth.png", "lifespans_vs_depth.png", *[f"betti_{r}.png" for r in RUNS]]:
        assert_png(figs / png)
    table = pd.read_csv(repo / "reports/tiny/tables/summary.csv")
    assert sorted(table["run"].unique()) == RUNS and len(table) == 6


def _naive_linear_cka(X, Y):
    """Kornblith et al.'s definition, spelled out: HSIC with explicit centring matrices, float64."""
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = H @ (X @ X.T) @ H, H @ (Y @ Y.T) @ H
    return float(np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L)))


def test_compare_stage_output_is_the_cka_of_the_two_runs(pipeline_repo):
    repo, *_ = pipeline_repo
    a, b = "vgg_small-fashion_mnist", "resnet_small-fashion_mnist"  # params.yaml's compare_pair
    out = repo / "data/compare" / f"{a}--{b}"
    cka = pd.read_csv(out / "cka.csv", index_col="layer_a")
    layers = {r: json.loads((repo / "data/activations" / r / "meta.json").read_text())["layers"] for r in (a, b)}
    assert cka.index.tolist() == [l["name"] for l in layers[a]] and cka.columns.tolist() == [l["name"] for l in layers[b]]
    acts = {r: [np.load(repo / "data/activations" / r / l["file"]).astype(np.float64) for l in layers[r]] for r in (a, b)}
    want = np.array([[_naive_linear_cka(X, Y) for Y in acts[b]] for X in acts[a]])
    np.testing.assert_allclose(cka.to_numpy(), want, rtol=1e-6, atol=1e-9)
    diagonal = pd.read_csv(out / "diagonal.csv")
    assert diagonal["depth_a"].tolist() == diagonal["depth_b"].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert diagonal["cka"].tolist() == pytest.approx(np.diag(want).tolist(), rel=1e-6)
    assert (diagonal["rtd"] > 0).all() and diagonal[["overlap", "diagram_h0", "diagram_h1"]].notna().all().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_diagonal_cka"] == pytest.approx(np.diag(want).mean(), rel=1e-6)
    for png in ("cka.png", "cka_debiased.png", "overlap.png", "diagram_h0.png", "diagonal.png"):
        assert_png(out / "figures" / png)


def test_mlflow_store_holds_tracked_runs(pipeline_repo):
    from mlflow.tracking import MlflowClient

    repo, *_ = pipeline_repo
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("reptopo-tiny")
    assert exp is not None and exp.artifact_location.startswith("file://" + str(repo))
    runs = client.search_runs([exp.experiment_id], "tags.stage = 'homology'")
    assert sorted(r.data.tags["run_name"] for r in runs) == RUNS
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["model"] in ("resnet_small", "vgg_small") and r.data.tags["dataset"] == "fashion_mnist"
        assert len(r.data.tags["git_commit"]) >= 40
        hist = sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, "phdim"))
        assert [s for s, _ in hist] == [0, 1, 2]
        summary = pd.read_csv(repo / "data/homology" / r.data.tags["run_name"] / "summary.csv")
        assert [v for _, v in hist] == pytest.approx(summary["phdim"].tolist())
        layer = summary["layer"].iloc[-1]
        assert len(client.get_metric_history(r.info.run_id, f"betti0/{layer}")) == 20
        assert r.data.params["topology.phdim.n_start"] == "60"
        arts = {a.path for a in client.list_artifacts(r.info.run_id, "figures")}
        assert "figures/betti_curves.png" in arts
    stages = {r.data.tags["stage"] for r in client.search_runs([exp.experiment_id])}
    assert stages == {"train", "activations", "homology", "aggregate", "compare"}
    (cmp,) = client.search_runs([exp.experiment_id], "tags.stage = 'compare'")
    assert cmp.info.run_name == "vgg_small-fashion_mnist--resnet_small-fashion_mnist/compare"
    summary = json.loads((repo / "data/compare" / cmp.info.run_name.split("/")[0] / "summary.json").read_text())
    assert cmp.data.metrics == pytest.approx(summary)
    assert {"figures/cka.png", "figures/diagonal.png"} <= {a.path for a in client.list_artifacts(cmp.info.run_id, "figures")}
    # MLflow 3 opens the experiment in its model-training view, not the GenAI one.
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # The cross-run aggregate is named after the experiment, not after one of its runs.
    (agg,) = client.search_runs([exp.experiment_id], "tags.stage = 'aggregate'")
    assert agg.info.run_name == "tiny/aggregate" and agg.data.tags["model"] == "(all)"


def test_second_repro_does_nothing(pipeline_repo):
    _, _, _, first, second = pipeline_repo
    assert "Running stage 'homology@" in first.stdout
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_dvc_metrics_and_plots(pipeline_repo):
    repo, env, dvc, *_ = pipeline_repo
    shown = json.loads(_sh([dvc, "metrics", "show", "--json"], repo, env).stdout)[""]["data"]
    for run in RUNS:  # DVC reads back exactly the metrics files the stages wrote
        for name in ("train.json", "homology.json"):
            path = f"data/metrics/{run}/{name}"
            assert shown[path]["data"] == json.loads((repo / path).read_text())
        summary = pd.read_csv(repo / "data/homology" / run / "summary.csv")
        phdim = shown[f"data/metrics/{run}/homology.json"]["data"]["phdim"]
        assert list(phdim) == summary["layer"].tolist()
        assert list(phdim.values()) == pytest.approx(summary["phdim"].tolist(), abs=1e-4)
    _sh([dvc, "plots", "show", "-o", str(repo / "plots_html")], repo, env)
    assert (repo / "plots_html" / "index.html").stat().st_size > 1000


def test_changing_topology_reuses_training_and_activations(pipeline_repo):
    repo, env, dvc, *_ = pipeline_repo
    status = _sh([dvc, "status", *DEFAULT_PIPELINE, "--with-deps"], repo, env)
    assert "changed" not in status.stdout
    cfg = repo / "conf/topology/paper.yaml"
    original = cfg.read_text()
    cfg.write_text(original.replace("num: 100", "num: 101"))
    try:
        dry = _sh([dvc, "repro", "--dry", *DEFAULT_PIPELINE], repo, env)
    finally:
        cfg.write_text(original)
    ran = {line.split("'")[1].split("@")[0] for line in dry.stdout.splitlines() if line.startswith("Running stage")}
    # aggregate follows once homology's outputs change; what matters is that training and
    # activations are reused.
    assert "homology" in ran and not ran & {"train", "activations"}


def test_tracking_helpers_and_notebook(pipeline_repo, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from reptopo.runtime import tracking

    repo, *_ = pipeline_repo
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    layers = tracking.load_layer_metrics(uri, "reptopo-tiny")
    assert sorted(layers["run_name"].unique()) == RUNS and len(layers) == 6
    for run in RUNS:
        summary = pd.read_csv(repo / "data/homology" / run / "summary.csv")
        got = layers[layers.run_name == run].sort_values("probe")
        assert got["layer"].tolist() == summary["layer"].tolist()
        assert got["phdim"].tolist() == pytest.approx(summary["phdim"].tolist())
        assert got["L1_local"].tolist() == pytest.approx(summary["L1_local"].tolist())
    betti = tracking.load_betti_curves(uri, layers.run_id.iloc[0])
    assert set(betti["dim"]) == {0, 1} and betti.groupby(["layer", "dim"]).size().eq(20).all()

    nb = nbformat.read(REPO / "notebooks/compare_runs.ipynb", as_version=4)
    figure, cka_figure = tmp_path / "comparison.png", tmp_path / "cka.png"
    env = {"REPTOPO_TRACKING_URI": uri, "REPTOPO_EXPERIMENT": "reptopo-tiny", "REPTOPO_FIGURE": str(figure),
           "REPTOPO_CKA_FIGURE": str(cka_figure)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert_png(figure)
    assert_png(cka_figure)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "2 runs, 6 layers" in printed
    pair = "vgg_small-fashion_mnist--resnet_small-fashion_mnist"
    assert f"1 comparison(s): {pair}/compare" in printed
    # What the notebook draws is what the compare stage wrote.
    (c,) = tracking.load_comparisons(uri, "reptopo-tiny").values()
    want = pd.read_csv(repo / "data/compare" / pair / "cka.csv", index_col="layer_a")
    pd.testing.assert_frame_equal(c["cka"], want)
    assert c["diagonal"]["rtd"].tolist() == pytest.approx(pd.read_csv(repo / "data/compare" / pair / "diagonal.csv")["rtd"].tolist())


def test_dvc_remote_push_and_pull_restore_outputs(pipeline_repo, tmp_path):
    repo, env, dvc, *_ = pipeline_repo
    remote = tmp_path / "dvc-remote"
    _sh([dvc, "remote", "add", "--local", "-f", "-d", "scratch", str(remote)], repo, env)
    _sh([dvc, "push", *DEFAULT_PIPELINE, "--with-deps"], repo, env)
    assert any(remote.rglob("*"))
    ckpt = repo / "data/train" / RUNS[0] / "model.safetensors"
    original = ckpt.read_bytes()
    shutil.rmtree(repo / "data/train")
    shutil.rmtree(repo / ".dvc/cache")
    _sh([dvc, "pull", *DEFAULT_PIPELINE, "--with-deps"], repo, env)
    assert ckpt.read_bytes() == original
    status = _sh([dvc, "status", *DEFAULT_PIPELINE, "--with-deps"], repo, env)
    assert "changed" not in status.stdout and "deleted" not in status.stdout


def test_an_experiment_made_before_the_kind_tag_gets_it(tmp_path):
    from mlflow.tracking import MlflowClient

    from reptopo.runtime.tracking import get_or_create_experiment

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    old = client.create_experiment("made-by-an-older-reptopo")
    assert get_or_create_experiment(client, "made-by-an-older-reptopo", None) == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"
