"""Stage 3, homology: per probed layer, persistence, Betti curves, lifespans sums and PHdim.

Reads ``paths.activations_dir``; writes ``paths.homology_dir``:
- ``summary.csv``: one row per layer (index, name, depth, run label, model, dataset, n, features, phdim, phdim_std,
  phdim_slope, L0/L1 local and global, TwoNN, MLE);
- ``betti.csv``: long table (layer_index, layer, depth, filtration, betti_0, betti_1) on the run's
  one grid; ``grid.json`` says how the grid was made;
- ``phdim_points.csv``: the (n, repeat, E(n)) points behind each PHdim fit;
- ``lifespans_per_class.csv``; with ``topology.class_betti.enabled``, ``class_betti.csv`` (per layer
  and class: Betti numbers of the k-NN graph, topology.knn_betti_numbers);
- ``diagrams.npz`` (``layer_XX_h{k}`` arrays, inf = never dies);
- ``figures/``: betti_curves.png, diagrams.png, phdim_fit.png, phdim_vs_depth.png;
and ``paths.metrics_dir``/homology.json (PHdim and L_0/L_1 per layer, for ``dvc metrics``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from reptopo.analysis import figures
from reptopo.analysis.layers import analyze_layer
from reptopo.analysis.tables import SERIES_COLUMNS, homology_tables, layer_metrics
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_dir, load_layer, read_json, require_dir, write_json, write_json_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import write_stamp
from reptopo.runtime.threads import limit_threads
from reptopo.runtime.tracking import stage_run

log = logging.getLogger("reptopo.homology")


def run(cfg: DictConfig, tracker=None) -> "object":
    """Analyse every probed layer; returns the summary DataFrame."""
    t0 = time.time()
    cfg = validate_config(cfg)
    from tqdm.auto import tqdm

    n_threads = limit_threads()
    act_dir = require_dir(abspath(cfg.paths.activations_dir), "activations", "run the activations stage first")
    meta, labels = load_metadata(act_dir)
    layers, n = meta["layers"], int(meta["n_samples"])
    results = []
    for layer in tqdm(layers, desc=f"homology {cfg.run_name}", unit="layer"):
        results.append(analyze_layer(load_layer(act_dir, layer, n), labels, cfg.topology, int(cfg.seed),
                                     layer=layer["name"], n_threads=n_threads))
        r = results[-1]
        log.info("layer %2d %-22s PHdim %.2f  L0 local %.3f  L1 local %.4f", layer["index"], layer["name"],
                 r.phdim.dim, r.lifespans_local[0], r.lifespans_local.get(1, float("nan")))
    run_info = {"label": cfg.run_label, "model": cfg.model.name, "dataset": cfg.data.name}
    tables, grid_info, curves = homology_tables(layers, results, n, int(cfg.topology.betti.num), run_info)
    out_dir = abspath(cfg.paths.homology_dir)
    with stage_run(cfg, "homology", tracker) as tracker, atomic_dir(out_dir) as tmp:
        for name, table in tables.items():
            if len(table):  # class_betti.csv only when topology.class_betti is on
                table.to_csv(tmp / name, index=False)
        write_json(tmp / "grid.json", grid_info)
        np.savez_compressed(tmp / "diagrams.npz", **{f"layer_{l['index']:02d}_h{k}": d for l, r in zip(layers, results)
                                                    for k, d in enumerate(r.diagrams)})
        save_figures(tmp / "figures", cfg, np.asarray(grid_info["values"]), curves, results, tables["summary.csv"],
                     [l["name"] for l in layers])
        write_stamp(tmp, cfg, "homology", seconds=time.time() - t0, threads=n_threads)
        log_results(tracker, tmp)
    write_json_atomic(abspath(cfg.paths.metrics_dir) / "homology.json", layer_metrics(tables["summary.csv"]))
    log.info("homology: %d layers -> %s", len(layers), out_dir)
    return tables["summary.csv"]


def load_metadata(act_dir: Path) -> tuple[dict, np.ndarray]:
    """The activations' meta.json (checked for layers and n_samples) and labels (N,) int64."""
    meta = read_json(act_dir / "meta.json", "activation metadata")
    try:
        labels = np.load(act_dir / "labels.npy", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ReptopoError(f"labels file {act_dir / 'labels.npy'} is missing or corrupt: {exc}") from None
    path = act_dir / "labels.npy"
    if labels.ndim != 1 or labels.dtype.kind not in "fiu":
        raise ReptopoError(f"labels file {path} holds {labels.dtype} of shape {labels.shape}; expected (N,) class numbers")
    if labels.dtype.kind == "f":
        n_nan = int(np.isnan(labels).sum())
        if n_nan or np.any(labels != np.round(labels)):
            raise ReptopoError(f"labels file {path}: {n_nan} label(s) are NaN" if n_nan else
                               f"labels file {path}: labels are not whole numbers; expected class numbers")
        labels = labels.astype(np.int64)
    missing = [key for key in ("layers", "n_samples") if key not in meta]
    if missing:
        raise ReptopoError(f"activation metadata {act_dir / 'meta.json'} lacks {missing}; rerun the activations stage")
    return meta, labels


def save_figures(fig_dir: Path, cfg: DictConfig, grid, curves, results, summary, names: list[str]) -> None:
    """betti_curves.png, diagrams.png, phdim_fit.png and phdim_vs_depth.png of one run."""
    fig_dir.mkdir()
    title = f"{cfg.model.name} on {cfg.data.name}"
    figures.save(figures.betti_curves_figure(grid, curves, names, f"Betti curves: {title}"), fig_dir / "betti_curves.png")
    figures.save(figures.diagrams_figure([r.diagrams for r in results], names, f"Persistence diagrams: {title}"),
                 fig_dir / "diagrams.png")
    figures.save(figures.phdim_fit_figure([r.phdim for r in results], names, f"PHdim fits: {title}"),
                 fig_dir / "phdim_fit.png")
    figures.save(figures.depth_curves(summary.assign(run=cfg.run_name), "phdim", "PHdim", f"PHdim vs depth: {title}"),
                 fig_dir / "phdim_vs_depth.png")


def log_results(tracker, out_dir: Path) -> None:
    """Send a finished homology output to ``tracker``: per-layer series (step = probe index),
    ``phdim/<layer>`` scalars, Betti curves ``betti<k>/<layer>`` (step = grid index), the grid,
    the summary table, the diagrams and the figures."""
    import json

    import pandas as pd

    summary = pd.read_csv(out_dir / "summary.csv")
    betti = pd.read_csv(out_dir / "betti.csv")
    steps = summary["layer_index"].tolist()
    series = [c for c in SERIES_COLUMNS if c in summary]
    for col in series:
        tracker.log_series(col, summary[col].tolist(), steps)
    tracker.log_metrics({f"phdim/{nm}": float(v) for nm, v in zip(summary["layer"], summary["phdim"])})
    tracker.set_tags({"probe_layers": json.dumps(summary["layer"].tolist()), "layer_series": json.dumps(series)})
    for (idx, name), df in betti.groupby(["layer_index", "layer"], sort=True):
        for col in [c for c in df.columns if c.startswith("betti_")]:
            tracker.log_series(f"betti{col.split('_')[1]}/{name}", df[col].tolist())
    tracker.log_dict(json.loads((out_dir / "grid.json").read_text()), "betti_grid.json")
    tracker.log_artifact(out_dir / "summary.csv")
    tracker.log_artifact(out_dir / "diagrams.npz")
    for png in sorted((out_dir / "figures").glob("*.png")):
        tracker.log_artifact(png, "figures")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "homology")


if __name__ == "__main__":
    main()
