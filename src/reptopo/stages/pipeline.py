"""One pipeline job: train -> activations -> homology for one (model, dataset), idempotent.

This is the unit of Hydra multirun sweeps (``make sweep``): one job = one MLflow run (a child
of the sweep's parent run) holding the training curves, the per-layer PHdim and lifespans and
the Betti curves. A stage whose output already exists for the same config (its
``_stage.json`` fingerprint) is reused, not recomputed: a new probe set reuses the trained
checkpoint. A job whose outputs are complete and whose MLflow run finished is skipped whole.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir
from reptopo.runtime.io import output_lock
from reptopo.runtime.stamps import fingerprint, is_complete
from reptopo.runtime.schema import validate_config

log = logging.getLogger("reptopo.pipeline")


def run(cfg: DictConfig) -> str:
    """Run or reuse the three per-run stages; returns "ran" or "skipped"."""
    cfg = validate_config(cfg)
    from reptopo.stages import activations, homology, train
    from reptopo.runtime.tracking import find_finished_run, start_run

    stages = [
        ("train", train, abspath(cfg.paths.train_dir)),
        ("activations", activations, abspath(cfg.paths.activations_dir)),
        ("homology", homology, abspath(cfg.paths.homology_dir)),
    ]
    job_fp = fingerprint(cfg, "homology")
    outputs_done = all(is_complete(out, cfg, name) for name, _, out in stages)
    if outputs_done and (not cfg.tracking.enabled or find_finished_run(cfg, "pipeline", job_fp)):
        log.info("pipeline %s: outputs and MLflow run complete, skipping", cfg.run_name)
        _record_run(cfg)
        return "skipped"
    with start_run(cfg, "pipeline", {"fingerprint": job_fp}) as tracker:
        for name, module, out in stages:
            # Parallel jobs may share an output (a checkpoint): one makes it, the others wait and reuse it.
            with output_lock(out):
                if is_complete(out, cfg, name):
                    log.info("pipeline %s: reusing %s output %s", cfg.run_name, name, out)
                    module.log_results(tracker, out)
                else:
                    module.run(cfg, tracker=tracker)
    _record_run(cfg)
    return "ran"


def _record_run(cfg: DictConfig) -> None:
    """Make the run's metrics folder complete and tell a waiting experiment stage about it.

    A checkpoint shared with other runs (same ``train_name``) was trained under another run's
    name: its metrics are copied here so every run has ``train.json``. The run's name and folders
    are appended (one JSON line, O_APPEND) to $REPTOPO_RUNS_FILE when the experiment app set it.
    """
    from reptopo.runtime.io import write_json_atomic

    metrics = abspath(cfg.paths.metrics_dir) / "train.json"
    trained = abspath(cfg.paths.train_dir) / "metrics.json"
    if trained.is_file() and (not metrics.is_file() or metrics.read_bytes() != trained.read_bytes()):
        write_json_atomic(metrics, json.loads(trained.read_text()))
    runs_file = os.environ.get("REPTOPO_RUNS_FILE")
    if runs_file:
        from reptopo.runtime.config import hydra_config

        hc = hydra_config()
        # The job's place in its sweep: parallel jobs finish in any order, the experiment sorts by it.
        job = int(hc.job.num) if hc is not None and hc.job.get("num") is not None else 0
        line = json.dumps({"run": cfg.run_name, "train": Path(cfg.paths.train_dir).name, "label": cfg.run_label,
                           "seed": int(cfg.seed), "sweep": os.environ.get("REPTOPO_SWEEP", ""), "job": job})
        with open(runs_file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "pipeline")


if __name__ == "__main__":
    main()
