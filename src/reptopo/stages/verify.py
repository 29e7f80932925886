"""Stage verify: rerun the paper and say which of the committed verdicts still hold.

``python -m reptopo verify scale=quick paths.root=verify`` (``make verify``) runs under
``paths.root`` (a run pool of its own: cold the first time, reused by later calls) every paper
experiment (``verify.experiments``, default all) as ``dvc repro`` would: the experiment stage, the
compare stage where the experiment compares pairs, then the reproduction stage. It then compares
``<paths.root>/reports/<scale>`` with ``verify.reference`` (the committed ``reports/<scale>``),
finding by finding (:func:`reptopo.paper.verify.compare_findings`): the verdicts, each seed's, and
the largest relative change of the finding's numbers. Writes ``VERIFY.md`` and ``verify.csv`` next
to the rerun's reports, prints the page, and exits 1 when a verdict changed.
``verify.rerun=false`` compares the reports already under ``paths.root``.

The command-line overrides of this app (less ``verify.*`` and ``scale``) reach every stage it
runs, e.g. ``hydra/launcher=slurm`` or ``tracking=none``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reptopo.paper.verify import compare_findings, run_key, verify_report
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, compose_config, config_dir, hydra_config, paper_experiments
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import read_json, read_table, write_csv_atomic, write_text_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import describe_provenance

log = logging.getLogger("reptopo.verify")


def run(cfg: DictConfig, passthrough: list[str] | None = None):
    """Rerun (unless ``verify.rerun`` is false) and compare; returns the comparison table."""
    cfg = validate_config(cfg)
    if not cfg.scale:
        raise ReptopoError("the verify stage needs scale=quick or scale=paper (which committed reports to check)")
    scale = str(cfg.scale)
    reference = abspath(cfg.verify.reference)
    rerun_dir = abspath(cfg.paths.root) / "reports" / scale
    if rerun_dir == reference:
        raise ReptopoError(f"verify would rerun into {reference}, the reports it checks; set paths.root to a "
                           "folder of its own (make verify uses paths.root=verify)")
    names = _experiments(cfg)
    expected, expected_runs = load_findings(reference, names, "verify.reference")  # read before anything runs
    if cfg.verify.rerun:
        for name in names:
            _launch(["experiment", f"experiment={name}_{scale}"], passthrough)
            if compose_config([f"experiment={name}_{scale}"]).compare.pairs:
                _launch(["compare", f"experiment={name}_{scale}"], passthrough)
        _launch(["reproduction", f"scale={scale}"], passthrough)
    found, found_runs = load_findings(rerun_dir, names, "paths.root")
    table = compare_findings(expected, found, expected_runs, found_runs)
    made_with = {f"The reference ({reference})": describe_provenance(_provenance(reference)),
                 f"The rerun ({rerun_dir})": describe_provenance(_provenance(rerun_dir))}
    text = verify_report(table, str(reference), str(rerun_dir), made_with)
    write_text_atomic(rerun_dir / "VERIFY.md", text)
    write_csv_atomic(rerun_dir / "verify.csv", table)
    print(text, flush=True)
    return table


def _experiments(cfg: DictConfig) -> list[str]:
    known = list(paper_experiments(config_dir()))
    wanted = list(cfg.verify.experiments) if cfg.verify.experiments else known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ReptopoError(f"config key verify.experiments: {unknown} are no paper experiments; expected some of {known}")
    return wanted


def load_findings(reports: Path, names: list[str], key: str) -> tuple[list[dict], dict[str, str]]:
    """Every finding (with its numbers) of the experiments ``names`` under ``reports`` (each
    experiment's tables/findings.json and, where it compared pairs, compare/findings.json), and
    {run folder: configuration} from their tables/summary.csv (:func:`reptopo.paper.verify.run_key`)."""
    out, runs = [], {}
    for name in names:
        summary = reports / name / "tables" / "summary.csv"
        if summary.is_file():
            table = read_table(summary, "experiment summary").drop_duplicates("run")
            runs.update({str(r.run): run_key(r.label, r.model, r.dataset) for r in table.itertuples()})
        path = reports / name / "tables" / "findings.json"
        if not path.is_file():
            raise ReptopoError(f"{key}: {path} is missing; expected the reports of experiment {name!r} there")
        out += read_json(path, "experiment findings")
        compared = reports / name / "compare" / "findings.json"
        if compared.is_file():
            out += read_json(compared, "comparison findings")
    return out, runs


def _provenance(reports: Path) -> dict:
    path = reports / "provenance.json"
    return read_json(path, "provenance record") if path.is_file() else {}


def _launch(stage_args: list[str], passthrough: list[str] | None) -> None:
    cmd = [sys.executable, "-m", "reptopo", *stage_args, *(passthrough or [])]
    log.info("verify: %s", " ".join(cmd[2:]))
    res = subprocess.run(cmd, cwd=os.getcwd())
    if res.returncode != 0:
        raise ReptopoError(f"verify: `{' '.join(cmd[2:])}` failed (exit {res.returncode}); its errors are printed above")


def _passthrough() -> list[str]:
    """This invocation's overrides for the stages it runs: all but its own keys and the scale."""
    hc = hydra_config()
    own = ("verify.", "scale=", "experiment=")
    launcher = [o for o in hc.overrides.hydra if o.startswith(("hydra/launcher", "hydra.launcher"))]
    return [o for o in hc.overrides.task if not o.lstrip("+~").startswith(own)] + launcher


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    table = run_stage(lambda c: run(c, _passthrough()), cfg, "verify")
    if table is not None and bool(table["verdict_changed"].any()):
        sys.exit(1)


if __name__ == "__main__":
    main()
