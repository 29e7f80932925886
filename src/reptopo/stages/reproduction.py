"""Stage, reproduction: ``reports/<scale>/REPRODUCTION.md`` from the finished paper experiments.

``python -m reptopo reproduction scale=quick`` reads, for every paper experiment (derived from
conf/experiment/, :func:`reptopo.runtime.config.paper_experiments`),
``reports/<scale>/<name>/tables/findings.json``, ``tables/train_metrics.csv``, ``timing.json``
and the figure names (and, where the compare stage ran, ``compare/findings.json``, ``pairs.csv``
and each pair's figures, and the ``provenance.json`` files), and writes ``reports/<scale>/REPRODUCTION.md``,
``reports/<scale>/findings.csv`` and ``reports/<scale>/provenance.json`` (what every run was made
with) atomically (:func:`reptopo.paper.report.reproduction_report`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reptopo.paper.report import ExperimentResults, reproduction_report
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir, paper_experiments
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import read_json, read_table, write_csv_atomic, write_json_atomic, write_text_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import describe_provenance, summarise_provenance

log = logging.getLogger("reptopo.reproduction")


def run(cfg: DictConfig):
    """Write the report; returns the findings table."""
    cfg = validate_config(cfg)
    if not cfg.scale:
        raise ReptopoError("the reproduction stage needs scale=quick or scale=paper (which reports/<scale>/ to read)")
    root = abspath(cfg.paths.root) / "reports" / str(cfg.scale)
    names = paper_experiments(config_dir())
    experiments = [load_results(root / name, name, title) for name, title in names.items()]
    made_with = load_provenance(root, list(names))
    text, table = reproduction_report(str(cfg.scale), experiments, describe_provenance(made_with))
    write_text_atomic(root / "REPRODUCTION.md", text)
    write_csv_atomic(root / "findings.csv", table)
    write_json_atomic(root / "provenance.json", made_with)
    log.info("reproduction report: %d findings (%s) -> %s", len(table), table["verdict"].value_counts().to_dict(),
             root / "REPRODUCTION.md")
    return table


def load_results(exp_dir: Path, name: str, title: str) -> ExperimentResults:
    """One experiment's outputs under ``exp_dir``; a missing findings.json names the command to run."""
    findings = exp_dir / "tables" / "findings.json"
    if not findings.is_file():
        raise ReptopoError(f"reproduction report: {findings} is missing; run the experiment first "
                           f"(dvc repro experiment@{name}, or python -m reptopo experiment experiment={name}_<scale>)")
    timing = exp_dir / "timing.json"
    train = exp_dir / "tables" / "train_metrics.csv"
    compare = exp_dir / "compare"
    found = read_json(findings, "experiment findings")
    if (compare / "findings.json").is_file():
        found = [*found, *read_json(compare / "findings.json", "comparison findings")]
    pairs = read_table(compare / "pairs.csv", "compared pairs") if (compare / "pairs.csv").is_file() else None
    return ExperimentResults(
        name=name, title=title, findings=found, pairs=pairs,
        compare_figures=[f"compare/{folder}/figures/{f}.png" for folder in _first_seed_folders(pairs)
                         for f in ("cka", "diagonal") if (compare / str(folder) / "figures" / f"{f}.png").is_file()],
        timing=read_json(timing, "experiment timing") if timing.is_file() else {},
        train=read_table(train, "train metrics") if train.is_file() and train.stat().st_size > 1 else None,
        figures=sorted(p.name for p in (exp_dir / "figures").glob("*.png")),
    )


def load_provenance(root: Path, names: list[str]) -> dict:
    """What every experiment's runs and compared pairs were made with, merged
    (:func:`reptopo.runtime.stamps.summarise_provenance`; experiments made before provenance was
    recorded add nothing)."""
    files = [root / name / rel for name in names for rel in ("provenance.json", "compare/provenance.json")]
    return summarise_provenance([], [read_json(f, "provenance record") for f in files if f.is_file()])


def _first_seed_folders(pairs) -> list[str]:
    """Each compared pair's folder for its first seed (the report shows one seed's heatmaps)."""
    if pairs is None:
        return []
    if "folder" not in pairs:
        return [str(p) for p in pairs["pair"]]
    first = pairs.sort_values("seed").drop_duplicates("pair")
    return [str(f) for f in first["folder"]]


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "reproduction")


if __name__ == "__main__":
    main()
