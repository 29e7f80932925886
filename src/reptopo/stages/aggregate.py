"""Stage 4, aggregate: tables and figures across runs (layers x architectures x datasets).

Reads ``data/homology/<run>/`` (all runs, or ``aggregate.runs``) and ``data/metrics/<run>/train.json``.
Writes under ``paths.reports_dir``:
- ``tables/``: summary.csv (every layer of every run), train_metrics.csv, report.md, and with
  ``aggregate.analysis`` findings.json (the paper finding checks of :mod:`reptopo.paper.findings`) and
  the experiment's own tables (e.g. zoo.csv for E4);
- ``figures/``: phdim_vs_depth.png, lifespans_vs_depth.png, intrinsic_vs_depth.png,
  betti_<run>.png (Betti curves per layer), and the experiment's own figures;
- ``depth_curves.csv``: run, layer, depth, phdim, L0_local, L1_local (for ``dvc plots show``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reptopo.analysis import figures
from reptopo.analysis.tables import (CURVE_COLUMNS, RunTables, aggregate_report, betti_arrays, combine_runs,
                                     legend_column, with_config)
from reptopo.paper.analyses import analyze
from reptopo.runtime.choices import allowed
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_entries, read_json, read_table, write_json
from reptopo.runtime.schema import validate_config
from reptopo.runtime.tracking import start_run

log = logging.getLogger("reptopo.aggregate")


def find_runs(homology_root: Path, wanted) -> list[str]:
    """Run names to aggregate: ``wanted`` (checked) or every complete run under ``homology_root``."""
    if not homology_root.is_dir():
        raise ReptopoError(f"no homology results under {homology_root}; run the homology stage first")
    complete = sorted(p.name for p in homology_root.iterdir() if (p / "summary.csv").is_file())
    if wanted:
        missing = [r for r in wanted if r not in complete]
        if missing:
            raise ReptopoError(f"aggregate.runs names run(s) {missing} with no results under {homology_root}; found {complete}")
        return list(wanted)
    if not complete:
        raise ReptopoError(f"no homology results under {homology_root}; run the homology stage first")
    return complete


RERUN_HOMOLOGY = "rerun the homology stage for this run"


def run(cfg: DictConfig) -> "object":
    """Build the cross-run tables and figures (and, with ``aggregate.analysis``, the paper
    finding checks); returns the combined summary DataFrame."""
    cfg = validate_config(cfg)
    data_dir = abspath(cfg.paths.data_dir)
    runs = find_runs(data_dir / "homology", cfg.aggregate.runs)
    labels, seeds = cfg.aggregate.labels or {}, cfg.aggregate.seeds or {}
    combined = combine_runs([load_run(data_dir, name, labels.get(name), seeds.get(name)) for name in runs])
    analysis = cfg.aggregate.analysis
    findings, extra_figures, extra_tables = [], {}, {}
    if analysis:
        findings, extra_figures, extra_tables = analyze(
            analysis, cfg.experiment_name, combined, target_class=int(cfg.aggregate.target_class),
            n_boot=int(cfg.aggregate.bootstrap), seed=int(cfg.seed))
    reports = abspath(cfg.paths.reports_dir)
    summary = combined.summary
    with start_run(cfg, "aggregate", {"runs": ",".join(runs)}) as tracker:
        with atomic_entries(reports) as out:  # figures/, tables/ and depth_curves.csv: all or none
            (out / "figures").mkdir()
            for name, fig in {**aggregate_figures(combined), **extra_figures}.items():
                figures.save(fig, out / "figures" / name)
            summary[[c for c in CURVE_COLUMNS if c in summary]].to_csv(out / "depth_curves.csv", index=False)
            tables = out / "tables"
            tables.mkdir()
            for name, table in {"summary.csv": summary, "train_metrics.csv": combined.train, **extra_tables}.items():
                table.to_csv(tables / name, index=False)
            if analysis:
                write_json(tables / "findings.json", [f.as_dict() for f in findings])
            figure_names = sorted(p.name for p in (out / "figures").glob("*.png"))
            (tables / "report.md").write_text(aggregate_report(cfg.experiment_name, cfg.scale, runs, findings,
                                                               combined.train, summary, figure_names))
        log_results(tracker, reports, findings if analysis else None)
    log.info("aggregate: %d runs -> %s", len(runs), reports)
    for f in findings:
        log.info("finding %s (%s): %s", f.id, f.verdict, f.measured)
    return summary


def load_run(data_dir: Path, name: str, label: str | None, seed: int | None = None) -> RunTables:
    """One run's homology tables and metrics JSON files (optional ones are None when absent). The
    training seed, unless given, is the one its activations' meta.json records (None without it)."""
    hom, metrics = data_dir / "homology" / name, data_dir / "metrics" / name
    meta = data_dir / "activations" / name / "meta.json"
    if seed is None and meta.is_file():
        seed = read_json(meta, "activation metadata").get("seed")

    def optional_table(path: Path):
        return read_table(path, "results table") if path.is_file() else None

    def optional_json(path: Path, what: str):
        return read_json(path, what) if path.is_file() else None

    return RunTables(
        name=name, label=label, seed=None if seed is None else int(seed),
        summary=read_table(hom / "summary.csv", "homology summary", hint=RERUN_HOMOLOGY),
        betti=read_table(hom / "betti.csv", "Betti curves", hint=RERUN_HOMOLOGY),
        train=optional_json(metrics / "train.json", "training metrics"),
        per_class=optional_table(hom / "lifespans_per_class.csv"),
        class_betti=optional_table(hom / "class_betti.csv"),
        attack=optional_json(metrics / "attack.json", "attack metrics"),
    )


def aggregate_figures(combined) -> dict:
    """{file name: Figure}: PHdim, lifespans and intrinsic dimension vs depth, Betti curves per run."""
    summary = with_config(combined.summary)
    group = legend_column(summary)
    out = {
        "phdim_vs_depth.png": figures.depth_curves(summary, "phdim", "PHdim (0-dim, raw activations)",
                                                   "PHdim vs depth", group=group),
        "lifespans_vs_depth.png": figures.lifespans_panel(summary, "Lifespans sums vs depth (MinMax-scaled)", group=group),
    }
    intrinsic = [c for c in allowed("topology.intrinsic") if c in summary]
    if intrinsic:
        long = summary.melt(id_vars=[group, "depth", "seed"], value_vars=intrinsic, var_name="estimator")
        long["curve"] = long[group].astype(str) + " / " + long["estimator"]
        out["intrinsic_vs_depth.png"] = figures.depth_curves(long, "value", "intrinsic dimension",
                                                             "TwoNN and MLE vs depth", group="curve")
    for name, betti in combined.betti.items():
        grid, curves, layers = betti_arrays(betti)
        out[f"betti_{name}.png"] = figures.betti_curves_figure(grid, curves, layers, f"Betti curves: {name}")
    return out


def log_results(tracker, reports: Path, findings: list | None) -> None:
    """The summary, report, findings (and one ``finding_<id>`` tag per verdict) and figures."""
    tracker.log_artifact(reports / "tables" / "summary.csv")
    tracker.log_artifact(reports / "tables" / "report.md")
    if findings is not None:
        tracker.log_artifact(reports / "tables" / "findings.json")
        tracker.set_tags({f"finding_{f.id}": f.verdict for f in findings})
    for png in sorted((reports / "figures").glob("*.png")):
        tracker.log_artifact(png, "figures")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "aggregate")


if __name__ == "__main__":
    main()
