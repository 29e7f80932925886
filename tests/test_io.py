"""Atomic writes: outputs appear whole or not at all."""
from __future__ import annotations

import pytest

from reptopo.runtime.io import atomic_entries


def _write_run(parent, tag, fail=False):
    with atomic_entries(parent) as out:
        (out / "figures").mkdir()
        (out / "figures" / "a.png").write_text(tag)
        (out / "depth_curves.csv").write_text(tag)
        if fail:
            raise RuntimeError("the report failed after the figures were drawn")
        (out / "tables").mkdir()
        (out / "tables" / "summary.csv").write_text(tag)


def test_atomic_entries_replace_every_output_together(tmp_path):
    (tmp_path / "keep.json").write_text("not ours")
    _write_run(tmp_path, "run 1")
    _write_run(tmp_path, "run 2")
    assert (tmp_path / "figures/a.png").read_text() == "run 2"
    assert (tmp_path / "depth_curves.csv").read_text() == "run 2"
    assert (tmp_path / "tables/summary.csv").read_text() == "run 2"
    assert (tmp_path / "keep.json").read_text() == "not ours"  # entries it did not write stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth_curves.csv", "figures", "keep.json", "tables"]


def test_a_failure_midway_changes_nothing(tmp_path):
    _write_run(tmp_path, "run 1")
    with pytest.raises(RuntimeError, match="report failed"):
        _write_run(tmp_path, "run 2", fail=True)
    # The new figures and curves were written before the failure, but none of them landed.
    assert (tmp_path / "figures/a.png").read_text() == "run 1"
    assert (tmp_path / "depth_curves.csv").read_text() == "run 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth_curves.csv", "figures", "tables"]


def _hold_lock_then_write(final, log, seconds):
    import time

    from reptopo.runtime.io import output_lock

    with output_lock(final):
        with open(log, "a") as fh:
            fh.write("first in\n")
        time.sleep(seconds)
        with open(log, "a") as fh:
            fh.write("first out\n")


def test_output_lock_makes_a_second_job_wait(tmp_path):
    """Parallel jobs that share an output take turns: the second enters only after the first left."""
    import multiprocessing
    import time

    from reptopo.runtime.io import output_lock

    final, log = tmp_path / "train" / "ckpt", tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    first = ctx.Process(target=_hold_lock_then_write, args=(final, log, 1.5))
    first.start()
    while not log.exists():  # the first job holds the lock
        time.sleep(0.02)
    with output_lock(final):
        with open(log, "a") as fh:
            fh.write("second in\n")
    first.join(10)
    assert log.read_text().splitlines() == ["first in", "first out", "second in"]
    assert not final.exists() and (final.parent / ".ckpt.lock").is_file()  # the lock file, never the output


def test_output_lock_is_released_when_the_block_fails(tmp_path):
    from reptopo.runtime.io import output_lock

    with pytest.raises(RuntimeError):
        with output_lock(tmp_path / "out"):
            raise RuntimeError("training failed")
    with output_lock(tmp_path / "out"):  # not held any more: this would block forever otherwise
        pass
