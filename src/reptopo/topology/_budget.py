"""Which H0 engine to run: the dense N x N matrix or the tiles, by N, d and the memory at hand."""

from __future__ import annotations

import numbers
import os
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

#: Above this many points the tiled CPU engine builds a single tree faster than the dense one
#: (benchmarks/bench_scale.py, 2 cores, d = 128: dense 0.21 s vs tiled 0.36 s at N = 5000;
#: 1.7 s vs 0.56 s at 10,000), so ``"auto"`` switches there even when the matrix would fit.
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
    except (OSError, ValueError):
        pass
    return None


# Where the cgroup files are (module constants, so a test can point them at a fake tree).
_PROC_CGROUP = "/proc/self/cgroup"
_CGROUP_ROOT = "/sys/fs/cgroup"


def _stat_field(path: str, key: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return int(value)
    except OSError:
        pass
    return 0


def _cgroup_room() -> int | None:
    """Bytes left under this process's memory cgroups (v1 or v2, its own and every parent's
    limit, e.g. a SLURM job's), not counting reclaimable page cache; None without a limit."""
    try:
        with open(_PROC_CGROUP) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            base, files = _CGROUP_ROOT, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base = os.path.join(_CGROUP_ROOT, "memory")
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        while True:  # from the process's own group up to the root: a parent's limit binds too
            folder = os.path.join(base, path.strip("/"))
            limit, used = _read_int(os.path.join(folder, files[0])), _read_int(os.path.join(folder, files[1]))
            if limit is not None and used is not None and limit < 2**60:  # v1 writes "no limit" as ~2**63
                cache = _stat_field(os.path.join(folder, "memory.stat"), files[2])
                rooms.append(max(limit - max(used - cache, 0), 0))
            if path.strip("/") == "":
                break
            path = os.path.dirname(path.rstrip("/"))
    return min(rooms) if rooms else None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the system's MemAvailable, the room
    left under its memory cgroups (:func:`_cgroup_room`), and the address-space limit
    (``ulimit -v``) minus this process's size; None where none of them can be read (not Linux)."""
    found = []
    kib = _proc_field_kib("/proc/meminfo", "MemAvailable")
    if kib is not None:
        found.append(kib * 1024)
    room = _cgroup_room()
    if room is not None:
        found.append(room)
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

    ``"auto"``: dense while its matrix (:func:`dense_bytes`) fits in the budget and, on the numba
    CPU engine, for a single tree (``many_trees=False``) while ``n_points <= DENSE_MAX_POINTS``;
    tiled otherwise.
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
    if many_trees or engine != "numpy":
        # The threshold was measured against the numba tiles; torch's tiled Borůvka recomputes
        # every distance in each of its ~log2 N passes, so there dense wins while it fits.
        return "dense"
    from .tiled import _kernels

    if _kernels() is None:  # without numba the tiles run on torch: same as above
        return "dense"
    return "dense" if n_points <= DENSE_MAX_POINTS else "tiled"
