"""The side-by-side table every benchmark script prints: one row per comparison, then notes."""
from __future__ import annotations

import os
import platform
import sys
from typing import Callable, Iterable


def run_rows(title: str, cases: Iterable[Callable[[], dict]], task_width: int = 32, ref_width: int = 22) -> None:
    """Print ``title`` with the machine, then run each case (a call returning a dict with task,
    ref_name, t_ref, t_ours in seconds, and extra) and print its row as it finishes (reference s,
    ours s, reference / ours); the extras follow the table."""
    print(f"# {title}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]}")
    header = f"{'task':<{task_width}} {'reference':<{ref_width}} {'ref s':>9} {'ours s':>9} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    notes = []
    for case in cases:
        r = case()
        print(f"{r['task']:<{task_width}} {r['ref_name']:<{ref_width}} {r['t_ref']:>9.3f} {r['t_ours']:>9.3f} "
              f"{r['t_ref'] / r['t_ours']:>7.1f}x", flush=True)
        notes.append(f"  {r['task']}: {r['extra']}")
    print("\n".join(notes))
