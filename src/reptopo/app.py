"""Glue shared by the Hydra stage apps: config location, path resolution, clean error exits.

Stages are ``python -m reptopo.<stage>``; each one's ``main`` only parses config and calls the
stage's pure ``run(cfg)`` through :func:`run_stage`.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from reptopo.errors import ReptopoError

log = logging.getLogger("reptopo")

_PACKAGE_CONF = Path(__file__).resolve().parents[2] / "conf"


def config_dir() -> str:
    """The conf/ directory the apps read: $REPTOPO_CONF, else ./conf, else the source tree's.

    Preferring ./conf makes a copy of the project (e.g. a DVC pipeline in another checkout)
    use its own configs even when the package is installed from elsewhere.
    """
    env = os.environ.get("REPTOPO_CONF")
    if env:
        return str(Path(env).resolve())
    local = Path.cwd() / "conf"
    if (local / "config.yaml").is_file():
        return str(local)
    return str(_PACKAGE_CONF)


def abspath(path: str | os.PathLike) -> Path:
    """Absolute path of a config path (relative ones resolve against the working directory)."""
    return Path(os.path.expanduser(str(path))).resolve()


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # not under Hydra
        return False


def run_stage(run: Callable[[DictConfig], Any], cfg: DictConfig, stage: str) -> Any:
    """Call ``run(cfg)``; a :class:`ReptopoError` becomes one ``error:`` line and exit code 2.

    Inside a multirun the error is printed and re-raised instead, so Hydra records this job as
    failed and the other jobs of the sweep still run (an exit would kill the worker).
    """
    try:
        return run(cfg)
    except ReptopoError as exc:
        print(f"reptopo.{stage}: error: {exc}", file=sys.stderr, flush=True)
        if _in_multirun():
            raise
        sys.exit(2)


def config_to_dict(cfg: DictConfig) -> dict:
    """Resolved plain-dict copy of a config (for saving and tracking)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


# Which config subtrees decide each stage's output (a stage reruns when one of them changes).
STAGE_INPUTS = {
    "train": ("seed", "model", "data", "train"),
    "activations": ("seed", "model", "data", "train", "probe"),
    "homology": ("seed", "model", "data", "train", "probe", "topology"),
}


def _subtree_hash(cfg: DictConfig, stage: str) -> str:
    """SHA-256 (hex) of the resolved config subtrees that decide ``stage`` (``STAGE_INPUTS``)."""
    import hashlib
    import json

    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
             for k in STAGE_INPUTS[stage]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _config_hash(root: DictConfig, stage: str) -> str:
    """Short hash of the config subtrees that decide ``stage`` (the ``${fp:<stage>}`` resolver)."""
    if stage not in STAGE_INPUTS:
        raise ReptopoError(f"${{fp:{stage}}}: unknown stage; expected one of {sorted(STAGE_INPUTS)}")
    return _subtree_hash(root, stage)[:8]


# ``train_name: ${model.name}-${data.name}-${fp:train}`` names an output folder by what decides it,
# so experiments that train the same model share one checkpoint and never overwrite each other's.
if not OmegaConf.has_resolver("fp"):
    OmegaConf.register_new_resolver("fp", lambda stage, *, _root_: _config_hash(_root_, stage))


def fingerprint(cfg: DictConfig, stage: str) -> str:
    """SHA-256 of the resolved config subtrees that decide ``stage``'s output (after schema
    validation, so defaults filled in by the schema count the same as explicit values)."""
    from reptopo.schema import validate_config

    return _subtree_hash(validate_config(cfg), stage)


STAMP = "_stage.json"


def write_stamp(out_dir: Path, cfg: DictConfig, stage: str, seconds: float | None = None) -> None:
    """Record, inside an output folder being written, which config produced it and the stage's
    wall time in seconds (the reproduction report sums these per stage)."""
    from reptopo.io import write_json

    write_json(Path(out_dir) / STAMP, {"stage": stage, "fingerprint": fingerprint(cfg, stage),
                                       "seconds": None if seconds is None else round(float(seconds), 2)})


def read_stamp(out_dir: str | os.PathLike) -> dict:
    """The stamp of a finished output folder ({} when there is none)."""
    import json

    try:
        return json.loads((Path(out_dir) / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def is_complete(out_dir: str | os.PathLike, cfg: DictConfig, stage: str) -> bool:
    """True when ``out_dir`` holds a finished output of ``stage`` made from the same config."""
    fp = read_stamp(out_dir).get("fingerprint")
    return fp is not None and fp == fingerprint(cfg, stage)


def threads_per_job() -> int:
    """Cores for this process: $OMP_NUM_THREADS, else all cores / parallel Hydra jobs."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    if n.isdigit() and int(n) > 0:
        return int(n)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n_jobs = 1
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            n_jobs = int(HydraConfig.get().launcher.get("n_jobs") or 1)
    except Exception:  # not under Hydra, or a launcher without n_jobs
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
