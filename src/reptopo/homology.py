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

from reptopo.app import abspath, config_dir, limit_threads, run_stage, write_stamp
from reptopo.schema import validate_config
from reptopo.errors import ReptopoError

log = logging.getLogger("reptopo.homology")


def load_layer(act_dir, layer: dict, n_expected: int) -> np.ndarray:
    """Load one layer's activations, turning truncated/corrupt files into a clear error."""
    path = act_dir / layer["file"]
    if not path.is_file():
        raise ReptopoError(f"activation file missing: {path} (layer {layer['name']!r}); rerun the activations stage")
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ReptopoError(f"activation file {path} (layer {layer['name']!r}) is truncated or corrupt: {exc}") from None
    if X.ndim != 2 or X.shape[0] != n_expected:
        raise ReptopoError(
            f"activation file {path} (layer {layer['name']!r}) has shape {X.shape}; expected ({n_expected}, features)"
        )
    return X


def run(cfg: DictConfig, tracker=None) -> "object":
    """Analyse every probed layer; returns the summary DataFrame."""
    t0 = time.time()
    cfg = validate_config(cfg)
    import pandas as pd
    from tqdm.auto import tqdm

    from reptopo import plotting, topology
    from reptopo.analysis import analyze_layer, shared_grid
    from reptopo.io import atomic_dir, read_json, require_dir, write_json, write_json_atomic
    from reptopo.tracking import stage_run

    n_threads = limit_threads()
    act_dir = require_dir(abspath(cfg.paths.activations_dir), "activations", "run the activations stage first")
    meta = read_json(act_dir / "meta.json", "activation metadata")
    try:
        labels = np.load(act_dir / "labels.npy", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ReptopoError(f"labels file {act_dir / 'labels.npy'} is missing or corrupt: {exc}") from None
    missing = [key for key in ("layers", "n_samples") if key not in meta]
    if missing:
        raise ReptopoError(
            f"activation metadata {act_dir / 'meta.json'} lacks {missing}; rerun the activations stage"
        )
    layers = meta["layers"]
    n = int(meta["n_samples"])
    topo = cfg.topology
    dims = list(range(int(topo.maxdim) + 1))

    results = []
    for layer in tqdm(layers, desc=f"homology {cfg.run_name}", unit="layer"):
        X = load_layer(act_dir, layer, n)
        results.append(analyze_layer(X, labels, topo, int(cfg.seed), layer=layer["name"], n_threads=n_threads))
        r = results[-1]
        log.info("layer %2d %-22s PHdim %.2f  L0 local %.3f  L1 local %.4f", layer["index"], layer["name"],
                 r.phdim.dim, r.lifespans_local[0], r.lifespans_local.get(1, float("nan")))

    grid = shared_grid([r.diagrams for r in results], topo.betti.num)
    curves = np.stack([topology.betti_curves(r.diagrams, grid) for r in results])  # (L, maxdim+1, G)
    names = [l["name"] for l in layers]

    rows = []
    for layer, r in zip(layers, results):
        row = {
            "layer_index": layer["index"], "layer": layer["name"], "depth": layer["depth"],
            "n_samples": n, "n_features": layer["shape"][1],
            "phdim": r.phdim.dim, "phdim_std": r.phdim.dim_std, "phdim_slope": r.phdim.slope,
        }
        for k in dims:
            row[f"L{k}_local"] = r.lifespans_local[k]
            row[f"L{k}_global"] = r.lifespans_global[k]
        for m, v in r.intrinsic.items():
            row[m] = v
        rows.append(row)
    summary = pd.DataFrame(rows)
    betti = pd.DataFrame([
        {"layer_index": l["index"], "layer": l["name"], "depth": l["depth"], "filtration": float(eps),
         **{f"betti_{k}": int(curves[i, k, g]) for k in dims}}
        for i, l in enumerate(layers) for g, eps in enumerate(grid)
    ])
    points = pd.DataFrame([
        {"layer_index": l["index"], "layer": l["name"], "n": int(size), "repeat": rep, "E": float(r.phdim.E[s, rep])}
        for l, r in zip(layers, results) for s, size in enumerate(r.phdim.sizes) for rep in range(r.phdim.E.shape[1])
    ])
    per_class = pd.DataFrame([
        {"layer_index": l["index"], "layer": l["name"], "dim": k, "class": c, "L": v}
        for l, r in zip(layers, results) for k in dims for c, v in r.lifespans_per_class[k].items()
    ])
    class_betti = pd.DataFrame([
        {"layer_index": l["index"], "layer": l["name"], "depth": l["depth"], "class": c,
         **{f"betti_{k}": b[k] for k in dims}}
        for l, r in zip(layers, results) for c, b in r.class_betti.items()
    ])
    summary.insert(3, "label", cfg.run_label)
    summary.insert(4, "model", cfg.model.name)
    summary.insert(5, "dataset", cfg.data.name)
    grid_info = {
        "kind": "linear", "start": 0.0, "stop": float(grid[-1]), "num": len(grid),
        "space": "MinMax-scaled activations (global cloud)",
        "stop_rule": "largest finite death over all layers of this run",
        "global_points": [r.n_global for r in results], "values": grid.tolist(),
    }

    out_dir = abspath(cfg.paths.homology_dir)
    with stage_run(cfg, "homology", tracker) as tracker, atomic_dir(out_dir) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False)
        betti.to_csv(tmp / "betti.csv", index=False)
        points.to_csv(tmp / "phdim_points.csv", index=False)
        per_class.to_csv(tmp / "lifespans_per_class.csv", index=False)
        if len(class_betti):
            class_betti.to_csv(tmp / "class_betti.csv", index=False)
        write_json(tmp / "grid.json", grid_info)
        np.savez_compressed(tmp / "diagrams.npz", **{
            f"layer_{l['index']:02d}_h{k}": r.diagrams[k] for l, r in zip(layers, results) for k in dims})
        fig_dir = tmp / "figures"
        fig_dir.mkdir()
        title = f"{cfg.model.name} on {cfg.data.name}"
        plotting.save(plotting.betti_curves_figure(grid, curves, names, f"Betti curves: {title}"), fig_dir / "betti_curves.png")
        plotting.save(plotting.diagrams_figure([r.diagrams for r in results], names, f"Persistence diagrams: {title}"),
                      fig_dir / "diagrams.png")
        plotting.save(plotting.phdim_fit_figure([r.phdim for r in results], names, f"PHdim fits: {title}"),
                      fig_dir / "phdim_fit.png")
        plotting.save(plotting.depth_curves(summary.assign(run=cfg.run_name), "phdim", "PHdim", f"PHdim vs depth: {title}"),
                      fig_dir / "phdim_vs_depth.png")

        write_stamp(tmp, cfg, "homology", seconds=time.time() - t0)
        log_results(tracker, tmp)
    write_json_atomic(abspath(cfg.paths.metrics_dir) / "homology.json", {
        "phdim": dict(zip(names, summary["phdim"].round(4))),
        **{f"L{k}_local": dict(zip(names, summary[f"L{k}_local"].round(4))) for k in dims},
    })
    log.info("homology: %d layers -> %s", len(layers), out_dir)
    return summary


def log_results(tracker, out_dir: Path) -> None:
    """Send a finished homology output to ``tracker``: per-layer series (step = probe index),
    ``phdim/<layer>`` scalars, Betti curves ``betti<k>/<layer>`` (step = grid index), the grid,
    the summary table, the diagrams and the figures."""
    import json

    import pandas as pd

    summary = pd.read_csv(out_dir / "summary.csv")
    betti = pd.read_csv(out_dir / "betti.csv")
    steps = summary["layer_index"].tolist()
    series = [c for c in summary.columns if c == "phdim" or c.startswith("L") or c in ("twonn", "mle")]
    for col in series:
        tracker.log_series(col, summary[col].tolist(), steps)
    tracker.log_metrics({f"phdim/{nm}": float(v) for nm, v in zip(summary["layer"], summary["phdim"])})
    tracker.set_tags({"probe_layers": json.dumps(summary["layer"].tolist())})
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
