"""The MLflow UI really shows the PHdim-vs-layer comparison: a real server, a real browser."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import assert_png

pytestmark = pytest.mark.e2e

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(pipeline_repo):
    repo = pipeline_repo[0]
    port = _free_port()
    mlflow = str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{repo / 'mlflow.db'}",
         "--default-artifact-root", str(repo / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("mlflow server did not come up on 127.0.0.1")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: `make test` installs Debian chromium and chromium-driver")
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_ui_compares_phdim_of_two_architectures(pipeline_repo, mlflow_server, browser, tmp_path):
    import json

    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    repo = pipeline_repo[0]
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("reptopo-tiny")
    runs = client.search_runs([exp.experiment_id], "tags.stage = 'homology'")
    assert {r.data.tags["model"] for r in runs} == {"resnet_small", "vgg_small"}
    ids = json.dumps([r.info.run_id for r in runs])
    exps = json.dumps([exp.experiment_id])

    def body(d) -> str:
        return d.find_element(By.TAG_NAME, "body").text

    # The run comparison page of the two runs.
    browser.get(f"{mlflow_server}/#/compare-runs?runs={ids}&experiments={exps}")
    WebDriverWait(browser, 90).until(lambda d: "Comparing 2 Runs" in body(d))
    browser.save_screenshot(str(tmp_path / "compare.png"))

    # Its phdim chart (the page the comparison links to): one line per run over the probe
    # index, i.e. PHdim vs layer of both architectures together.
    quoted = urllib.parse.quote
    browser.get(f"{mlflow_server}/#/metric?runs={ids}&metric={quoted(json.dumps('phdim'))}&experiments={exps}"
                f"&plot_metric_keys={quoted(json.dumps(['phdim']))}&plot_layout={{}}&x_axis=step"
                "&y_axis_scale=linear&line_smoothness=1&show_point=true&deselected_curves=[]"
                "&last_linear_y_axis_range=[]")
    WebDriverWait(browser, 90).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace"))
    WebDriverWait(browser, 30).until(lambda d: "vgg_small-fashion_mnist/homology (phdim)" in body(d))
    text = body(browser)
    assert "resnet_small-fashion_mnist/homology (phdim)" in text  # the chart legend: both runs
    assert "Step" in text
    shot = repo / "mlflow_phdim_comparison.png"
    browser.save_screenshot(str(shot))
    assert_png(shot)
    shutil.copy(shot, tmp_path / "phdim_chart.png")


def test_tracking_server_config_reads_the_uri_from_the_environment(trained_digits, mlflow_server):
    from conftest import run_cli

    root, cfg, _, _ = trained_digits
    res = run_cli("homology", "experiment=tiny", "data=digits", "tracking=server", "experiment_name=server-check",
                  f"paths.root={root}", cwd=root, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert res.returncode == 0, res.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("reptopo-server-check")
    runs = client.search_runs([exp.experiment_id])
    assert [r.data.tags["stage"] for r in runs] == ["homology"] and runs[0].info.status == "FINISHED"
    assert len(client.get_metric_history(runs[0].info.run_id, "phdim")) == 3
    # The run's artifacts went through the server into its artifact root, not the job's cwd.
    assert "figures/betti_curves.png" in {a.path for a in client.list_artifacts(runs[0].info.run_id, "figures")}
