"""The one entry point: ``python -m reptopo <stage>`` dispatches to src/reptopo/stages/<stage>.py."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from reptopo.stages import STAGES


def _run(*args):
    return subprocess.run([sys.executable, "-m", "reptopo", *args], capture_output=True, text=True, timeout=120)


def test_every_stage_has_a_module_with_a_hydra_main_and_is_documented():
    from reptopo import __main__ as entry

    for stage in STAGES:
        assert (REPO / "src" / "reptopo" / "stages" / f"{stage}.py").is_file()
        assert f"\n  {stage} " in entry.__doc__  # the usage text describes it
    res = _run("--help")
    assert res.returncode == 0 and all(s in res.stdout for s in STAGES)


def test_unknown_or_missing_stage_is_one_error_line():
    res = _run("trian", "model=vgg_small")
    assert res.returncode == 2
    assert res.stderr.strip() == ("reptopo: error: unknown stage 'trian'; expected one of "
                                  "train, activations, homology, aggregate, compare, reproduction, pipeline, experiment")
    assert _run().returncode == 2
