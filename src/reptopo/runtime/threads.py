"""Thread caps: parallel Hydra jobs must not oversubscribe the cores."""
from __future__ import annotations

import os

from reptopo.runtime.config import hydra_config, in_multirun


def threads_per_job() -> int:
    """Cores for this process: $OMP_NUM_THREADS, else all cores / the launcher's parallel jobs
    (in a multirun; a single run has the cores to itself whatever launcher its config names)."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    if n.isdigit() and int(n) > 0:
        return int(n)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not in_multirun():
        return cores
    hc = hydra_config()
    try:
        n_jobs = int(hc.launcher.get("n_jobs") or 1) if hc is not None else 1
    except Exception:  # a launcher without n_jobs
        n_jobs = 1
    if n_jobs < 1:  # joblib's -1 = one job per core
        n_jobs = cores
    return max(1, cores // n_jobs)


def limit_threads() -> int:
    """Cap torch and BLAS threads at :func:`threads_per_job` (parallel jobs must not oversubscribe:
    OpenMP threads spinning on shared cores slow training by an order of magnitude)."""
    import torch
    from threadpoolctl import threadpool_limits

    n = threads_per_job()
    torch.set_num_threads(n)
    threadpool_limits(n)
    return n
