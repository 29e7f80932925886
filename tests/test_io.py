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
