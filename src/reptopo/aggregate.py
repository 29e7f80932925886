"""Stage 4, aggregate: tables and figures across runs (layers x architectures x datasets).

Reads ``data/homology/<run>/`` (all runs, or ``aggregate.runs``) and ``data/metrics/<run>/train.json``.
Writes under ``paths.reports_dir``:
- ``tables/``: summary.csv (every layer of every run), train_metrics.csv, report.md, and with
  ``aggregate.analysis`` findings.json (the paper finding checks of :mod:`reptopo.findings`) and
  the experiment's own tables (e.g. zoo.csv for E4);
- ``figures/``: phdim_vs_depth.png, lifespans_vs_depth.png, intrinsic_vs_depth.png,
  betti_<run>.png (Betti curves per layer), and the experiment's own figures;
- ``depth_curves.csv``: run, layer, depth, phdim, L0_local, L1_local (for ``dvc plots show``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from reptopo.app import abspath, config_dir, run_stage
from reptopo.schema import validate_config
from reptopo.errors import ReptopoError
from reptopo.io import atomic_dir, read_json, read_table

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


def _md_table(df) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


RERUN_HOMOLOGY = "rerun the homology stage for this run"


def _read_optional_csv(path: Path, run: str):
    if not path.is_file():
        return None
    df = read_table(path, "results table")
    df.insert(0, "run", run)
    return df


def _group_column(summary) -> str:
    """Legends use the run labels when they tell runs apart, the run names otherwise."""
    if "label" in summary and summary.groupby("label")["run"].nunique().max() == 1:
        return "label"
    return "run"


def run(cfg: DictConfig) -> "object":
    """Build the cross-run tables and figures (and, with ``aggregate.analysis``, the paper
    finding checks); returns the combined summary DataFrame. ``aggregate.mode=reproduction``
    writes the REPRODUCTION report instead (see :mod:`reptopo.report`)."""
    cfg = validate_config(cfg)
    if cfg.aggregate.mode == "reproduction":
        from reptopo.report import write_reproduction_report

        return write_reproduction_report(cfg)
    import pandas as pd

    from reptopo import plotting
    from reptopo.tracking import start_run

    data_dir = abspath(cfg.paths.data_dir)
    runs = find_runs(data_dir / "homology", cfg.aggregate.get("runs"))
    frames, train_rows, betti, extra = [], [], {}, {"per_class": [], "class_betti": [], "attacks": []}
    for name in runs:
        hom = data_dir / "homology" / name
        df = read_table(hom / "summary.csv", "homology summary", hint=RERUN_HOMOLOGY)
        df.insert(0, "run", name)
        if "label" not in df:
            df.insert(1, "label", name)
        if cfg.aggregate.get("labels") and name in cfg.aggregate.labels:
            df["label"] = cfg.aggregate.labels[name]
        frames.append(df)
        betti[name] = read_table(hom / "betti.csv", "Betti curves", hint=RERUN_HOMOLOGY)
        metrics_file = data_dir / "metrics" / name / "train.json"
        if metrics_file.is_file():
            train_rows.append({"run": name, **read_json(metrics_file, "training metrics")})
        for key, path in (("per_class", hom / "lifespans_per_class.csv"), ("class_betti", hom / "class_betti.csv")):
            table = _read_optional_csv(path, name)
            if table is not None:
                extra[key].append(table)
        attack_file = data_dir / "metrics" / name / "attack.json"
        if attack_file.is_file():
            extra["attacks"].append({"run": name, **read_json(attack_file, "attack metrics")})
    summary = pd.concat(frames, ignore_index=True)
    train = pd.DataFrame(train_rows)
    per_class = pd.concat(extra["per_class"], ignore_index=True) if extra["per_class"] else pd.DataFrame()
    class_betti = pd.concat(extra["class_betti"], ignore_index=True) if extra["class_betti"] else pd.DataFrame()
    attacks = pd.DataFrame(extra["attacks"])
    group = _group_column(summary)

    analysis = cfg.aggregate.get("analysis")
    findings, analysis_figures, analysis_tables = [], {}, {}
    if analysis:
        from reptopo.experiment_analysis import analyze

        findings, analysis_figures, analysis_tables = analyze(
            analysis, cfg.experiment_name, summary, train, per_class, attacks, class_betti,
            target_class=int(cfg.aggregate.target_class), n_boot=int(cfg.aggregate.bootstrap), seed=int(cfg.seed))

    reports = abspath(cfg.paths.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    with start_run(cfg, "aggregate", {"runs": ",".join(runs)}) as tracker:
        with atomic_dir(reports / "figures") as figs:
            plotting.save(plotting.depth_curves(summary, "phdim", "PHdim (0-dim, raw activations)",
                                                "PHdim vs depth", group=group), figs / "phdim_vs_depth.png")
            plotting.save(plotting.lifespans_panel(summary, "Lifespans sums vs depth (MinMax-scaled)", group=group),
                          figs / "lifespans_vs_depth.png")
            intrinsic = [c for c in ("twonn", "mle") if c in summary]
            if intrinsic:
                long = summary.melt(id_vars=[group, "depth"], value_vars=intrinsic, var_name="estimator")
                long["curve"] = long[group].astype(str) + " / " + long["estimator"]
                plotting.save(plotting.depth_curves(long, "value", "intrinsic dimension", "TwoNN and MLE vs depth",
                                                    group="curve"), figs / "intrinsic_vs_depth.png")
            for name, df in betti.items():
                layers = df.drop_duplicates("layer_index").sort_values("layer_index")
                grid = df[df.layer_index == layers.layer_index.iloc[0]]["filtration"].to_numpy()
                ks = sorted(int(c.split("_")[1]) for c in df.columns if c.startswith("betti_"))
                curves = np.stack([
                    np.stack([df[df.layer_index == i][f"betti_{k}"].to_numpy() for k in ks]) for i in layers.layer_index
                ])
                plotting.save(plotting.betti_curves_figure(grid, curves, layers.layer.tolist(), f"Betti curves: {name}"),
                              figs / f"betti_{name}.png")
            for fname, fig in analysis_figures.items():
                plotting.save(fig, figs / fname)
        curves_csv = reports / "depth_curves.csv"
        tmp = curves_csv.with_name(".depth_curves.csv.tmp")
        cols = ["run", "label", "layer", "depth", "phdim", "L0_local", "L1_local", "L0_global", "L1_global"]
        summary[[c for c in cols if c in summary]].to_csv(tmp, index=False)
        tmp.replace(curves_csv)
        with atomic_dir(reports / "tables") as tables:
            summary.to_csv(tables / "summary.csv", index=False)
            train.to_csv(tables / "train_metrics.csv", index=False)
            for tname, table in analysis_tables.items():
                table.to_csv(tables / tname, index=False)
            if analysis:
                (tables / "findings.json").write_text(json.dumps([f.as_dict() for f in findings], indent=2, default=float) + "\n")
            report = [
                f"# reptopo report: experiment `{cfg.experiment_name}`" + (f" ({cfg.scale} scale)" if cfg.scale else ""), "",
                f"Runs: {', '.join(runs)}", "",
                *(["## Findings", "", "| # | finding | measured | verdict |", "|---|---|---|---|",
                   *[f"| {f.id} | {f.claim} | {f.measured} | **{f.verdict}** |" for f in findings], ""] if findings else []),
                "## Training", "", _md_table(train) if len(train) else "(no train metrics found)", "",
                "## Per-layer descriptors", "",
                _md_table(summary[[c for c in ["run", "label", "layer", "depth", "phdim", "L0_local", "L1_local",
                                               "L0_global", "L1_global", "twonn", "mle"] if c in summary]]), "",
                "## Figures", "",
                *[f"![{p.stem}](../figures/{p.name})" for p in sorted((reports / "figures").glob("*.png"))],
            ]
            (tables / "report.md").write_text("\n".join(report) + "\n")
        tracker.log_artifact(reports / "tables" / "summary.csv")
        tracker.log_artifact(reports / "tables" / "report.md")
        if analysis:
            tracker.log_artifact(reports / "tables" / "findings.json")
            tracker.set_tags({f"finding_{f.id}": f.verdict for f in findings})
        for png in sorted((reports / "figures").glob("*.png")):
            tracker.log_artifact(png, "figures")
    log.info("aggregate: %d runs -> %s", len(runs), reports)
    for f in findings:
        log.info("finding %s (%s): %s", f.id, f.verdict, f.measured)
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "aggregate")


if __name__ == "__main__":
    main()
