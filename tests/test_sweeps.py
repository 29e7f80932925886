"""Real Hydra multiruns of the pipeline job: joblib (parallel) and submitit (SLURM code path)."""
from __future__ import annotations

import shutil

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, run_cli

pytestmark = pytest.mark.e2e

SWEEP = ["-m", "experiment=tiny", "model=resnet_small,vgg_small", "data=digits,fashion_mnist"]
RUNS = {"resnet_small-digits", "vgg_small-digits", "resnet_small-fashion_mnist", "vgg_small-fashion_mnist"}


def sweep(root, *extra):
    res = run_cli("pipeline", *SWEEP, f"paths.root={root}", *extra, cwd=root)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


def parent_and_children(root):
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("reptopo-tiny")
    parents = client.search_runs([exp.experiment_id], "tags.stage = 'sweep'")
    children = {p.info.run_id: client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{p.info.run_id}'")
                for p in parents}
    return client, parents, children


def assert_complete_children(client, children):
    assert {c.data.tags["run_name"] for c in children} == RUNS
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["stage"] == "pipeline" and "model=" in c.data.tags["hydra_overrides"]
        hist = client.get_metric_history(c.info.run_id, "phdim")
        assert sorted(m.step for m in hist) == [0, 1, 2]
        assert len(client.get_metric_history(c.info.run_id, "L1_local")) == 3
        assert len(client.get_metric_history(c.info.run_id, "val_acc")) == 1  # one epoch
        assert 0 <= c.data.metrics["final/test_acc"] <= 1
        last = c.data.tags["probe_layers"]
        assert last.endswith('"fc"]') or last.endswith('"head.fc"]')


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_joblib")
    shutil.copytree(REPO / "conf", root / "conf")
    first = sweep(root, "hydra/launcher=local")
    return root, first


def test_joblib_sweep_gives_four_children_under_one_parent(joblib_sweep):
    root, _ = joblib_sweep
    client, parents, children = parent_and_children(root)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["n_jobs"] == "4"
    assert_complete_children(client, children[parent.info.run_id])


def test_rerunning_the_sweep_skips_every_job(joblib_sweep):
    root, _ = joblib_sweep
    stamps = {p: p.stat().st_mtime_ns for p in (root / "data").rglob("_stage.json")}
    assert len(stamps) == 12
    again = sweep(root, "hydra/launcher=local")
    assert (again.stdout + again.stderr).count("outputs and MLflow run complete, skipping") == 4
    assert {p: p.stat().st_mtime_ns for p in (root / "data").rglob("_stage.json")} == stamps
    client, parents, children = parent_and_children(root)
    assert len(parents) == 2
    assert sum(len(v) for v in children.values()) == 4  # no new child runs


def test_new_probe_set_reuses_the_checkpoint(joblib_sweep):
    root, _ = joblib_sweep
    ckpt = root / "data/train/resnet_small-digits/model.safetensors"
    before = ckpt.stat().st_mtime_ns
    res = run_cli("pipeline", "experiment=tiny", "model=resnet_small", "data=digits", "probe.num=4",
                  f"paths.root={root}", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "reusing train output" in res.stdout + res.stderr
    assert ckpt.stat().st_mtime_ns == before
    import json

    meta = json.loads((root / "data/activations/resnet_small-digits/meta.json").read_text())
    assert len(meta["layers"]) == 4


def test_submitit_local_sweep(tmp_path):
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    sweep(tmp_path, "hydra/launcher=submitit_local_test")
    client, parents, children = parent_and_children(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert_complete_children(client, children[parents[0].info.run_id])
