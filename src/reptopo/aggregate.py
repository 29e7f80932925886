"""Stage 4, aggregate: tables and figures across runs (layers x architectures x datasets).

Reads ``data/homology/<run>/`` (all runs, or ``aggregate.runs``) and ``data/metrics/<run>/train.json``.
Writes under ``paths.reports_dir``:
- ``tables/``: summary.csv (every layer of every run), train_metrics.csv, report.md;
- ``figures/``: phdim_vs_depth.png, lifespans_vs_depth.png, intrinsic_vs_depth.png,
  betti_<run>.png (Betti curves per layer);
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


def run(cfg: DictConfig) -> "object":
    """Build the cross-run tables and figures; returns the combined summary DataFrame."""
    cfg = validate_config(cfg)
    import pandas as pd

    from reptopo import plotting
    from reptopo.io import atomic_dir
    from reptopo.tracking import start_run

    data_dir = abspath(cfg.paths.data_dir)
    runs = find_runs(data_dir / "homology", cfg.aggregate.get("runs"))
    frames, train_rows, betti = [], [], {}
    for name in runs:
        df = pd.read_csv(data_dir / "homology" / name / "summary.csv")
        df.insert(0, "run", name)
        frames.append(df)
        betti[name] = pd.read_csv(data_dir / "homology" / name / "betti.csv")
        metrics_file = data_dir / "metrics" / name / "train.json"
        if metrics_file.is_file():
            train_rows.append({"run": name, **json.loads(metrics_file.read_text())})
    summary = pd.concat(frames, ignore_index=True)
    train = pd.DataFrame(train_rows)

    reports = abspath(cfg.paths.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    with start_run(cfg, "aggregate", {"runs": ",".join(runs)}) as tracker:
        with atomic_dir(reports / "figures") as figs:
            plotting.save(plotting.depth_curves(summary, "phdim", "PHdim (0-dim, raw activations)",
                                                "PHdim vs depth"), figs / "phdim_vs_depth.png")
            plotting.save(plotting.lifespans_panel(summary, "Lifespans sums vs depth (MinMax-scaled)"),
                          figs / "lifespans_vs_depth.png")
            intrinsic = [c for c in ("twonn", "mle") if c in summary]
            if intrinsic:
                long = summary.melt(id_vars=["run", "depth"], value_vars=intrinsic, var_name="estimator")
                long["curve"] = long["run"] + " / " + long["estimator"]
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
        curves_csv = reports / "depth_curves.csv"
        tmp = curves_csv.with_name(".depth_curves.csv.tmp")
        cols = ["run", "layer", "depth", "phdim", "L0_local", "L1_local", "L0_global", "L1_global"]
        summary[[c for c in cols if c in summary]].to_csv(tmp, index=False)
        tmp.replace(curves_csv)
        with atomic_dir(reports / "tables") as tables:
            summary.to_csv(tables / "summary.csv", index=False)
            train.to_csv(tables / "train_metrics.csv", index=False)
            report = [
                f"# reptopo report: experiment `{cfg.experiment_name}`", "",
                f"Runs: {', '.join(runs)}", "",
                "## Training", "", _md_table(train) if len(train) else "(no train metrics found)", "",
                "## Per-layer descriptors", "",
                _md_table(summary[[c for c in ["run", "layer", "depth", "phdim", "L0_local", "L1_local", "L0_global",
                                               "L1_global", "twonn", "mle"] if c in summary]]), "",
                "## Figures", "",
                *[f"![{p.stem}](../figures/{p.name})" for p in sorted((reports / "figures").glob("*.png"))],
            ]
            (tables / "report.md").write_text("\n".join(report) + "\n")
        tracker.log_artifact(reports / "tables" / "summary.csv")
        tracker.log_artifact(reports / "tables" / "report.md")
        for png in sorted((reports / "figures").glob("*.png")):
            tracker.log_artifact(png, "figures")
    log.info("aggregate: %d runs -> %s", len(runs), reports)
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "aggregate")


if __name__ == "__main__":
    main()
