"""The stage entry point: one ``error:`` line and exit 2 for a problem the user can fix."""
from __future__ import annotations

import faulthandler
import sys
from typing import Any, Callable

from omegaconf import DictConfig

from reptopo.runtime.config import in_multirun
from reptopo.runtime.confighash import register_resolvers
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.schema import register_config_store

# Hydra composes the config (which starts from the schema's node) and resolves the run directory
# (``logs/<stage>/${run_name}``, which may use ``${fp:...}``) before it calls a stage, so every
# stage app registers both when it is imported.
register_config_store()
register_resolvers()


def enable_crash_traces() -> None:
    """Print every thread's Python stack to stderr on a native crash (segfault, abort, bus error,
    illegal instruction): a crash in compiled code (numba, giotto-ph, torch) then names the
    Python frame that called it in the stage's log. Idempotent; also for worker processes."""
    if not faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=True)


def run_stage(run: Callable[[DictConfig], Any], cfg: DictConfig, stage: str) -> Any:
    """Call ``run(cfg)``; a :class:`ReptopoError` becomes one ``error:`` line and exit code 2.

    Inside a multirun the error is printed and re-raised instead, so Hydra records this job as
    failed and the other jobs of the sweep still run (an exit would kill the worker). A native
    crash prints the Python stack (:func:`enable_crash_traces`).
    """
    enable_crash_traces()
    try:
        return run(cfg)
    except ReptopoError as exc:
        print(f"reptopo {stage}: error: {exc}", file=sys.stderr, flush=True)
        if in_multirun():
            raise
        sys.exit(2)
