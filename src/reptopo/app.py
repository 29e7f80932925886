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


def run_stage(run: Callable[[DictConfig], Any], cfg: DictConfig, stage: str) -> Any:
    """Call ``run(cfg)``; a :class:`ReptopoError` becomes one ``error:`` line and exit code 2."""
    try:
        return run(cfg)
    except ReptopoError as exc:
        print(f"reptopo.{stage}: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def config_to_dict(cfg: DictConfig) -> dict:
    """Resolved plain-dict copy of a config (for saving and tracking)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def limit_threads() -> None:
    """Let torch use the cores it is given (joblib workers set OMP_NUM_THREADS themselves)."""
    import torch

    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        torch.set_num_threads(int(n))
