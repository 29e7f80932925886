"""Fingerprints that follow the code, on real runs: the tiny pipeline from a scratch copy of the
source, edited as a developer would. Unchanged code and config reuse everything; a comment or a
docstring reuses everything; doubling lifespans_from_diagrams recomputes homology (with doubled
L_0) and what reads it, and reuses the checkpoint and activations; an edit to the training code
recomputes all three stages. No revision number is bumped anywhere."""
from __future__ import annotations

import json
import shutil

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

    def state():
        stamps = {s: json.loads((root / "data" / s / "resnet_small-digits" / "_stage.json").read_text()) for s in STAGES}
        l0 = pd.read_csv(root / "reports" / "tiny" / "tables" / "summary.csv")["L0_local"].to_numpy()
        return stamps, l0

    run_pipeline()
    first, l0 = state()
    for stage, chain in STAGES.items():  # made by the scratch copy's code
        assert first[stage]["code"] == code_fingerprint(chain, src).code

    log = run_pipeline()  # nothing changed
    assert "complete, skipping" in log and state()[0] == first

    _edit(src, DESCRIPTORS, LIFESPANS_SUM, "        # L_k of the paper: half the summed lifespans\n" + LIFESPANS_SUM)
    _edit(src, "reptopo/nets/vision.py", '"""Vision and point-cloud networks:', '"""Networks for images and points:')
    log = run_pipeline()  # a comment and a docstring
    assert "complete, skipping" in log and state()[0] == first

    _edit(src, DESCRIPTORS, LIFESPANS_SUM, LIFESPANS_DOUBLED)
    log = run_pipeline()
    doubled, l0_doubled = state()
    assert "reusing train output" in log and "reusing activations output" in log
    assert {s: doubled[s]["fingerprint"] for s in ("train", "activations")} == \
        {s: first[s]["fingerprint"] for s in ("train", "activations")}
    assert doubled["homology"]["fingerprint"] != first["homology"]["fingerprint"]
    # Homology and the aggregate after it recomputed (L_0 local is a mean over classes: last bits).
    assert np.allclose(l0_doubled, 2 * l0, rtol=1e-12, atol=0)

    _edit(src, "reptopo/nets/lightning.py", "import torch\n", "import torch\n\nREVISION_FREE = True\n")
    log = run_pipeline()
    retrained, l0_retrained = state()
    assert "reusing" not in log
    assert all(retrained[s]["fingerprint"] != doubled[s]["fingerprint"] for s in STAGES)
    assert l0_retrained.tolist() == l0_doubled.tolist()  # the same seed: the same numbers, recomputed
