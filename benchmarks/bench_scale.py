"""H0, PHdim and H1 as N and d grow: the dense engine, the tiled one and giotto-ph, time and memory.

Run from the repository root, on an otherwise idle machine::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scale.py          # N up to 100,000 (~10 min)
    PYTHONPATH=src .venv/bin/python benchmarks/bench_scale.py --quick  # N up to 20,000 (~2 min)

Every measurement runs in its own spawned process (same imports, a warm-up call on 300 points
first), which reports its wall time and its peak resident memory during the call (Linux: the
peak mark is reset through ``/proc/self/clear_refs`` just before the call and ``VmHWM`` read after
it), as "+MiB" over the RSS before the call, so the input cloud itself is not counted. A case
whose matrix would not fit in half of the memory available is skipped and says so ("does not
fit"): 8 N^2 bytes for the dense engine; giotto-ph (``ripser_parallel(X, maxdim=0)`` from points)
measured at about 26 N^2 bytes. Rows:

- H0 of a standard Gaussian cloud (seed 0), d = 128, N = 10k, 20k, 50k, 100k; and d = 16, 512
  at N = 20k: giotto-ph / dense / tiled, with the sum of H0 deaths checked across engines;
- PHdim at N = 50k, d = 128 on 12 log-spaced sizes from 1000 to N (``algorithm="auto"``: tiled);
- the paper's PHdim (N = 3000, protocol sizes) and H0 + H1 (N = 1000, 2000): one dense matrix,
  for the cost table.

Prints one table (engine, N, d, seconds, +MiB) and then one line per checked agreement. This is
a script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time

import numpy as np
from _memory import reset_peak_rss, status_kib

GPH_BYTES_PER_PAIR = 26  # giotto-ph's H0 from points, measured: +2608 MiB at N = 10,000


def _gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def _worker(task: str, n: int, d: int, queue) -> None:
    import gph

    from reptopo import topology

    X = _gaussian(n, d)
    calls = {
        "h0 giotto-ph": lambda Y: gph.ripser_parallel(Y, maxdim=0, n_threads=-1)["dgms"][0][:-1, 1],
        "h0 dense": lambda Y: topology.mst_edge_lengths(Y, algorithm="dense"),
        "h0 tiled": lambda Y: topology.mst_edge_lengths(Y, algorithm="tiled"),
        "h0 auto": lambda Y: topology.mst_edge_lengths(Y),
        "h0+h1 dense": lambda Y: topology.persistence_diagrams(Y, maxdim=1)[1][:, 1],
        "phdim protocol": lambda Y: np.array([topology.phdim(Y).dim]),
        "phdim log-sizes": lambda Y: np.array([topology.phdim(
            Y, sizes=topology.phdim_log_sizes(1000, Y.shape[0], 12)).dim]),
    }
    fn = calls[task]
    fn(X[: 1200 if task.startswith("phdim") else 300])  # warm-up: imports, numba compilation
    before = status_kib("VmRSS") or 0.0
    exact = reset_peak_rss()
    t0 = time.perf_counter()
    out = fn(X)
    elapsed = time.perf_counter() - t0
    peak = status_kib("VmHWM") if exact else None
    queue.put({"time": elapsed, "plus_mib": None if peak is None else (peak - before) / 1024,
               "value": float(np.sum(out.astype(np.float64)))})


def _isolated(task: str, n: int, d: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(task, n, d, queue))
    proc.start()
    while True:
        try:
            out = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty: still running, or died (say so instead of waiting)
            if not proc.is_alive():
                return {"time": float("nan"), "plus_mib": None, "value": float("nan"),
                        "error": f"exit {proc.exitcode}"}
    proc.join()
    return out


def _fits(task: str, n: int) -> bool:
    from reptopo.topology._budget import available_memory, dense_bytes

    budget = (available_memory() or 8 * 2**30) / 2
    if task == "h0 giotto-ph":
        return GPH_BYTES_PER_PAIR * n * n <= budget
    if task in ("h0 dense", "h0+h1 dense", "phdim protocol"):
        return dense_bytes(n) <= budget
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N up to 20,000")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    args = parser.parse_args(argv)
    sizes = [10_000, 20_000] if args.quick else [10_000, 20_000, 50_000, 100_000]
    cases = [(t, n, 128) for n in sizes for t in ("h0 giotto-ph", "h0 dense", "h0 tiled")]
    cases += [(t, 20_000, d) for d in (16, 512) for t in ("h0 dense", "h0 tiled")]
    cases += [("h0 dense", 5000, 128), ("h0 tiled", 5000, 128)]
    cases += [("phdim protocol", 3000, 128), ("h0+h1 dense", 1000, 64), ("h0+h1 dense", 2000, 64)]
    if not args.quick:
        cases += [("phdim log-sizes", 50_000, 128)]

    if args.tasks:
        keep = {t.strip() for t in args.tasks.split(",")}
        cases = [c for c in cases if c[0] in keep]
    print(f"# reptopo scale benchmark ({'quick' if args.quick else 'full'}); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    header = f"{'task':<16} {'N':>8} {'d':>5} {'seconds':>9} {'+MiB':>8}"
    print(header)
    print("-" * len(header))
    values: dict[tuple, float] = {}
    for task, n, d in cases:
        if not _fits(task, n):
            print(f"{task:<16} {n:>8} {d:>5} {'does not fit':>18}", flush=True)
            continue
        r = _isolated(task, n, d)
        if "error" in r:
            print(f"{task:<16} {n:>8} {d:>5} {'failed: ' + r['error']:>18}", flush=True)
            continue
        mib = "n/a" if r["plus_mib"] is None else f"{r['plus_mib']:.0f}"
        print(f"{task:<16} {n:>8} {d:>5} {r['time']:>9.2f} {mib:>8}", flush=True)
        values[(task, n, d)] = r["value"]
    for (task, n, d), v in values.items():
        if task in ("h0 giotto-ph", "h0 dense") and ("h0 tiled", n, d) in values:
            ref = values[("h0 tiled", n, d)]
            print(f"  N={n} d={d}: sum of H0 deaths, {task} vs tiled: rel. diff {abs(v - ref) / ref:.1e}")


if __name__ == "__main__":
    main()
