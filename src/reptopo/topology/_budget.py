"""Which H0 engine to run: the dense N x N matrix or the tiles, by N, d and the memory at hand."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = [
    "ALGORITHMS",
    "DENSE_MAX_POINTS",
    "available_memory",
    "dense_bytes",
    "check_algorithm",
    "check_memory_limit",
    "choose_algorithm",
]

ALGORITHMS = ("auto", "dense", "tiled")

#: Above this many points the tiled CPU engine is faster than the dense one for a single tree
#: (benchmarks/bench_topology.py, 2 cores: 0.18 s vs 0.19 s at N = 5000, d = 128; 0.54 s vs
#: 0.93 s at 10,000), so ``"auto"`` switches there even when the matrix would fit.
DENSE_MAX_POINTS = 4096


def dense_bytes(n_points: int) -> int:
    """Peak bytes of the dense engine on ``n_points``: the float64 matrix plus 10 %."""
    return int(8.8 * n_points * n_points)


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _proc_field_kib(path: str, field: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the system's MemAvailable, the
    cgroup's limit minus its usage, and the address-space limit (``ulimit -v``) minus this
    process's size; None where none of them can be read (not Linux)."""
    found = []
    kib = _proc_field_kib("/proc/meminfo", "MemAvailable")
    if kib is not None:
        found.append(kib * 1024)
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        found.append(max(limit - used, 0))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            size = _proc_field_kib("/proc/self/status", "VmSize")
            found.append(max(soft - (size or 0) * 1024, 0))
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


def _device_memory(engine: str) -> int | None:
    if not engine.startswith("cuda"):
        return available_memory()
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(engine))
    return int(free)


def check_algorithm(algorithm: Any) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")
    return algorithm


def check_memory_limit(memory_limit: Any) -> int | None:
    if memory_limit is None:
        return None
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, numbers.Real) or not memory_limit > 0:
        raise ValueError(f"memory_limit must be a number of bytes > 0 or None, got {memory_limit!r}")
    return int(memory_limit)


def choose_algorithm(
    algorithm: str, n_points: int, engine: str, memory_limit: int | None = None, *, many_trees: bool = False
) -> str:
    """Resolve ``algorithm`` ("auto", "dense", "tiled") to "dense" or "tiled".

    ``"auto"``: dense while its matrix (:func:`dense_bytes`) fits in the budget and, on CPU, for a
    single tree (``many_trees=False``) while ``n_points <= DENSE_MAX_POINTS``; tiled otherwise.
    With ``many_trees`` (PHdim: one matrix shared by every subsample) the matrix is worth
    building whenever it fits. The budget is ``memory_limit`` bytes, else half of what the
    device has free (:func:`available_memory`; the GPU's free memory on CUDA).
    """
    algorithm = check_algorithm(algorithm)
    if algorithm != "auto":
        return algorithm
    budget = check_memory_limit(memory_limit)
    if budget is None:
        free = _device_memory(engine)
        budget = free // 2 if free is not None else 4 * 2**30
    if dense_bytes(n_points) > budget:
        return "tiled"
    if many_trees or engine.startswith("cuda"):
        return "dense"
    return "dense" if n_points <= DENSE_MAX_POINTS else "tiled"
