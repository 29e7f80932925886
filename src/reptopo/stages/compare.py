"""Stage compare: two runs that probed the same sample, compared layer by layer.

Reads ``paths.data_dir``/activations/<compare.run_a> and <compare.run_b> (and, for diagram
distances, their homology outputs); writes ``paths.compare_dir``:
- ``<measure>.csv``: layer x layer matrix (rows: run A's layers, columns: run B's) for cka,
  cka_debiased, overlap, and diagram_h<k> (distances between the runs' global diagrams);
- ``diagonal.csv``: per layer of A, the layer of B at the nearest relative depth and every measure
  there (RTD only there); ``summary.json``: the means along it and ``cka_best_depth_gap``;
- ``figures/``: a heatmap per matrix and ``diagonal.png``.
Logged to MLflow as ``<run_a>--<run_b>/compare`` (summary scalars, CSVs, figures).
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from reptopo.analysis import figures
from reptopo.analysis.compare import compare_runs
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_dir, load_layer, read_json, require_dir, write_json
from reptopo.runtime.schema import validate_config
from reptopo.runtime.threads import limit_threads
from reptopo.runtime.tracking import start_run

log = logging.getLogger("reptopo.compare")

LABELS = {"cka": "linear CKA", "cka_debiased": "debiased linear CKA", "overlap": "k-NN overlap"}


def run(cfg: DictConfig) -> "object":
    """Compare ``compare.run_a`` with ``compare.run_b``; returns the diagonal DataFrame."""
    cfg = validate_config(cfg)
    c = cfg.compare
    n_threads = limit_threads()
    data_dir = abspath(cfg.paths.data_dir)
    a, b = (load_run(data_dir, key, getattr(c, key)) for key in ("run_a", "run_b"))
    check_same_sample(a, b)
    if "diagrams" in c.measures:
        for r in (a, b):
            r["diagrams"] = load_diagrams(data_dir, r)
    result = compare_runs(a["layers"], b["layers"], a["names"], b["names"], a["depths"], b["depths"],
                          measures=list(c.measures), k=int(c.k), rtd_batches=int(c.rtd_batches),
                          rtd_batch_size=int(c.rtd_batch_size), seed=int(cfg.seed), diagrams_a=a["diagrams"],
                          diagrams_b=b["diagrams"], diagram_metric=c.diagram_metric, n_threads=n_threads)
    out_dir = abspath(cfg.paths.compare_dir)
    pair = f"{c.run_a}--{c.run_b}"
    with start_run(cfg, "compare", {"run_a": c.run_a, "run_b": c.run_b}, name=pair) as tracker, \
            atomic_dir(out_dir) as tmp:
        (tmp / "figures").mkdir()
        for measure, M in result.matrices.items():
            M.to_csv(tmp / f"{measure}.csv", index_label="layer_a")
            label = LABELS.get(measure, f"{c.diagram_metric} distance")
            figures.save(figures.heatmap_figure(M, f"{label}: {c.run_a} (rows) vs {c.run_b}", label),
                         tmp / "figures" / f"{measure}.png")
        result.diagonal.to_csv(tmp / "diagonal.csv", index=False)
        profile = [m for m in ("cka", "cka_debiased", "overlap", "rtd") if m in result.diagonal]
        figures.save(figures.diagonal_profile_figure(result.diagonal, profile, f"Same relative depth: {pair}"),
                     tmp / "figures" / "diagonal.png")
        write_json(tmp / "summary.json", result.summary)
        tracker.log_metrics(result.summary)
        for path in sorted(tmp.glob("*.csv")):
            tracker.log_artifact(path)
        for png in sorted((tmp / "figures").glob("*.png")):
            tracker.log_artifact(png, "figures")
    for key, value in result.summary.items():
        log.info("compare %s: %s = %.4f", pair, key, value)
    return result.diagonal


def load_run(data_dir: Path, key: str, name: str | None) -> dict:
    """One run's probed layers (names, relative depths, (n, d) arrays) and sample indices."""
    if not name:
        raise ReptopoError(f"config key compare.{key}: null; the compare stage needs two run names "
                           "(compare.run_a=<run> compare.run_b=<run>, folders under data/activations)")
    act = require_dir(data_dir / "activations" / name, "activations", f"run the pipeline for {name!r} first")
    meta = read_json(act / "meta.json", "activation metadata")
    n = int(meta["n_samples"])
    layers = meta["layers"]
    out = {"name": name, "names": [l["name"] for l in layers], "depths": [float(l["depth"]) for l in layers],
           "layers": [load_layer(act, l, n).astype(np.float64) for l in layers],
           "indices": np.load(act / "indices.npy"), "dataset": meta.get("dataset"), "meta_layers": layers,
           "diagrams": None}
    return out


def load_diagrams(data_dir: Path, run: dict) -> list[list[np.ndarray]]:
    """The run's per-layer global diagrams from its homology output (one list per layer)."""
    path = data_dir / "homology" / run["name"] / "diagrams.npz"
    if not path.is_file():
        raise ReptopoError(f"diagrams not found: {path} (compare.measures has 'diagrams'); run the homology "
                           f"stage for {run['name']!r} or drop 'diagrams' from compare.measures")
    with np.load(path) as npz:
        return [[npz[k] for k in sorted(npz.files) if k.startswith(f"layer_{l['index']:02d}_h")]
                for l in run["meta_layers"]]


def check_same_sample(a: dict, b: dict) -> None:
    """Refuse runs that did not probe the same objects in the same order, in one line."""
    ia, ib = a["indices"], b["indices"]
    if a["dataset"] != b["dataset"] or ia.shape != ib.shape or not np.array_equal(ia, ib):
        what = (f"datasets {a['dataset']!r} and {b['dataset']!r}" if a["dataset"] != b["dataset"] else
                f"{ia.size} and {ib.size} samples" if ia.shape != ib.shape else
                f"indices.npy differ in {int(np.sum(ia != ib))} of {ia.size} rows")
        raise ReptopoError(f"compare.run_a {a['name']!r} and compare.run_b {b['name']!r} probed different samples "
                           f"({what}); compare needs runs made with the same data, sample and seed")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "compare")


if __name__ == "__main__":
    main()
