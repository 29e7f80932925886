"""One pipeline job: train -> activations -> homology for one (model, dataset), idempotent.

This is the unit of Hydra multirun sweeps (``make sweep``): one job = one MLflow run (a child
of the sweep's parent run) holding the training curves, the per-layer PHdim and lifespans and
the Betti curves. A stage whose output already exists for the same config (its
``_stage.json`` fingerprint) is reused, not recomputed: a new probe set reuses the trained
checkpoint. A job whose outputs are complete and whose MLflow run finished is skipped whole.
"""
from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from reptopo.app import abspath, config_dir, fingerprint, is_complete, run_stage
from reptopo.schema import validate_config

log = logging.getLogger("reptopo.pipeline")


def run(cfg: DictConfig) -> str:
    """Run or reuse the three per-run stages; returns "ran" or "skipped"."""
    cfg = validate_config(cfg)
    from reptopo import activations, homology, train
    from reptopo.tracking import find_finished_run, start_run

    stages = [
        ("train", train, abspath(cfg.paths.train_dir)),
        ("activations", activations, abspath(cfg.paths.activations_dir)),
        ("homology", homology, abspath(cfg.paths.homology_dir)),
    ]
    job_fp = fingerprint(cfg, "homology")
    outputs_done = all(is_complete(out, cfg, name) for name, _, out in stages)
    if outputs_done and (not cfg.tracking.enabled or find_finished_run(cfg, "pipeline", job_fp)):
        log.info("pipeline %s: outputs and MLflow run complete, skipping", cfg.run_name)
        return "skipped"
    with start_run(cfg, "pipeline", {"fingerprint": job_fp}) as tracker:
        for name, module, out in stages:
            if is_complete(out, cfg, name):
                log.info("pipeline %s: reusing %s output %s", cfg.run_name, name, out)
                module.log_results(tracker, out)
            else:
                module.run(cfg, tracker=tracker)
    return "ran"


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "pipeline")


if __name__ == "__main__":
    main()
