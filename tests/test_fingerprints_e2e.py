"""Fingerprints that follow the code, on real runs: the tiny pipeline from a scratch copy of the
source, edited as a developer would. Unchanged code and config reuse everything; a comment or a
docstring reuses everything; doubling lifespans_from_diagrams recomputes homology (with doubled
L_0) and what reads it, and reuses the checkpoint and activations; an edit to the training code
recomputes all three stages. The paper pool finds runs by name, so the names follow the same
fingerprints: the homology run is renamed after the doubling, the checkpoint is not. No revision
number is bumped anywhere."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_cli
from reptopo.runtime.codehash import code_fingerprint
from test_codehash import DESCRIPTORS, LIFESPANS_DOUBLED, LIFESPANS_SUM

pytestmark = pytest.mark.e2e

STAGES = {"train": ("train",), "activations": ("train", "activations"), "homology": ("train", "activations", "homology")}


def _edit(src, rel, old, new):
    path = src / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: {old!r}"
    path.write_text(text.replace(old, new))


def test_code_edits_recompute_exactly_the_stages_whose_numbers_they_touch(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    root = tmp_path / "run"
    env = {"PYTHONPATH": str(src)}  # the scratch copy is the reptopo these runs import
    args = ["experiment=tiny", "data=digits", f"paths.root={root}", "tracking=none"]

    def run_pipeline() -> str:
        res = run_cli("pipeline", *args, cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stderr[-4000:]
        agg = run_cli("aggregate", *args, cwd=tmp_path, env=env)  # the stage after homology
        assert agg.returncode == 0, agg.stderr[-4000:]
        return res.stdout + res.stderr

    def paper_names() -> dict:
        """The paper pool's folder names of one E1 run, as the scratch copy's code resolves them."""
        code = ("from reptopo.runtime.config import compose_config\n"
                "from reptopo.runtime.schema import register_config_store, validate_config\n"
                "register_config_store()\n"
                "cfg = validate_config(compose_config(['experiment=e1_quick', 'model=vgg_small']))\n"
                "print(cfg.train_name, cfg.run_name)")
        res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        train_name, run_name = res.stdout.split()[-2:]
        return {"train": train_name, "homology": run_name}

    def state():
        stamps = {s: json.loads((root / "data" / s / "resnet_small-digits" / "_stage.json").read_text()) for s in STAGES}
        l0 = pd.read_csv(root / "reports" / "tiny" / "tables" / "summary.csv")["L0_local"].to_numpy()
        return stamps, l0

    run_pipeline()
    first, l0 = state()
    names = paper_names()
    for stage, chain in STAGES.items():  # made by the scratch copy's code
        assert first[stage]["code"] == code_fingerprint(chain, src).code

    log = run_pipeline()  # nothing changed
    assert "complete, skipping" in log and state()[0] == first

    _edit(src, DESCRIPTORS, LIFESPANS_SUM, "        # L_k of the paper: half the summed lifespans\n" + LIFESPANS_SUM)
    _edit(src, "reptopo/nets/vision.py", '"""Vision and point-cloud networks:', '"""Networks for images and points:')
    log = run_pipeline()  # a comment and a docstring
    assert "complete, skipping" in log and state()[0] == first and paper_names() == names

    _edit(src, DESCRIPTORS, LIFESPANS_SUM, LIFESPANS_DOUBLED)
    log = run_pipeline()
    doubled, l0_doubled = state()
    assert "reusing train output" in log and "reusing activations output" in log
    assert {s: doubled[s]["fingerprint"] for s in ("train", "activations")} == \
        {s: first[s]["fingerprint"] for s in ("train", "activations")}
    assert doubled["homology"]["fingerprint"] != first["homology"]["fingerprint"]
    # Homology and the aggregate after it recomputed (L_0 local is a mean over classes: last bits).
    assert np.allclose(l0_doubled, 2 * l0, rtol=1e-12, atol=0)
    # In the paper's pool a run is found by its name: the homology run is renamed, the checkpoint not.
    renamed = paper_names()
    assert renamed["train"] == names["train"] and renamed["homology"] != names["homology"]

    _edit(src, "reptopo/nets/lightning.py", "import torch\n", "import torch\n\nREVISION_FREE = True\n")
    log = run_pipeline()
    retrained, l0_retrained = state()
    assert "reusing" not in log
    assert all(retrained[s]["fingerprint"] != doubled[s]["fingerprint"] for s in STAGES)
    assert l0_retrained.tolist() == l0_doubled.tolist()  # the same seed: the same numbers, recomputed
