"""Probe dumping: peak memory (streaming pooled writes vs holding full feature maps) and hook
overhead vs a plain forward pass.

Model: the CIFAR ResNet-32 of ``conf/model/resnet32.yaml`` (3x32x32 inputs, 10 classes, eval mode),
12 probes evenly spaced over its block outputs (the last is the logits), batches of 500.

1. Peak memory of dumping N inputs x 12 probes, each mode in its own spawned process (the peak
   RSS mark is reset just before the dump through ``/proc/self/clear_refs`` and ``VmHWM`` read
   after it; the inputs are allocated before the reset, so the figure is the dump's own):
   - ``stream``: ``reptopo.probes.ActivationRecorder`` pools inside the hook (GAP) and the sink
     writes each pooled batch into a memory-mapped ``.npy`` per probe, as the activations stage
     does;
   - ``hold``: hooks keep every full feature map (N, C, H, W) and pool at the end.
   Full maps of 10k inputs x 12 probes take several GB, so ``hold`` is measured at smaller N and
   its bytes of feature maps are also given exactly (they grow linearly with N).
2. Hook overhead: wall time of the forward passes over N inputs with the recorder + memmap sink
   vs plain forward passes (best of ``--repeats``, interleaved), and the ratio.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_probes.py           # N = 10,000 (~3-5 min on 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/bench_probes.py --quick   # N = 2,000
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

from _memory import reset_peak_rss, status_kib

os.environ.setdefault("OMP_NUM_THREADS", "2")
REPO = Path(__file__).resolve().parents[1]
K_PROBES = 12
BATCH = 500


def _setup(n: int):
    import torch
    from hydra import compose, initialize_config_dir

    from reptopo.nets import build_model, example_input
    from reptopo.probing.probes import select_probes
    from reptopo.runtime.schema import register_config_store

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    register_config_store()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=cifar_resnet", "model.kwargs.depth=32", f"probe.num={K_PROBES}"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 3, 10, 32).eval()
    probes = select_probes(model, cfg.model, cfg.probe, example_input(3, 32))
    x = torch.randn(n, 3, 32, 32)
    return model, probes, x


def _stream_dump(model, probes, x, out_dir: Path) -> dict:
    import numpy as np
    import torch

    from reptopo.probing.probes import ActivationRecorder

    n = len(x)
    arrays, cursor = {}, {"start": 0, "stop": 0}

    def sink(probe, pooled):
        if probe.name not in arrays:
            arrays[probe.name] = np.lib.format.open_memmap(out_dir / f"layer_{probe.index:02d}.npy", mode="w+",
                                                           dtype=np.float32, shape=(n, pooled.shape[1]))
        arrays[probe.name][cursor["start"]:cursor["stop"]] = pooled.numpy()

    with torch.no_grad(), ActivationRecorder(model, probes, sink):
        for start in range(0, n, BATCH):
            cursor["start"], cursor["stop"] = start, min(n, start + BATCH)
            model(x[start:start + BATCH])
    for a in arrays.values():
        a.flush()
    return {name: a.shape for name, a in arrays.items()}


def _hold_dump(model, probes, x) -> int:
    import torch

    kept = {p.name: [] for p in probes}
    modules = dict(model.named_modules())
    handles = [modules[p.name].register_forward_hook(lambda m, i, o, k=p.name: kept[k].append(o.detach()))
               for p in probes]
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            model(x[start:start + BATCH])
    for h in handles:
        h.remove()
    nbytes = sum(t.numel() * t.element_size() for ts in kept.values() for t in ts)
    pooled = {k: torch.cat(ts).mean(dim=(2, 3)) if ts[0].dim() == 4 else torch.cat(ts) for k, ts in kept.items()}
    assert all(v.shape[0] == len(x) for v in pooled.values())
    return nbytes


def _memory_worker(mode: str, n: int, queue) -> None:
    model, probes, x = _setup(n)
    with tempfile.TemporaryDirectory() as tmp:
        _stream_dump(model, probes, x[:BATCH], Path(tmp))  # warm-up (allocator, kernels)
    before = status_kib("VmRSS")
    exact = reset_peak_rss()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        held = _hold_dump(model, probes, x) if mode == "hold" else (_stream_dump(model, probes, x, Path(tmp)) and 0)
    seconds = time.perf_counter() - t0
    peak = status_kib("VmHWM") if exact else None
    queue.put({"mode": mode, "n": n, "peak_mib": (peak - before) / 1024 if peak and before else float("nan"),
               "held_mib": held / 2**20, "seconds": seconds, "probes": [p.name for p in probes]})


def _run_memory(mode: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_memory_worker, args=(mode, n, q))
    p.start()
    res = q.get()
    p.join()
    return res


def _overhead(n: int, repeats: int) -> tuple[float, float]:
    import torch

    model, probes, x = _setup(n)
    plain, hooked = [], []
    with tempfile.TemporaryDirectory() as tmp:
        _stream_dump(model, probes, x[:BATCH], Path(tmp))
        for _ in range(repeats):
            t0 = time.perf_counter()
            with torch.no_grad():
                for start in range(0, n, BATCH):
                    model(x[start:start + BATCH])
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _stream_dump(model, probes, x, Path(tmp))
            hooked.append(time.perf_counter() - t0)
    return min(plain), min(hooked)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 2000 instead of 10,000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = 2000 if args.quick else 10_000
    hold_ns = [500, 1000] if args.quick else [1000, 2000]

    stream = _run_memory("stream", n)
    print(f"ResNet-32 (CIFAR), 3x32x32 inputs, {K_PROBES} probes: {', '.join(stream['probes'])}\n")
    print("| mode | N | peak RSS during the dump (MiB) | full feature maps held (MiB) | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| stream (pool in hook, memmap writes) | {n} | {stream['peak_mib']:.0f} | 0 | {stream['seconds']:.1f} |")
    per_input = None
    for hn in hold_ns:
        hold = _run_memory("hold", hn)
        per_input = hold["held_mib"] / hn
        print(f"| hold (full maps, pool at end) | {hn} | {hold['peak_mib']:.0f} | {hold['held_mib']:.0f} | {hold['seconds']:.1f} |")
    print(f"| hold, extrapolated (linear in N) | {n} | >= {per_input * n:.0f} | {per_input * n:.0f} | |")
    plain, hooked = _overhead(2000 if not args.quick else 1000, args.repeats)
    m = 2000 if not args.quick else 1000
    print(f"\nHook overhead, N={m}, batch {BATCH}, best of {args.repeats}: plain forward {plain:.2f} s, "
          f"with {K_PROBES} pooling hooks + memmap writes {hooked:.2f} s, ratio {hooked / plain:.3f} "
          f"({(hooked / plain - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
