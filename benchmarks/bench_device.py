"""The torch engine (CUDA) against the CPU engine: the same numbers, and the time each takes.

Run from the repository root on a machine with a GPU::

    PYTHONPATH=src python3 benchmarks/bench_device.py                      # CUDA, ~2-4 min
    PYTHONPATH=src python3 benchmarks/bench_device.py --quick              # smaller sizes
    PYTHONPATH=src .venv/bin/python benchmarks/bench_device.py --device torch-cpu --quick

``--device torch-cpu`` runs the same torch code on CPU tensors (to try the script without a GPU).

Checks (each prints PASS/FAIL with the measured difference; the exit status is 1 if any fails; a
step that raises, e.g. out of memory, is one FAIL and the others still run). The header line
shows what ``device="auto"`` resolves to (CUDA when torch sees a GPU).

1. Exact H0: sorted MST edge lengths, device vs ``device="cpu"``, elementwise relative difference
   <= 1e-6, on Gaussian clouds, a tie-heavy integer grid with duplicate points (zero-length bars
   must stay exactly zero), a tight cluster far from the origin (GEMM round-off) and a
   precomputed distance matrix.
2. PHdim, paper protocol (n = 500, 850, ...; 3 repeats): every E(n) and the dimension within 1e-6
   relative; also with the input given as a torch tensor on the device.
3. Local lifespans sum L_0 with 10 class labels, within 1e-6 relative.
4. H0 + H1 diagrams (giotto-ph fed the device-built distance matrix), when giotto-ph is
   installed: same H1 bar count, bars within 1e-6.

5. The tiled H0 engine on the device (``algorithm="tiled"``: row blocks of distances computed
   from the points, no N x N matrix) against the dense CPU tree, on the clouds of 1, and PHdim
   E(n) with ``algorithm="tiled"``.

Timings (best of ``--repeats`` after a warm-up call of each engine; results come back to the host,
so the GPU work is complete when the clock stops): PHdim at N=3000, d=512 and H0 at N=10,000 and
30,000, d=256, device vs CPU, with the ratio and the device's peak allocated memory; and the
tiled H0 at N=100k and 200k, d=128 (one call each), device vs the CPU's tiled engine.
This is a script, not a test. ``--json PATH`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from reptopo.topology import lifespans_sum, mst_edge_lengths, persistence_diagrams, phdim
from reptopo.topology._validation import resolve_device

RTOL = 1e-6


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest elementwise |a - b| / |b| (0 where both are 0; inf on a shape mismatch)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    den = np.abs(b)
    diff = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 0, diff / den, np.where(diff > 0, np.inf, 0.0))
    return float(rel.max(initial=0.0))


class Report:
    """PASS/FAIL lines and timing rows; a step that raises is one FAIL, and the rest still run."""

    def __init__(self) -> None:
        self.checks: list[dict] = []
        self.timings: list[dict] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    def close(self, name: str, got, ref, rtol: float = RTOL) -> None:
        r = _rel_diff(got, ref)
        self.check(name, r <= rtol, f"max rel diff {r:.2e} (tolerance {rtol:.0e})")

    def step(self, name: str, fn) -> None:
        """Run ``fn()``; an exception (a bug, CUDA out of memory) is recorded as a failed check."""
        try:
            fn()
        except Exception as exc:  # keep going: a device run is too scarce to stop at the first error
            self.check(name, False, f"raised {exc!r}")


def _gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _grid_with_duplicates() -> np.ndarray:
    g = np.arange(10.0)
    X = np.stack(np.meshgrid(g, g, g), -1).reshape(-1, 3)
    return np.vstack([X, X[:50]])


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _torch_device(engine: str):
    import torch

    return torch.device("cpu" if engine == "torch-cpu" else engine)


def run_checks(rep: Report, device: str, quick: bool) -> None:
    import torch

    def h0(name: str, X: np.ndarray, metric: str = "euclidean", n_zero: int | None = None) -> None:
        ref = mst_edge_lengths(X, metric=metric, device="cpu")
        got = mst_edge_lengths(X, metric=metric, device=device)
        rep.close(f"H0 lengths, {name}", got, ref)
        if n_zero is not None:
            zg, zr = np.count_nonzero(got == 0), np.count_nonzero(ref == 0)
            rep.check(
                "H0 zero bars stay exactly zero",
                zg == zr == n_zero,
                f"device {zg}, cpu {zr}, expected {n_zero}",
            )

    clouds = {
        "gaussian N=2000 d=64": (_gaussian(2000, 64, 1), None),
        "uniform N=800 d=3": (np.random.default_rng(2).uniform(size=(800, 3)), None),
        "grid 10^3 + 50 duplicates": (_grid_with_duplicates(), 50),
        "tight cluster at 1e4": (1e4 + _gaussian(300, 8, 3) * 1e-6, None),
    }
    for name, (X, n_zero) in clouds.items():
        rep.step(f"H0 lengths, {name}", lambda name=name, X=X, z=n_zero: h0(name, X, n_zero=z))
    def h0_tiled(name: str, X: np.ndarray) -> None:
        # The tiled engine on the device (row blocks computed from the points, no N x N matrix)
        # against the dense CPU tree.
        ref = mst_edge_lengths(X, device="cpu", algorithm="dense")
        got = mst_edge_lengths(X, device=device, algorithm="tiled")
        rep.close(f"tiled H0 lengths, {name}", got, ref)

    for name, (X, _) in clouds.items():
        rep.step(f"tiled H0 lengths, {name}", lambda name=name, X=X: h0_tiled(name, X))
    Xp = _gaussian(400, 5, 4)
    Dp = np.sqrt(((Xp[:, None] - Xp[None]) ** 2).sum(-1))
    rep.step("H0 lengths, precomputed", lambda: h0("precomputed metric", Dp, "precomputed"))

    n, d = (1500, 128) if quick else (3000, 512)
    X = _gaussian(n, d, 5)

    def phdim_check() -> None:
        ref = phdim(X, n_repeats=3, seed=7, device="cpu")
        got = phdim(X, n_repeats=3, seed=7, device=device)
        rep.close(f"PHdim E(n), N={n} d={d}, 3 repeats", got.E, ref.E)
        rep.close(f"PHdim dim, N={n} d={d}", [got.dim], [ref.dim])
        # Input already on the device: accepted, and the same numbers.
        on_device = phdim(
            torch.from_numpy(X).to(_torch_device(device)), n_repeats=3, seed=7, device=device
        )
        rep.close("PHdim from a device tensor", on_device.E, ref.E)
        tiled = phdim(X, n_repeats=3, seed=7, device=device, algorithm="tiled")
        rep.close("PHdim E(n), tiled on the device", tiled.E, ref.E)

    rep.step("PHdim", phdim_check)

    labels = np.random.default_rng(6).integers(0, 10, size=n)
    rep.step(
        "local L_0",
        lambda: rep.close(
            "local L_0, 10 classes",
            [lifespans_sum(X, 0, labels=labels, device=device)],
            [lifespans_sum(X, 0, labels=labels, device="cpu")],
        ),
    )

    try:
        import gph  # noqa: F401
    except Exception as exc:  # absent, or built against another numpy
        print(f"SKIP  H0+H1 diagrams: giotto-ph does not import here ({exc})", flush=True)
        return

    def h1_check() -> None:
        Xs = _gaussian(600, 16, 8)
        ref = persistence_diagrams(Xs, maxdim=1, device="cpu")
        got = persistence_diagrams(Xs, maxdim=1, device=device)
        rep.close("H0 diagram (finite deaths)", got[0][:-1, 1], ref[0][:-1, 1])
        same = len(got[1]) == len(ref[1])
        rep.check("H1 bar count", same, f"device {len(got[1])}, cpu {len(ref[1])}")
        if same:
            rep.close("H1 bars", got[1], ref[1])

    rep.step("H0+H1 diagrams", h1_check)


def run_timings(rep: Report, device: str, quick: bool, repeats: int) -> None:
    import torch

    cuda = device.startswith("cuda")
    tdev = _torch_device(device)

    warm = _gaussian(300, 8)
    for dev in ("cpu", device):  # imports, numba compilation, CUDA context and kernels
        phdim(warm, n_start=100, n_step=50, device=dev)

    if quick:
        rows = [("PHdim N=1500 d=128", 1500, 128, "phdim"), ("H0 N=4000 d=64", 4000, 64, "h0")]
    else:
        rows = [
            ("PHdim N=3000 d=512", 3000, 512, "phdim"),
            ("H0 N=10000 d=256", 10_000, 256, "h0"),
            ("H0 N=30000 d=256", 30_000, 256, "h0"),
            ("tiled H0 N=100k d=128", 100_000, 128, "h0 tiled"),
            ("tiled H0 N=200k d=128", 200_000, 128, "h0 tiled"),
        ]
    print(f"\n{'task':24s} {'cpu s':>9s} {device + ' s':>12s} {'speedup':>8s} {'peak MiB':>9s}")
    for name, n, d, kind in rows:
        X = _gaussian(n, d)

        def run(dev: str, X=X, kind=kind) -> float:
            if kind == "phdim":
                return phdim(X, device=dev).dim
            algorithm = "tiled" if kind == "h0 tiled" else "auto"
            return float(mst_edge_lengths(X, device=dev, algorithm=algorithm).sum())

        def timed(name=name, run=run, kind=kind) -> None:
            tries = 1 if kind == "h0 tiled" else repeats  # minutes on the CPU: one call each
            t_cpu, v_cpu = _best_time(lambda: run("cpu"), tries)
            if cuda:
                torch.cuda.reset_peak_memory_stats(tdev)
            t_dev, v_dev = _best_time(lambda: run(device), tries)
            peak = torch.cuda.max_memory_allocated(tdev) / 2**20 if cuda else None
            rep.timings.append(
                {"task": name, "cpu_s": t_cpu, "device_s": t_dev, "speedup": t_cpu / t_dev,
                 "device_peak_mib": peak, "value_cpu": v_cpu, "value_device": v_dev}
            )
            peak_s = f"{peak:9.0f}" if peak is not None else f"{'-':>9s}"
            print(f"{name:24s} {t_cpu:9.3f} {t_dev:12.3f} {t_cpu / t_dev:7.1f}x {peak_s}", flush=True)
            rep.close(f"{name}: same value", [v_dev], [v_cpu])

        rep.step(f"timing {name}", timed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help='"cuda" (default), "cuda:N" or "torch-cpu"')
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per engine (best kept)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch

    engine = resolve_device(args.device)  # fails clearly when CUDA is asked for but absent
    gpu = torch.cuda.get_device_name(_torch_device(engine)) if engine.startswith("cuda") else "none"
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPU cores, GPU: {gpu}; device engine {engine!r}; "
        f'device="auto" resolves to {resolve_device("auto")!r}',
        flush=True,
    )
    rep = Report()
    try:
        run_checks(rep, engine, args.quick)
        run_timings(rep, engine, args.quick, args.repeats)
    finally:  # whatever happened, keep what was measured
        failed = [c["check"] for c in rep.checks if not c["ok"]]
        print(f"\n{len(rep.checks) - len(failed)} of {len(rep.checks)} checks passed", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(
                    {"device": engine, "gpu": gpu, "auto": resolve_device("auto"),
                     "torch": torch.__version__, "numpy": np.__version__,
                     "cpu_cores": os.cpu_count(), "checks": rep.checks, "timings": rep.timings},
                    f, indent=2,
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
