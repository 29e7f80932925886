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
                                  "train, activations, homology, aggregate, compare, reproduction, pipeline, experiment, verify")
    assert _run().returncode == 2


CRASH = """
import ctypes
from reptopo.runtime.cli import run_stage

def kernel_that_crashes(cfg):
    ctypes.string_at(0)  # a native read of address 0: SIGSEGV, as a bad index in compiled code

run_stage(kernel_that_crashes, None, "homology")
"""


def test_a_native_crash_in_a_stage_prints_the_python_frame_that_called_it():
    import re

    res = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=120)
    assert res.returncode == -11  # killed by SIGSEGV, as before: the trace is printed on the way out
    assert "Fatal Python error: Segmentation fault" in res.stderr
    assert re.search(r'File "<string>", line 6 in kernel_that_crashes', res.stderr), res.stderr[-2000:]


def test_every_stage_app_runs_through_run_stage():
    # run_stage turns on the crash traces (and the one-line errors) for every stage.
    for stage in STAGES:
        text = (REPO / "src" / "reptopo" / "stages" / f"{stage}.py").read_text()
        main = text[text.index("def main("):]
        assert "run_stage(" in main, stage
