"""Hydra callbacks: an MLflow parent run around each multirun sweep.

``on_multirun_start`` runs in the launching process before any worker exists: it creates the
store, the experiment and the parent run once (so parallel workers never race on SQLite schema
creation) and exports the parent's id, which every job's run records as ``mlflow.parentRunId``.
"""
from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("reptopo.callbacks")


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.run_id: str | None = None
        self.client = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from reptopo.runtime.tracking import PARENT_ENV, git_commit, open_client, _retry

        if not config.tracking.get("enabled", True):
            return
        self.client, exp_id = open_client(config)
        params = config.hydra.sweeper.get("params") or {}
        sweep = OmegaConf.to_container(params) if OmegaConf.is_config(params) else dict(params)
        tags = {
            "stage": "sweep",
            "experiment": config.experiment_name,
            "hydra_overrides": " ".join(config.hydra.overrides.task),
            "sweep_params": str(sweep),
            "sweep_dir": str(config.hydra.sweep.dir),
            "git_commit": git_commit(config.paths.root),
        }
        if os.environ.get("DVC_EXP_NAME"):
            tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
        run = _retry(self.client.create_run, exp_id, run_name=f"sweep:{config.experiment_name}", tags=tags)
        self.run_id = run.info.run_id
        os.environ[PARENT_ENV] = self.run_id
        # Hydra skips on_multirun_end when a job failed (the sweep re-raises its error): close
        # the parent at interpreter exit in that case.
        atexit.register(self._finish)
        log.info("MLflow parent run %s for this sweep", self.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish()

    def _finish(self) -> None:
        """Mark the parent FINISHED, or FAILED when any child did not finish (idempotent)."""
        from reptopo.runtime.tracking import PARENT_ENV, _retry

        if self.run_id is None or self.client.get_run(self.run_id).info.status != "RUNNING":
            return
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        children = _retry(self.client.search_runs, [exp_id], f"tags.mlflow.parentRunId = '{self.run_id}'")
        failed = [r for r in children if r.info.status != "FINISHED"]
        _retry(self.client.set_tag, self.run_id, "n_jobs", str(len(children)))
        _retry(self.client.set_tag, self.run_id, "n_failed", str(len(failed)))
        _retry(self.client.set_terminated, self.run_id, "FAILED" if failed else "FINISHED")
        os.environ.pop(PARENT_ENV, None)
