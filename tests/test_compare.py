"""The compare stage on real runs: known answers on transformed copies, one-line refusals."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

from conftest import TINY, assert_png, compose_cfg, run_cli

pytestmark = pytest.mark.e2e


def _copy_run(root, base, name, transform=None, permute=False):
    """A second 'run' of the same sample: run ``base``'s activations, each layer transformed."""
    src, dst = root / "data/activations" / base, root / "data/activations" / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    for layer in meta["layers"]:
        if transform is not None:
            X = np.load(dst / layer["file"]).astype(np.float64)
            np.save(dst / layer["file"], transform(X).astype(np.float32))
    if permute:
        idx = np.load(dst / "indices.npy")
        np.save(dst / "indices.npy", idx[::-1].copy())
    return name


def _rotated(X):
    """An orthogonal map, isotropic scaling and a translation: CKA 1, same neighbours, RTD 0."""
    Q = ortho_group.rvs(X.shape[1], random_state=0) if X.shape[1] > 1 else np.ones((1, 1))
    return 2.5 * X @ Q + 3.0


def test_compare_with_a_rotated_copy_gives_the_known_answers(trained_digits):
    from mlflow.tracking import MlflowClient

    from reptopo.stages import compare

    root, cfg, _, _ = trained_digits
    other = _copy_run(root, cfg.run_name, "rotated-copy", _rotated)
    ccfg = compose_cfg(root, [*TINY, f"compare.run_a={cfg.run_name}", f"compare.run_b={other}",
                              "compare.measures=[cka,cka_debiased,overlap,rtd]", "compare.rtd_batch_size=100",
                              "compare.rtd_batches=1"])
    diagonal = compare.run(ccfg)
    out = root / "data/compare" / f"{cfg.run_name}--{other}"
    n_layers = len(diagonal)
    assert n_layers >= 2 and list(diagonal["layer_a"]) == list(diagonal["layer_b"])
    np.testing.assert_allclose(diagonal["cka"], 1.0, atol=1e-5)  # float32 files
    np.testing.assert_allclose(diagonal["cka_debiased"], 1.0, atol=1e-5)
    np.testing.assert_allclose(diagonal["overlap"], 1.0)
    np.testing.assert_allclose(diagonal["rtd"], 0.0, atol=1e-4)
    cka = pd.read_csv(out / "cka.csv", index_col="layer_a")
    assert cka.shape == (n_layers, n_layers) and np.all(cka.to_numpy() <= 1 + 1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cka_best_depth_gap"] == 0.0 and summary["mean_diagonal_cka"] == pytest.approx(1.0, abs=1e-5)
    for png in ("cka.png", "cka_debiased.png", "overlap.png", "diagonal.png"):
        assert_png(out / "figures" / png)
    # MLflow: one run named after the pair, with the summary scalars and the heatmaps.
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(ccfg.tracking.experiment)
    (run,) = client.search_runs([exp.experiment_id], "tags.stage = 'compare'")
    assert run.info.run_name == f"{cfg.run_name}--{other}/compare"
    assert run.data.metrics["mean_diagonal_cka"] == pytest.approx(1.0, abs=1e-5)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "figures")} >= {"figures/cka.png"}


def test_compare_a_run_with_itself_has_zero_diagram_distances_on_the_diagonal(trained_digits):
    from reptopo.stages import compare, homology

    root, cfg, _, _ = trained_digits
    homology.run(compose_cfg(root, [*TINY, "tracking=none"]))
    ccfg = compose_cfg(root, [*TINY, "tracking=none", f"compare.run_a={cfg.run_name}", f"compare.run_b={cfg.run_name}",
                              "compare.measures=[cka,diagrams]"])
    diagonal = compare.run(ccfg)
    out = root / "data/compare" / f"{cfg.run_name}--{cfg.run_name}"
    for dim in (0, 1):
        M = pd.read_csv(out / f"diagram_h{dim}.csv", index_col="layer_a").to_numpy()
        assert np.all(np.diagonal(M) == 0) and np.allclose(M, M.T)
    assert np.any(pd.read_csv(out / "diagram_h0.csv", index_col="layer_a").to_numpy() > 0)
    np.testing.assert_allclose(diagonal["diagram_h0"], 0.0)


def test_runs_of_different_samples_are_refused_in_one_line(trained_digits):
    root, cfg, _, _ = trained_digits
    other = _copy_run(root, cfg.run_name, "reordered-sample", permute=True)
    res = run_cli("compare", *TINY, f"paths.root={root}", "tracking=none", f"compare.run_a={cfg.run_name}",
                  f"compare.run_b={other}", cwd=root)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"reptopo compare: error: compare.run_a '{cfg.run_name}' and compare.run_b "
                           f"'{other}' probed different samples (indices.npy differ in "), line
    assert not (root / "data/compare" / f"{cfg.run_name}--{other}").exists()


def test_compare_without_run_names_is_one_line(trained_digits):
    root, _, _, _ = trained_digits
    res = run_cli("compare", *TINY, f"paths.root={root}", "tracking=none", cwd=root)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith(
        "reptopo compare: error: config key compare.run_a: null; the compare stage needs two run names")


def _experiment_tables(root, runs_labels):
    """The experiment's aggregate table (run -> label), as the compare stage reads it."""
    tables = root / "reports/tiny/tables"
    tables.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"run": r, "label": l, "layer_index": i} for r, l in runs_labels.items() for i in range(3)]) \
        .to_csv(tables / "summary.csv", index=False)


def test_an_experiments_pairs_are_compared_and_k1_checked(trained_digits):
    from reptopo.stages import compare

    root, cfg, _, _ = trained_digits
    other = _copy_run(root, cfg.run_name, "rotated-for-pairs", _rotated)
    _experiment_tables(root, {cfg.run_name: "original", other: "rotated"})
    ccfg = compose_cfg(root, [*TINY, "tracking=none", "aggregate.analysis=e1", "+compare.pairs.same=[original,rotated]",
                              "compare.measures=[cka,overlap]"])
    table = compare.run(ccfg)
    out = root / "reports/tiny/compare"
    assert table[["pair", "run_a", "run_b", "label_a", "label_b"]].values.tolist() == \
        [["same", cfg.run_name, other, "original", "rotated"]]
    assert pd.read_csv(out / "pairs.csv")["mean_diagonal_cka"].tolist() == pytest.approx([1.0], abs=1e-5)
    cka = pd.read_csv(out / "same" / "cka.csv", index_col="layer_a").to_numpy()
    np.testing.assert_allclose(np.diagonal(cka), 1.0, atol=1e-5)
    assert_png(out / "same" / "figures" / "cka.png")
    (k1,) = json.loads((out / "findings.json").read_text())
    # A rotated copy: every layer's most similar layer is itself (gap 0, rank order exact).
    assert k1["id"] == "K1" and k1["verdict"] == "reproduced"
    assert k1["values"]["same"]["a_to_b"]["gap"] == 0.0 and k1["values"]["same"]["b_to_a"]["rank"] == pytest.approx(1.0)
    # An experiment without comparison findings (E3) writes an empty list.
    compare.run(compose_cfg(root, [*TINY, "tracking=none", "aggregate.analysis=e3",
                                   "+compare.pairs.same=[original,rotated]", "compare.measures=[cka]"]))
    assert json.loads((out / "findings.json").read_text()) == []


def test_pooled_pairs_are_reused_until_their_settings_or_runs_change(trained_digits, monkeypatch):
    from reptopo.runtime.stamps import STAMP
    from reptopo.stages import compare

    root, cfg, _, _ = trained_digits
    other = _copy_run(root, cfg.run_name, "scaled-for-pool", lambda X: 2.0 * X)
    _experiment_tables(root, {cfg.run_name: "original", other: "scaled"})
    overrides = [*TINY, "tracking=none", "aggregate.analysis=e1", "+compare.pairs.same=[original,scaled]",
                 "compare.measures=[cka,overlap]"]
    first = compare.run(compose_cfg(root, overrides))
    out = root / "reports/tiny/compare"
    pool = sorted((root / "data/compare").glob(f"{cfg.run_name}--{other}-*"))
    assert len(pool) == 1 and not (out / "same" / STAMP).exists()
    before = (out / "same" / "cka.csv").read_text(), (out / "findings.json").read_text()
    calls = []
    real = compare.compare_pair
    monkeypatch.setattr(compare, "compare_pair", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = compare.run(compose_cfg(root, overrides))  # nothing changed: nothing computed
    assert calls == [] and again.equals(first)
    assert ((out / "same" / "cka.csv").read_text(), (out / "findings.json").read_text()) == before
    compare.run(compose_cfg(root, [*overrides, "compare.k=5"]))  # a setting changed
    assert calls == [1] and len(list((root / "data/compare").glob(f"{cfg.run_name}--{other}-*"))) == 2
    stamp = root / "data/activations" / other / STAMP  # a run remade by another config
    saved = stamp.read_text()
    stamp.write_text(json.dumps({**json.loads(saved), "fingerprint": "0" * 64}))
    try:
        compare.run(compose_cfg(root, [*overrides, "compare.k=5"]))
    finally:
        stamp.write_text(saved)
    assert calls == [1, 1]


def test_pairs_computed_two_at_a_time_equal_those_computed_one_by_one(trained_digits, monkeypatch, caplog):
    """compare.n_jobs=2: the pairs the pool lacks are made in two worker processes (one core each);
    their files hold the numbers a one-at-a-time run writes, and n_jobs leaves the pool keys alone."""
    import logging

    from reptopo.stages import compare

    root, cfg, _, _ = trained_digits
    rotated = _copy_run(root, cfg.run_name, "rotated-for-jobs", _rotated)
    scaled = _copy_run(root, cfg.run_name, "scaled-for-jobs", lambda X: 0.5 * X)
    _experiment_tables(root, {cfg.run_name: "original", rotated: "rotated", scaled: "scaled"})
    overrides = [*TINY, "tracking=none", "aggregate.analysis=e1", "+compare.pairs.p=[original,rotated]",
                 "+compare.pairs.q=[scaled,rotated]", "compare.measures=[cka,cka_debiased,overlap,rtd]",
                 "compare.rtd_batch_size=40"]
    out, pool = root / "reports/tiny/compare", root / "data/compare"
    shutil.rmtree(pool, ignore_errors=True)
    calls = []  # pairs computed in this process (the workers are others)
    real = compare.compare_pair
    monkeypatch.setattr(compare, "compare_pair", lambda *a, **k: calls.append(1) or real(*a, **k))
    with caplog.at_level(logging.INFO, logger="reptopo.compare"):
        parallel = compare.run(compose_cfg(root, [*overrides, "compare.n_jobs=2"]))
    assert "2 pairs, 2 at a time" in caplog.text and calls == []  # the workers made both
    files = {p.relative_to(out): p.read_text() for p in sorted(out.rglob("*.csv"))}
    assert {str(p) for p in files} >= {"p/cka.csv", "q/overlap.csv", "p/diagonal.csv", "pairs.csv"}
    compare.run(compose_cfg(root, [*overrides, "compare.n_jobs=1"]))  # same keys: both pairs reused
    assert calls == []
    shutil.rmtree(pool)
    serial = compare.run(compose_cfg(root, [*overrides, "compare.n_jobs=1"]))
    assert calls == [1, 1]
    pd.testing.assert_frame_equal(parallel.drop(columns="run_a"), serial.drop(columns="run_a"), rtol=1e-9)
    for path, text in files.items():
        if path.name != "pairs.csv":
            a, b = pd.read_csv(out / path), pd.read_csv(pd.io.common.StringIO(text))
            pd.testing.assert_frame_equal(a, b, rtol=1e-9)


def test_an_unknown_pair_label_is_one_line_and_writes_nothing(trained_digits):
    root, cfg, _, _ = trained_digits
    _experiment_tables(root, {cfg.run_name: "original"})
    shutil.rmtree(root / "reports/tiny/compare", ignore_errors=True)
    res = run_cli("compare", *TINY, f"paths.root={root}", "tracking=none", "+compare.pairs.p=[original,missing]",
                  cwd=root)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1] == (
        f"reptopo compare: error: config key compare.pairs.p: label 'missing' names no run of "
        f"{root / 'reports/tiny/tables/summary.csv'}; expected one of ['original']")
    assert not (root / "reports/tiny/compare").exists()
