"""The MLflow UI really shows the PHdim-vs-layer comparison: a real server, a real browser."""
from __future__ import annotations

import json
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


# What the UI must show is read from the pipeline's own outputs (data/homology/<run>/summary.csv,
# betti.csv, figures/; data/metrics/<run>/train.json; reports/tiny/), MLflow's REST API gives only
# the run ids, and the page is read through what a user sees: visible text, links and their hrefs,
# ARIA roles (row, cell, tab), <img> alt text and pixels, and the SVG geometry of the chart; never
# MLflow's CSS class names.


def _xpath_str(s: str) -> str:
    return f"'{s}'" if "'" not in s else "concat('" + s.replace("'", "',\"'\",'") + "')"


def _same_number(text: str, value: float) -> bool:
    """``text`` (a number as the page prints it) is ``value``, up to float parsing."""
    try:
        return abs(float(text) - float(value)) <= 1e-9 * max(1.0, abs(float(value)))
    except ValueError:
        return False


def _visible(driver, xpath: str):
    return [e for e in driver.find_elements("xpath", xpath) if e.is_displayed()]


def _link(driver, text: str):
    """The displayed links whose text is exactly ``text``."""
    return _visible(driver, f"//a[normalize-space()={_xpath_str(text)}]")


def _open(driver, url: str) -> None:
    # about:blank first: the UI is one page, so a new hash alone does not always re-render it.
    driver.get("about:blank")
    driver.get(url)


def _polylines(svg) -> list[list[tuple[float, float]]]:
    """Vertex lists of the SVG paths made only of straight segments (``M x,y L x,y ...``)."""
    import re

    out = []
    for path in svg.find_elements("xpath", ".//*[local-name()='path']"):
        d = (path.get_attribute("d") or "").strip()
        if re.fullmatch(r"M[-\d.e]+,[-\d.e]+(L[-\d.e]+,[-\d.e]+)+", d):
            out.append([tuple(map(float, xy.split(","))) for xy in re.split(r"[ML]", d)[1:]])
    return out


def _img_bytes(driver, img) -> bytes:
    """The bytes behind an <img> the page shows (its blob: or http: src, fetched by the page)."""
    import base64

    data = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0].src).then(r => r.blob()).then(b => { const f = new FileReader();"
        " f.onload = () => done(f.result.split(',')[1]); f.readAsDataURL(b); }).catch(e => done(null));", img)
    assert data, f"the page could not read back its image {img.get_attribute('src')[:80]}"
    return base64.b64decode(data)


def test_ui_shows_what_reptopo_logged(pipeline_repo, mlflow_server, browser, tmp_path):
    import itertools
    import json
    import re

    import numpy as np
    import pandas as pd
    from mlflow.tracking import MlflowClient
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    repo = pipeline_repo[0]

    def wait(fn, timeout=60, what=""):
        return WebDriverWait(browser, timeout).until(lambda d: fn() or False, message=what)

    # -------- what the pipeline wrote: two runs (resnet_small, vgg_small on fashion_mnist)
    runs = sorted(p.name for p in (repo / "data" / "homology").iterdir() if (p / "summary.csv").is_file())
    assert runs == ["resnet_small-fashion_mnist", "vgg_small-fashion_mnist"]
    summary = {r: pd.read_csv(repo / "data" / "homology" / r / "summary.csv") for r in runs}
    betti = {r: pd.read_csv(repo / "data" / "homology" / r / "betti.csv") for r in runs}
    test_acc = {r: json.loads((repo / "data" / "metrics" / r / "train.json").read_text())["test_acc"] for r in runs}

    # -------- the run ids, by run name, from the REST API
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("reptopo-tiny")
    eid = exp.experiment_id
    by_name = {r.info.run_name: r for r in client.search_runs([eid])}
    expected_names = [f"{r}/{stage}" for r in runs for stage in ("train", "activations", "homology")]
    assert set(expected_names) <= set(by_name), sorted(by_name)
    (agg_name,) = [n for n, r in by_name.items() if r.data.tags.get("stage") == "aggregate"]
    run_url = lambda name: f"{mlflow_server}/#/experiments/{eid}/runs/{by_name[name].info.run_id}"  # noqa: E731

    # -------- the experiment's run list: every run, by name, linking to its own run page
    _open(browser, f"{mlflow_server}/#/experiments/{eid}/runs")
    for name in [*expected_names, agg_name]:
        links = wait(lambda: _link(browser, name), 90, f"run {name} in the run list")
        assert any(a.get_attribute("href").endswith(f"/runs/{by_name[name].info.run_id}") for a in links), name
    browser.save_screenshot(str(tmp_path / "runs.png"))

    # -------- each homology run's page: its metrics by name, with the values reptopo computed
    def metric_row(key: str):
        """The displayed row (role=row) of the run page's metrics table whose key is ``key``."""
        rows = _visible(browser, f"//*[@role='row'][.//*[@role='cell'][normalize-space()={_xpath_str(key)}]]")
        return rows[0].text if rows else None

    for r in runs:
        _open(browser, run_url(f"{r}/homology"))
        layers = summary[r]["layer"].tolist()
        assert len(layers) >= 2
        expected = {f"phdim/{layer}": v for layer, v in zip(layers, summary[r]["phdim"])}
        expected["phdim"] = summary[r]["phdim"].iloc[-1]  # the series' latest value: the last probe
        for (_, layer), df in betti[r].groupby(["layer_index", "layer"]):
            for col in (c for c in df.columns if c.startswith("betti_")):
                expected[f"betti{col.split('_')[1]}/{layer}"] = df[col].iloc[-1]
        assert any(k.startswith("betti1/") for k in expected)
        for key, value in expected.items():
            text = wait(lambda: metric_row(key), 90, f"metric {key} on the page of {r}/homology")
            shown_key, shown_value = text.split()
            assert shown_key == key and _same_number(shown_value, value), (key, value, text)
        browser.save_screenshot(str(tmp_path / f"metrics-{r}.png"))
        _open(browser, run_url(f"{r}/train"))
        text = wait(lambda: metric_row("final/test_acc"), 90, f"final/test_acc of {r}/train")
        shown_key, shown_value = text.split()
        assert shown_key == "final/test_acc" and _same_number(shown_value, test_acc[r]), (test_acc[r], text)

    # -------- artifacts: the tables and figures are listed, and what the page shows is the file
    def show_artifact(name: str, path: str, files: list[str]):
        _open(browser, f"{run_url(name)}/artifacts/{path}")
        wait(lambda: _visible(browser, "//*[@role='tab'][@aria-selected='true'][normalize-space()='Artifacts']"),
             90, f"the artifacts tab of {name}")
        for f in files:  # the artifact tree: each file by name (the figures folder opened by `path`)
            wait(lambda: _visible(browser, f"//*[normalize-space(text())={_xpath_str(f)}]"), 30, f"{f} of {name}")

    def check_figure(name: str, path: str, local: Path):
        img = wait(lambda: [i for i in _visible(browser, f"//img[@alt={_xpath_str(path)}]")
                            if browser.execute_script("return arguments[0].naturalWidth", i) > 0],
                   60, f"{path} of {name} shown")[0]
        with Image.open(local) as im:
            assert browser.execute_script("return arguments[0].naturalWidth", img) == im.size[0]
        assert _img_bytes(browser, img) == local.read_bytes(), f"{name}: {path} is not the figure reptopo wrote"

    hom = repo / "data" / "homology" / runs[0]
    figs = sorted(p.name for p in (hom / "figures").glob("*.png"))
    assert "betti_curves.png" in figs
    show_artifact(f"{runs[0]}/homology", "figures/betti_curves.png", ["summary.csv", "figures", *figs])
    check_figure(f"{runs[0]}/homology", "figures/betti_curves.png", hom / "figures" / "betti_curves.png")

    reports = repo / "reports" / "tiny"
    agg_figs = sorted(p.name for p in (reports / "figures").glob("*.png"))
    assert "phdim_vs_depth.png" in agg_figs and len(agg_figs) >= 4
    show_artifact(agg_name, "figures/phdim_vs_depth.png", ["summary.csv", "figures", *agg_figs])
    check_figure(agg_name, "figures/phdim_vs_depth.png", reports / "figures" / "phdim_vs_depth.png")
    shot = repo / "mlflow_phdim_figure.png"
    browser.save_screenshot(str(shot))
    assert_png(shot)

    # The compare stage's run: its CKA heatmap and same-depth profile, the very files it wrote.
    pair = f"{runs[1]}--{runs[0]}"  # params.yaml's compare_pair: vgg_small (A) vs resnet_small (B)
    cmp_dir = repo / "data" / "compare" / pair
    cmp_figs = sorted(p.name for p in (cmp_dir / "figures").glob("*.png"))
    assert {"cka.png", "diagonal.png", "overlap.png"} <= set(cmp_figs)
    for fig in ("cka.png", "diagonal.png"):
        show_artifact(f"{pair}/compare", f"figures/{fig}", ["cka.csv", "diagonal.csv", "figures", *cmp_figs])
        check_figure(f"{pair}/compare", f"figures/{fig}", cmp_dir / "figures" / fig)

    # summary.csv previewed as a table: its first rows are the aggregate's rows (run, layer, ...)
    show_artifact(agg_name, "summary.csv", ["summary.csv"])
    table = pd.read_csv(reports / "tables" / "summary.csv")

    def preview_rows():
        rows = [[c.text for c in tr.find_elements("xpath", "./td")] for tr in _visible(browser, "//tr[td]")]
        return [row for row in rows if row and row[0] in runs]

    rows = wait(preview_rows, 60, "the summary.csv preview")
    assert 2 <= len(rows) <= len(table)
    for row, (_, want) in zip(rows, table.iterrows()):
        for col in ("run", "layer", "model", "dataset"):
            assert str(want[col]) in row, (col, want[col], row)
        assert any(_same_number(cell, want["phdim"]) for cell in row), (want["phdim"], row)

    # -------- the PHdim-vs-layer chart of the two architectures together
    ids = json.dumps([by_name[f"{r}/homology"].info.run_id for r in runs])
    quoted = urllib.parse.quote
    _open(browser, f"{mlflow_server}/#/metric?runs={ids}&metric={quoted(json.dumps('phdim'))}&experiments={json.dumps([eid])}"
                   f"&plot_metric_keys={quoted(json.dumps(['phdim']))}&plot_layout={{}}&x_axis=step"
                   "&y_axis_scale=linear&line_smoothness=1&show_point=true&deselected_curves=[]"
                   "&last_linear_y_axis_range=[]")
    for r in runs:  # the legend: one curve per run
        wait(lambda: _visible(browser, f"//*[normalize-space(text())={_xpath_str(f'{r}/homology (phdim)')}]"),
             90, f"the legend entry of {r}")
    # Under the chart, a row per run (linking to it): latest and max PHdim over the layers.
    for r in runs:
        link = wait(lambda: _link(browser, f"{r}/homology"), 30, f"the row of {r}")[0]
        assert link.get_attribute("href").endswith(by_name[f"{r}/homology"].info.run_id)
        row = link.find_element("xpath", "ancestor::tr[1]").text
        shown = sorted((int(step), float(v)) for v, step in re.findall(r"(\S+) \(step=(\d+)\)", row))
        ph, step = summary[r]["phdim"], summary[r]["layer_index"]  # step = probe index
        want = sorted((int(step[i]), ph[i]) for i in (len(ph) - 1, ph.idxmin(), ph.idxmax()))
        assert [s for s, _ in shown] == [s for s, _ in want], row
        assert all(_same_number(str(v), w) for (_, v), (_, w) in zip(shown, want)), (row, want)
    # The plot itself (SVG): one polyline per run through its layers (x = probe index), and the
    # same linear y scale maps every run's PHdim values onto the drawn points.
    step_axis = "//*[local-name()='svg'][.//*[local-name()='text'][normalize-space()='Step']]"
    wait(lambda: _visible(browser, step_axis), 30, "the chart's Step axis")

    def drawn():
        lines = {tuple(pl) for svg in browser.find_elements("xpath", "//*[local-name()='svg']") for pl in _polylines(svg)}
        return [list(pl) for pl in lines if len(pl) in {len(summary[r]) for r in runs}] or None

    lines = wait(drawn, 30, "the PHdim curves")
    assert len(lines) == len(runs), lines

    def fits(assignment) -> bool:
        xs, ys, vals = [], [], []
        for r, pl in zip(runs, assignment):
            if len(pl) != len(summary[r]):
                return False
            xs.append([x for x, _ in pl])
            ys += [y for _, y in pl]
            vals += summary[r]["phdim"].tolist()
        if any(x != xs[0] for x in xs[1:]) or not np.all(np.diff(xs[0]) > 0):
            return False
        slope, icpt = np.polyfit(vals, ys, 1)
        return slope < 0 and np.max(np.abs(np.polyval([slope, icpt], vals) - ys)) < 1.5  # pixels; SVG y points down

    assert any(fits(a) for a in itertools.permutations(lines)), ("the drawn curves are not the runs' PHdim", lines)
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


# The plotly figure a chart's <svg> belongs to: its traces as the page holds them (the graph div
# carries .data and .layout). Read from the page, as drawn, not from MLflow's REST API.
_PLOT_DATA = ("let e = arguments[0]; while (e && !(e.data && e.layout)) e = e.parentElement;"
              " return e ? e.data.map(t => ({type: t.type, name: t.name || null, x: t.x || null, y: t.y || null,"
              " dims: (t.dimensions || []).map(d => [d.label, Array.from(d.values)])})) : null;")


def _click(driver, element) -> None:
    try:
        element.click()
    except Exception:  # an overlay (MLflow's assistant panel) takes native clicks: click in the page
        driver.execute_script("arguments[0].click()", element)


def test_experiment_page_and_compare_view_show_the_runs_and_the_phdim_chart(pipeline_repo, mlflow_server, browser,
                                                                           tmp_path):
    import urllib.parse

    import pandas as pd
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.support.ui import WebDriverWait

    repo = pipeline_repo[0]

    def wait(fn, timeout=60, what=""):
        return WebDriverWait(browser, timeout).until(lambda d: fn() or False, message=what)

    runs = ["resnet_small-fashion_mnist", "vgg_small-fashion_mnist"]
    phdim = {r: pd.read_csv(repo / "data/homology" / r / "summary.csv")["phdim"].tolist() for r in runs}
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("reptopo-tiny")
    eid = exp.experiment_id
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    by_name = {r.info.run_name: r for r in client.search_runs([eid])}
    homology = [f"{r}/homology" for r in runs]

    def run_links():
        """The run list's links, by run name -> href (rows of the runs table)."""
        return {a.text.strip(): a.get_attribute("href") for a in _visible(browser, "//*[@role='row']//a")}

    # -------- the experiment page, as a user opens it. MLflow 3.17.2 lands on the GenAI overview
    # whatever the experiment's kind tag says, until the browser's workflow choice is "Model
    # training" (one click, remembered); reptopo's docs say so. After it: the runs table.
    _open(browser, f"{mlflow_server}/#/experiments/{eid}")
    toggle = "//*[@role='button'][normalize-space()='Model training']"
    wait(lambda: run_links() or _visible(browser, toggle), 90, "the experiment page")
    if not run_links():
        for close in _visible(browser, "//button[@aria-label='Close']"):
            _click(browser, close)
        _click(browser, _visible(browser, toggle)[0])
    for name in [*homology, f"{runs[1]}--{runs[0]}/compare"]:
        wait(lambda: name in run_links(), 90, f"run {name} in the experiment's run list")
        assert run_links()[name].endswith(f"/experiments/{eid}/runs/{by_name[name].info.run_id}"), name
    _open(browser, f"{mlflow_server}/#/experiments/{eid}")  # the choice holds: straight to the runs
    wait(lambda: all(n in run_links() for n in homology), 90, "the run list on a second visit")
    browser.save_screenshot(str(tmp_path / "experiment.png"))

    # -------- its chart view: the phdim line chart, one curve per homology run through its layers
    _open(browser, f"{mlflow_server}/#/experiments/{eid}/runs?compareRunsMode=CHART")
    search = "//input[@placeholder='Search metric charts']"
    wait(lambda: _visible(browser, search), 90, "the chart view's search box")
    browser.find_element("xpath", search).send_keys("phdim")
    section = "//*[@role='button'][@aria-expanded][.//*[normalize-space(text())='Model metrics']]"
    header = wait(lambda: _visible(browser, section), 30, "the Model metrics section")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", header)
    card = ("//h4[normalize-space()='phdim']/ancestor::*[.//*[local-name()='svg'][.//*[local-name()='text']"
            "[normalize-space()='Step']]][1]")
    chart = card + "//*[local-name()='svg'][.//*[local-name()='text'][normalize-space()='Step']]"

    def phdim_traces():
        for svg in browser.find_elements("xpath", chart):
            data = browser.execute_script(_PLOT_DATA, svg) or []
            got = {t["name"]: t["y"] for t in data if t["name"] in homology and t["y"]}
            if set(got) == set(homology):
                return got
        return None

    traces = wait(phdim_traces, 60, "the phdim chart of the chart view")
    for r in runs:
        assert traces[f"{r}/homology"] == pytest.approx(phdim[r], rel=1e-9), r  # x = probe, y = PHdim
    # ... and drawn: a straight-segment path through every probe for each run, in the card's SVG layers.
    lines = {tuple(pl) for svg in browser.find_elements("xpath", card + "//*[local-name()='svg']")
             for pl in _polylines(svg) if len(pl) == len(phdim[runs[0]])}
    assert len(lines) >= len(runs), lines
    browser.save_screenshot(str(tmp_path / "chart_view.png"))

    # -------- the compare view of the two homology runs: both named, PHdim on the plot's axes
    ids = [by_name[n].info.run_id for n in homology]
    q = urllib.parse.quote
    _open(browser, f"{mlflow_server}/#/compare-runs?runs={q(json.dumps(ids))}&experiments={q(json.dumps([eid]))}")
    wait(lambda: _visible(browser, "//h2[normalize-space()='Comparing 2 Runs from 1 Experiment']"), 90, "compare view")
    names = wait(lambda: [c.text.strip() for c in _visible(browser, "//tr[th[normalize-space()='Run Name:']]/td")],
                 30, "the compared run names")
    assert sorted(names) == sorted(homology)
    id_links = [a.get_attribute("href") for a in _visible(browser, "//tr[th[normalize-space()='Run ID:']]//a")]
    assert sorted(h.rsplit("/", 1)[1] for h in id_links) == sorted(ids)
    axis = "//*[local-name()='svg'][.//*[local-name()='text'][normalize-space()='phdim']]"
    svg = wait(lambda: _visible(browser, axis), 60, "the parallel coordinates plot with a phdim axis")[0]
    dims = {label: values for t in browser.execute_script(_PLOT_DATA, svg) for label, values in t["dims"]}
    # One value per run on the phdim axis: its latest PHdim (the logits' probe).
    assert sorted(dims["phdim"]) == pytest.approx(sorted(phdim[r][-1] for r in runs), rel=1e-9)
    browser.save_screenshot(str(tmp_path / "compare_view.png"))
