"""make verify: a rerun's findings against the committed ones, verdict by verdict and number by
number (the comparison here; the rerun itself on the tiny paper lane, tests/test_paper_experiments.py)."""
from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

from conftest import REPO, run_cli
from reptopo.paper.verify import compare_findings, flat_values, relative_change, verify_report

COMMITTED = REPO / "reports" / "quick"


def finding(fid, verdict, values, seeds=None, experiment="e1"):
    return {"id": fid, "experiment": experiment, "verdict": verdict, "values": values,
            "seeds": {s: {"verdict": v, "values": vals} for s, (v, vals) in (seeds or {}).items()}}


def test_numbers_are_matched_by_configuration_not_by_run_fingerprint():
    f = finding("1", "reproduced", {"mean vgg": {"L0": 2.0, "ok": True}},
                {"0": ("reproduced", {"vgg_small-fashion_mnist-f542ca27": {"L0": 1.5, "per_layer": [1, 2]}})})
    assert flat_values(f) == {"mean/mean vgg/L0": 2.0, "seed 0/vgg_small-fashion_mnist/L0": 1.5,
                              "seed 0/vgg_small-fashion_mnist/per_layer/0": 1.0,
                              "seed 0/vgg_small-fashion_mnist/per_layer/1": 2.0}


def test_runs_that_differ_only_by_fingerprint_are_told_apart_by_their_configuration():
    # E7's CLS and mean-pooling runs share a checkpoint: the same model and data, other probes.
    def seeded(a, b):
        return finding("1T", "partly", {}, {"0": ("partly", {a: {"L0": 1.0}, b: {"L0": 5.0}})})

    ref = seeded("bert-rt-0646c768", "bert-rt-6d44996c")
    new = seeded("bert-rt-aaaaaaaa", "bert-rt-bbbbbbbb")
    keys_ref = {"bert-rt-0646c768": "bert cls (bert, rt)", "bert-rt-6d44996c": "bert mean (bert, rt)"}
    keys_new = {"bert-rt-aaaaaaaa": "bert cls (bert, rt)", "bert-rt-bbbbbbbb": "bert mean (bert, rt)"}
    assert len(flat_values(ref)) == 1  # by name less the fingerprint alone, the two collide
    row = compare_findings([ref], [new], keys_ref, keys_new).iloc[0]
    assert row.n_values == 2 and row.max_rel_change == 0
    swapped = compare_findings([ref], [new], keys_ref, {k: keys_new[o] for k, o in zip(keys_new, reversed(keys_new))})
    assert swapped.iloc[0].max_rel_change == pytest.approx(4.0)


@pytest.mark.parametrize("a, b, want", [(2.0, 2.2, 0.1), (-4.0, -3.0, 0.25), (0.0, 0.0, 0.0), (0.0, 1e-9, math.inf),
                                        (math.nan, math.nan, 0.0), (1.0, math.nan, math.inf)])
def test_relative_change(a, b, want):
    assert relative_change(a, b) == pytest.approx(want)


def test_changed_verdicts_and_the_largest_change_of_each_finding():
    ref = [finding("1", "reproduced", {"r": {"a": 1.0, "b": 10.0}},
                   {"0": ("reproduced", {"run-0123abcd": {"a": 1.0}})}),
           finding("2", "partly", {"r": {"a": 5.0}}),
           finding("K1", "reproduced", {"p": {"gap": 0.1}}, experiment="e7")]
    new = [finding("1", "reproduced", {"r": {"a": 1.0, "b": 12.0}},
                   {"0": ("reproduced", {"run-89abcdef": {"a": 0.9}})}),
           finding("2", "not reproduced", {"r": {"a": 5.0}, "extra": {"c": 1.0}}),
           finding("N1", "partly", {}, experiment="naitzat")]
    table = compare_findings(ref, new).set_index(["experiment", "id"])
    one = table.loc[("e1", "1")]
    assert not one.verdict_changed and one.n_values == 3 and one.n_unmatched == 0
    assert one.max_rel_change == pytest.approx(0.2) and one.largest_change_at == "mean/r/b"
    assert (one.value_reference, one.value_rerun) == (10.0, 12.0)
    two = table.loc[("e1", "2")]
    assert two.verdict_changed and two.max_rel_change == 0 and two.n_unmatched == 1
    assert table.loc[("e7", "K1")].verdict_rerun == "missing" and table.loc[("naitzat", "N1")].verdict_reference == "missing"
    text = verify_report(table.reset_index(), "ref", "new", {"The reference": ["CPU x"]})
    assert text.splitlines()[2].startswith("3 of 4 verdicts changed (e1 2, e7 K1, naitzat N1); the largest relative "
                                           "change of a finding's numbers: 20 %")
    assert "| e1 | 1 | reproduced | 0: reproduced | 3 | 20 % | mean/r/b (10 -> 12) |" in text
    assert "**partly -> not reproduced**" in text and "- CPU x" in text


def _copy_reports(dst):
    shutil.copytree(COMMITTED, dst / "reports" / "quick")
    return dst / "reports" / "quick"


@pytest.mark.skipif(not (COMMITTED / "findings.csv").is_file(), reason="no committed reports")
def test_verify_against_the_committed_reports_exits_by_the_verdicts(tmp_path):
    rerun = _copy_reports(tmp_path / "same")
    args = ["scale=quick", f"verify.reference={COMMITTED}", "verify.rerun=false", "tracking=none"]
    res = run_cli("verify", *args, f"paths.root={tmp_path / 'same'}", cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(rerun / "verify.csv")
    n = len(pd.read_csv(COMMITTED / "findings.csv"))
    assert len(table) == n and not table["verdict_changed"].any()
    numbered = table["n_values"] > 0  # (a finding may rest on another's numbers and have none of its own)
    assert numbered.sum() >= n - 2 and (table.loc[numbered, "max_rel_change"] == 0).all()
    assert f"0 of {n} verdicts changed" in (rerun / "VERIFY.md").read_text() and "verdicts changed" in res.stdout

    # One finding's verdict flipped and one of another's numbers 10 % higher: exit 1, both named.
    rerun = _copy_reports(tmp_path / "changed")
    path = rerun / "e2" / "tables" / "findings.json"
    found = json.loads(path.read_text())
    found[0]["verdict"] = "not reproduced" if found[0]["verdict"] != "not reproduced" else "reproduced"
    group, numbers = next(iter(found[1]["values"].items()))
    key = next(k for k, v in numbers.items() if isinstance(v, float) and v != 0)
    numbers[key] *= 1.1
    path.write_text(json.dumps(found))
    res = run_cli("verify", *args, f"paths.root={tmp_path / 'changed'}", cwd=REPO)
    assert res.returncode == 1, res.stderr[-3000:]
    table = pd.read_csv(rerun / "verify.csv").set_index(["experiment", "id"])
    assert table["verdict_changed"].sum() == 1 and table.loc[("e2", found[0]["id"])].verdict_changed
    moved = table.loc[("e2", found[1]["id"])]
    assert moved.max_rel_change == pytest.approx(0.1) and moved.largest_change_at == f"mean/{group}/{key}"
    assert f"1 of {n} verdicts changed (e2 {found[0]['id']})" in res.stdout


def test_verify_refuses_to_rerun_into_the_reports_it_checks(tmp_path):
    res = run_cli("verify", "scale=quick", f"verify.reference={tmp_path}/reports/quick", f"paths.root={tmp_path}",
                  "tracking=none", cwd=REPO)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith(
        f"reptopo verify: error: verify would rerun into {tmp_path}/reports/quick, the reports it checks")
    res = run_cli("verify", "scale=quick", "verify.experiments=[e9]", f"paths.root={tmp_path}", "tracking=none", cwd=REPO)
    assert res.returncode == 2 and "verify.experiments: ['e9'] are no paper experiments" in res.stderr
