"""Fingerprints that follow the code: each stage's fingerprint hashes the normalised source of its
import closure and the versions of the libraries it computes with, so editing what computes a
stage's numbers recomputes it and everything after it, and editing a comment reuses everything.
(The same on real runs: tests/test_fingerprints_e2e.py.)"""
from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO, compose_cfg
from reptopo.runtime import codehash, confighash
from reptopo.runtime.codehash import BOOKKEEPING, code_fingerprint, library_versions, stage_modules
from reptopo.runtime.imports import graph, third_party_imports

SRC = REPO / "src"
CHAINS = {"train": ("train",), "activations": ("train", "activations"),
          "homology": ("train", "activations", "homology"), "compare": ("compare",)}
DESCRIPTORS = "reptopo/topology/descriptors.py"
LIFESPANS_SUM = "        out[t] = 0.5 * np.sum((dgm[finite, 1] - dgm[finite, 0]) ** alpha)"
LIFESPANS_DOUBLED = "        out[t] = 2 * (0.5 * np.sum((dgm[finite, 1] - dgm[finite, 0]) ** alpha))"


def _variant(tmp_path: Path, name: str, edits: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Copy src/ to tmp_path/name, apply {file: (old, new)} edits, return {stage: code hash}."""
    src = tmp_path / name
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel, (old, new) in edits.items():
        path = src / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{rel}: the edit's anchor {old!r} is not there once"
        path.write_text(text.replace(old, new))
    return {stage: code_fingerprint(chain, src).digest for stage, chain in CHAINS.items()}


def test_the_doubling_edit_rewrites_lifespans_from_diagrams():
    # The edits below double L_k by rewriting this line of lifespans_from_diagrams.
    text = (SRC / DESCRIPTORS).read_text()
    body = text[text.index("def lifespans_from_diagrams"):]
    assert LIFESPANS_SUM in body[: body.index("\ndef ", 1)] and text.count(LIFESPANS_SUM) == 1


def test_comments_and_docstrings_do_not_count_code_does_for_the_stage_and_the_stages_after(tmp_path):
    base = _variant(tmp_path, "base", {})
    cosmetic = _variant(tmp_path, "cosmetic", {
        DESCRIPTORS: (LIFESPANS_SUM, "        # a new comment\n\n" + LIFESPANS_SUM + "  # trailing"),
        "reptopo/nets/vision.py": ('"""Vision and point-cloud networks:', '"""A rewritten docstring. Networks:'),
    })
    assert cosmetic == base
    doubled = _variant(tmp_path, "doubled", {
        DESCRIPTORS: (LIFESPANS_SUM, LIFESPANS_DOUBLED)})
    assert doubled["homology"] != base["homology"] and doubled["compare"] != base["compare"]
    assert doubled["train"] == base["train"] and doubled["activations"] == base["activations"]
    retrained = _variant(tmp_path, "retrained", {
        "reptopo/nets/lightning.py": ("import torch\n", "import torch\n\nEXTRA = 1\n")})
    assert all(retrained[s] != base[s] for s in ("train", "activations", "homology"))
    assert retrained["compare"] == base["compare"]  # compare reads finished runs: their stamps say


def test_bookkeeping_modules_exist_and_compute_nothing():
    modules, _, _ = graph(SRC)
    assert set(BOOKKEEPING) <= set(modules), sorted(set(BOOKKEEPING) - set(modules))
    numeric = {"numpy", "scipy", "torch", "torchvision", "numba", "scikit-learn", "giotto-ph", "giotto-tda",
               "scikit-dimension", "timm", "transformers", "tokenizers", "pytorch-lightning", "torchattacks"}
    for m in BOOKKEEPING:
        # No library that computes (tracking reads tables back with pandas for notebooks).
        assert not set(library_versions(third_party_imports(m, modules[m]))) & numeric, m
    train = stage_modules(("train",), SRC)
    assert "reptopo.stages.train" in train and "reptopo.nets.vision" in train and "reptopo.runtime.io" in train
    assert not set(train) & set(BOOKKEEPING) and "reptopo.topology.phdim" not in train


def test_each_stage_hashes_the_versions_of_the_libraries_it_computes_with():
    libs = {stage: code_fingerprint(chain).libraries for stage, chain in CHAINS.items()}
    assert {"torch", "timm", "transformers", "tokenizers", "pytorch-lightning", "numpy"} <= set(libs["train"])
    assert "giotto-ph" not in libs["train"] and "torchattacks" in libs["activations"]
    assert {"giotto-ph", "scikit-dimension", "numba", "llvmlite", "scipy"} <= set(libs["homology"])
    assert "giotto-tda" in libs["compare"]
    assert not any({"mlflow", "hydra-core", "omegaconf", "tqdm"} & set(v) for v in libs.values())
    assert all(v == metadata.version(d) for per in libs.values() for d, v in per.items())


def test_the_fingerprint_takes_the_code_of_the_stage_and_of_the_stages_it_reads(tmp_path, monkeypatch):
    cfg = compose_cfg(tmp_path)
    versions = dict.fromkeys(["train", "activations", "homology", "compare"], "v1")

    class Fake:
        def __init__(self, stages):
            self.digest = "/".join(f"{s}={versions[s]}" for s in stages)

    monkeypatch.setattr(confighash, "code_fingerprint", Fake)
    from reptopo.runtime.stamps import fingerprint

    before = {s: fingerprint(cfg, s) for s in CHAINS}
    versions["homology"] = "v2"
    after = {s: fingerprint(cfg, s) for s in CHAINS}
    assert after["homology"] != before["homology"]
    assert all(after[s] == before[s] for s in ("train", "activations", "compare"))
    versions["train"] = "v2"
    retrained = {s: fingerprint(cfg, s) for s in CHAINS}
    assert all(retrained[s] not in (before[s], after[s]) for s in ("train", "activations", "homology"))
    assert retrained["compare"] == before["compare"]
    # A pair's fingerprint follows its inputs (the two runs' fingerprints).
    assert fingerprint(cfg, "compare", {"runs": [1]}) != fingerprint(cfg, "compare", {"runs": [2]})


def test_stamps_record_what_made_the_output(tmp_path):
    from reptopo.runtime.stamps import is_complete, read_stamp, write_stamp

    cfg = compose_cfg(tmp_path)
    write_stamp(tmp_path, cfg, "homology", seconds=1.234, threads=2)
    stamp = read_stamp(tmp_path)
    fp = code_fingerprint(CHAINS["homology"])
    assert stamp["stage"] == "homology" and stamp["seconds"] == 1.23
    assert stamp["code"] == fp.code and stamp["libraries"] == fp.libraries and stamp["python"].startswith("3.")
    assert stamp["machine"]["threads"] == 2 and stamp["machine"]["cpu"] and stamp["machine"]["arch"]
    assert is_complete(tmp_path, cfg, "homology")
    assert not is_complete(tmp_path, compose_cfg(tmp_path, ["seed=1"]), "homology")
    assert not is_complete(tmp_path, cfg, "activations")


def test_provenance_summaries_merge_and_show_mixed_pools():
    from reptopo.runtime.stamps import describe_provenance, summarise_provenance

    def stamp(stage, cpu="AMD EPYC", numpy="2.4.6", threads=1):
        return {"stage": stage, "code": "a" * 64, "python": "3.11.7 (CPython)", "libraries": {"numpy": numpy},
                "machine": {"cpu": cpu, "arch": "x86_64", "isa": ["avx2"], "threads": threads}}

    one = summarise_provenance([stamp("train"), stamp("homology"), {"stage": "train"}])
    assert one["machines"] == [{"cpu": "AMD EPYC", "arch": "x86_64", "isa": ["avx2"], "threads": 1,
                                "outputs": {"train": 1, "homology": 1}}]
    assert one["libraries"] == {"numpy": ["2.4.6"]} and one["code"] == {"homology": ["a" * 12], "train": ["a" * 12]}
    merged = summarise_provenance([stamp("train", cpu="Intel Xeon", numpy="2.3.0", threads=2)], [one, one])
    assert [m["outputs"] for m in merged["machines"]] == [{"train": 2, "homology": 2}, {"train": 1}]
    assert merged["libraries"] == {"numpy": ["2.3.0", "2.4.6"]}
    lines = describe_provenance(merged)
    assert lines[0].startswith("CPU AMD EPYC (x86_64; avx2), 1 thread(s) per job: 2 homology, 2 train")
    assert "numpy 2.3.0/2.4.6" in lines[-2]
    assert json.loads(json.dumps(merged)) == merged  # written as JSON


@pytest.mark.parametrize("source, same", [
    ('def f(x):\n    """Doc."""\n    return x + 1\n', True),
    ('def f(x):\n    # why\n    return (x +\n            1)\n', True),
    ('def f(x):\n    return x + 2\n', False),
    ('def f(y):\n    return y + 1\n', False),
])
def test_normalised_source_ignores_only_comments_docstrings_and_layout(tmp_path, source, same):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f(x):\n    return x + 1\n")
    b.write_text(source)
    assert (codehash.normalised_source(a) == codehash.normalised_source(b)) is same
