"""A paper experiment end to end: its Hydra multiruns of the pipeline stage, then its aggregate.

``python -m reptopo experiment experiment=e3_quick`` runs every sweep listed under ``sweeps:`` in
the experiment file, one ``python -m reptopo pipeline -m <sweep overrides> <this app's overrides>`` per sweep (so the Hydra
launcher in use, local joblib or SLURM, fans the jobs out), then the aggregate stage on exactly
the runs those sweeps made. Every job is idempotent, so a rerun after a change recomputes only
what the change touched. Writes, besides the aggregate's outputs, ``paths.reports_dir``/timing.json:
wall seconds of the experiment and of each stage (summed over the runs; a checkpoint shared with
another experiment counts where it is used), and provenance.json: the CPUs, thread counts, Python,
library versions and code hashes its runs were made with (their stamps,
:func:`reptopo.runtime.stamps.summarise_provenance`).

The command-line overrides of this app are passed on to every sweep (e.g. sizes for a smoke run,
or ``hydra/launcher=slurm``).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir, hydra_config
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import write_json_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import read_stamp, summarise_provenance
from reptopo.stages import aggregate

log = logging.getLogger("reptopo.experiment")


def sweep_command(overrides: list[str], passthrough: list[str]) -> list[str]:
    """The multirun command of one sweep: the sweep's overrides, then this app's command-line
    overrides (Hydra keeps the last value of a key, so the command line wins)."""
    return [sys.executable, "-m", "reptopo", "pipeline", "--multirun", *overrides, *passthrough]


def with_seed_axis(overrides: list[str], seeds) -> list[str]:
    """A sweep's overrides with ``seed=<seeds>`` appended (the seed as a sweep axis: it changes the
    initialisation, the data order and subsets, and every sample and subsample), unless the sweep
    sets ``seed`` itself or ``seeds`` is null."""
    if not seeds or any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in overrides):
        return overrides
    return [*overrides, "seed=" + ",".join(str(int(s)) for s in seeds)]


def run(cfg: DictConfig, passthrough: list[str] | None = None) -> dict:
    """Run the experiment's sweeps and aggregate; returns the timing record."""
    cfg = validate_config(cfg)
    if not cfg.sweeps:
        raise ReptopoError(f"experiment {cfg.experiment_name!r} defines no sweeps (expected `sweeps:` in "
                           "conf/experiment/<name>.yaml; see conf/experiment/e1_quick.yaml)")
    t0 = time.time()
    log_dir = abspath(cfg.paths.root) / "logs" / "experiment" / f"{cfg.experiment_name}-{cfg.scale or 'none'}"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs_file = log_dir / "runs.jsonl"
    runs_file.write_text("")
    for name, overrides in cfg.sweeps.items():
        cmd = sweep_command(with_seed_axis(list(overrides), cfg.seeds), list(passthrough or []))
        log.info("experiment %s: sweep %s: %s", cfg.experiment_name, name, " ".join(cmd[3:]))
        env = {**os.environ, "REPTOPO_RUNS_FILE": str(runs_file), "REPTOPO_SWEEP": str(name)}
        res = subprocess.run(cmd, cwd=os.getcwd(), env=env)
        if res.returncode != 0:
            raise ReptopoError(f"experiment {cfg.experiment_name!r}: sweep {name!r} failed (exit {res.returncode}); "
                               "its jobs' errors are printed above")
    records = read_runs(runs_file, cfg.experiment_name, list(cfg.sweeps))
    t_runs = time.time()
    agg_cfg = cfg.copy()
    OmegaConf.update(agg_cfg, "aggregate.runs", [r["run"] for r in records], merge=False)
    OmegaConf.update(agg_cfg, "aggregate.labels", {r["run"]: str(r["label"]) for r in records}, merge=False)
    OmegaConf.update(agg_cfg, "aggregate.seeds", {r["run"]: int(r["seed"]) for r in records if "seed" in r},
                     merge=False)
    aggregate.run(agg_cfg)
    data_dir, reports = abspath(cfg.paths.data_dir), abspath(cfg.paths.reports_dir)
    timing = timing_record(cfg, records, data_dir, t0, t_runs, time.time())
    write_json_atomic(reports / "timing.json", timing)
    write_json_atomic(reports / "provenance.json",
                      summarise_provenance(read_stamp(data_dir / stage / d) for stage, dirs in run_folders(records).items()
                                           for d in sorted(dirs)))
    log.info("experiment %s: %d runs in %.0f s", cfg.experiment_name, len(records), timing["wall_seconds"])
    return timing


def read_runs(runs_file: Path, experiment: str, sweeps: list[str] | None = None) -> list[dict]:
    """The runs the sweeps' jobs reported (one JSON line each), in sweep order (``sweeps``, the
    names of ``cfg.sweeps``) and job order within a sweep, whatever order parallel jobs finished
    in; the first report of each run is kept."""
    order = {name: i for i, name in enumerate(sweeps or [])}
    lines = [json.loads(line) for line in runs_file.read_text().splitlines()]
    records, seen = [], set()
    for rec in sorted(lines, key=lambda r: (order.get(r.get("sweep"), len(order)), int(r.get("job", 0)))):
        if rec["run"] not in seen:
            seen.add(rec["run"])
            records.append(rec)
    if not records:
        raise ReptopoError(f"experiment {experiment!r}: its sweeps finished but reported no runs")
    return records


def run_folders(records: list[dict]) -> dict[str, set[str]]:
    """{stage: the output folders of the experiment's runs} (checkpoints may be shared by runs)."""
    runs = {r["run"] for r in records}
    return {"train": {r["train"] for r in records}, "activations": runs, "homology": runs}


def timing_record(cfg: DictConfig, records: list[dict], data_dir: Path, t0: float, t_runs: float, t_end: float) -> dict:
    """timing.json: wall seconds of the experiment, and of each stage summed over its runs' stamps."""
    folders = run_folders(records)
    stage_seconds = {stage: sum(float(read_stamp(data_dir / stage / d).get("seconds") or 0.0) for d in dirs)
                     for stage, dirs in folders.items()}
    return {
        "experiment": cfg.experiment_name, "scale": cfg.scale, "runs": len(records),
        "checkpoints": len(folders["train"]),
        "stage_seconds": {**{k: round(v, 1) for k, v in stage_seconds.items()}, "aggregate": round(t_end - t_runs, 1)},
        "wall_seconds": round(t_end - t0, 1),
        "note": "stage seconds were measured when each output was made (a reused output keeps its first time); "
                "wall seconds are this invocation's",
    }


def _passthrough() -> list[str]:
    """This invocation's command-line overrides, and its Hydra launcher choice, for the sweeps."""
    hc = hydra_config()
    launcher = [o for o in hc.overrides.hydra if o.startswith(("hydra/launcher", "hydra.launcher"))]
    return [*hc.overrides.task, *launcher]


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(lambda c: run(c, _passthrough()), cfg, "experiment")


if __name__ == "__main__":
    main()
