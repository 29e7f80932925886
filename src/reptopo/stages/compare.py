"""Stage compare: runs that probed the same sample, compared layer by layer.

Two modes:
- a pair (``compare.run_a=<run> compare.run_b=<run>``): reads ``paths.data_dir``/activations/<run>
  (and, for diagram distances, homology/<run>/diagrams.npz) of both; writes ``paths.compare_dir``;
- an experiment's pairs (``python -m reptopo compare experiment=e1_quick``, with ``compare.pairs``
  set in the experiment file: name -> [label A, label B], run labels as the experiment's aggregate
  named them in ``paths.reports_dir``/tables/summary.csv); writes ``paths.reports_dir``/compare/:
  one folder per pair, ``pairs.csv`` (one row per pair: its runs and summary scalars) and
  ``findings.json`` (the experiment's comparison findings, :func:`reptopo.paper.analyses.compare_findings`)
  and ``provenance.json`` (what the pairs were computed with).
  Each pair is computed once into the pool, ``paths.data_dir``/compare/<run_a>--<run_b>-<key>, and
  copied from there: a rerun whose settings, code and runs are unchanged (its ``_stage.json``
  fingerprint) recomputes nothing.

A pair's folder holds ``<measure>.csv`` (layer x layer matrix, rows: A's layers, columns: B's)
for cka, cka_debiased, overlap and diagram_h<k>; ``diagonal.csv`` (per layer of A, B's layer at
the nearest relative depth and every measure there, RTD only there); ``summary.json`` (means along
it and ``cka_best_depth_gap``); ``figures/``: a heatmap per matrix and ``diagonal.png``. Each pair
is one MLflow run, ``<run_a>--<run_b>/compare`` (or ``<pair>/compare``): scalars, CSVs, figures.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from reptopo.analysis import figures
from reptopo.analysis.compare import Comparison, compare_runs
from reptopo.paper.analyses import compare_findings_with_seeds
from reptopo.runtime.cli import enable_crash_traces, run_stage
from reptopo.runtime.config import abspath, config_dir
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_dir, load_layer, read_json, read_table, require_dir, write_json
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import STAMP, fingerprint, read_stamp, summarise_provenance, write_stamp
from reptopo.runtime.threads import limit_threads, threads_per_job
from reptopo.runtime.tracking import start_run

log = logging.getLogger("reptopo.compare")

LABELS = {"cka": "linear CKA", "cka_debiased": "debiased linear CKA", "overlap": "k-NN overlap"}


def run(cfg: DictConfig):
    """Pair mode: the diagonal DataFrame of ``compare.run_a`` vs ``compare.run_b``. Experiment
    mode: the ``pairs.csv`` DataFrame."""
    cfg = validate_config(cfg)
    c = cfg.compare
    if c.run_a or c.run_b or not c.pairs:
        return run_pair(cfg)
    return run_experiment(cfg)


def run_pair(cfg: DictConfig) -> pd.DataFrame:
    t0 = time.time()
    c = cfg.compare
    data_dir = abspath(cfg.paths.data_dir)
    a, b = (load_run(data_dir, key, getattr(c, key)) for key in ("run_a", "run_b"))
    result = compare_pair(cfg, data_dir, a, b)
    pair = f"{c.run_a}--{c.run_b}"
    inputs = pair_inputs(data_dir, c.run_a, c.run_b, c.run_a, c.run_b, pair)
    with start_run(cfg, "compare", {"run_a": c.run_a, "run_b": c.run_b}, name=pair) as tracker, \
            atomic_dir(abspath(cfg.paths.compare_dir)) as tmp:
        write_pair(tmp, result, c.run_a, c.run_b, pair, c.diagram_metric, tracker)
        write_stamp(tmp, cfg, "compare", seconds=time.time() - t0, inputs=inputs, threads=threads_per_job())
    return result.diagonal


def run_experiment(cfg: DictConfig) -> pd.DataFrame:
    c = cfg.compare
    data_dir, reports = abspath(cfg.paths.data_dir), abspath(cfg.paths.reports_dir)
    runs = resolve_pairs(reports / "tables" / "summary.csv", dict(c.pairs), cfg.experiment_name)
    seeds = sorted({seed for per_seed in runs.values() for seed in per_seed})
    for per_seed in runs.values():  # every pair's samples checked before any is computed
        for ra, rb, _, _ in per_seed.values():
            check_same_sample(load_run(data_dir, "run_a", ra, layers=False), load_run(data_dir, "run_b", rb, layers=False))
    tasks = [(ra, rb, la, lb, pair, pair if len(seeds) == 1 else f"{pair}-seed{seed}", seed)
             for pair, per_seed in runs.items() for seed, (ra, rb, la, lb) in per_seed.items()]
    compute_pairs_in_parallel(cfg, data_dir, tasks)
    rows, by_seed = [], {s: {} for s in seeds}
    for ra, rb, la, lb, pair, folder, seed in tasks:
        pooled = pooled_pair(cfg, data_dir, ra, rb, la, lb, pair, folder, seed)
        rows.append({"pair": pair, "seed": seed, "folder": folder, "label_a": la, "label_b": lb, "run_a": ra,
                     "run_b": rb, **read_json(pooled / "summary.json", "compare summary"), "pooled": pooled})
        if (pooled / "cka.csv").is_file():  # the numbers as written, so a reuse gives the same findings
            a, b = (load_run(data_dir, key, r, layers=False) for key, r in (("run_a", ra), ("run_b", rb)))
            cka = read_table(pooled / "cka.csv", "CKA matrix").set_index("layer_a").to_numpy()
            by_seed[seed][pair] = (cka, a["depths"], b["depths"])
    findings = compare_findings_with_seeds(cfg.aggregate.analysis, cfg.experiment_name, by_seed)
    table = pd.DataFrame(rows).drop(columns="pooled")
    with atomic_dir(reports / "compare") as tmp:
        for row in rows:
            shutil.copytree(row["pooled"], tmp / row["folder"], ignore=shutil.ignore_patterns(STAMP))
        table.to_csv(tmp / "pairs.csv", index=False)
        write_json(tmp / "findings.json", [f.as_dict() for f in findings])
        write_json(tmp / "provenance.json", summarise_provenance(read_stamp(row["pooled"]) for row in rows))
    for f in findings:
        log.info("finding %s (%s): %s", f.id, f.verdict, f.measured)
    return table


def compute_pairs_in_parallel(cfg: DictConfig, data_dir: Path, tasks: list[tuple]) -> None:
    """Compute the pairs of ``tasks`` (the arguments of :func:`pooled_pair` after ``data_dir``) that
    the pool lacks, ``compare.n_jobs`` at a time in worker processes, each on its share of the
    cores; with one job, or one pair to make, nothing happens here and ``pooled_pair`` makes them."""
    todo = [t for t in tasks if not _pool_entry(cfg, data_dir, *t[:4], t[5])[2]]
    n_jobs = min(int(cfg.compare.n_jobs), len(todo))
    if n_jobs < 2:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, threads_per_job() // n_jobs)
    container = OmegaConf.to_container(cfg, resolve=True)  # workers have no Hydra to resolve against
    log.info("compare: %d pairs, %d at a time on %d thread(s) each", len(todo), n_jobs, threads)
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_threads, initargs=(threads,)) as pool:
        for done in [pool.submit(_pooled_pair_job, container, str(data_dir), task) for task in todo]:
            done.result()  # a worker's error is raised here, after the others were submitted


def _worker_threads(n: int) -> None:
    import os

    enable_crash_traces()
    os.environ["OMP_NUM_THREADS"] = str(n)  # runtime.threads.threads_per_job reads it


def _pooled_pair_job(container: dict, data_dir: str, task: tuple) -> None:
    pooled_pair(OmegaConf.create(container), Path(data_dir), *task)


def pair_inputs(data_dir: Path, run_a: str, run_b: str, label_a: str, label_b: str, folder: str) -> dict:
    """What a pair reads besides the config, for its fingerprint: both runs' activations and
    homology fingerprints, and the labels and folder name in its figures."""
    return {"labels": [label_a, label_b, folder],
            "runs": [[name, read_stamp(data_dir / "activations" / name).get("fingerprint"),
                      read_stamp(data_dir / "homology" / name).get("fingerprint")] for name in (run_a, run_b)]}


def _pool_entry(cfg: DictConfig, data_dir: Path, run_a: str, run_b: str, label_a: str, label_b: str,
                folder: str) -> tuple[dict, Path, bool]:
    """(inputs, folder in the pool, whether it is finished) of one pair. The pair's fingerprint is
    the compare stage's (:func:`reptopo.runtime.stamps.fingerprint`: the compare settings less the
    pair lists, the seed, the stage's code and libraries) with its :func:`pair_inputs`."""
    inputs = pair_inputs(data_dir, run_a, run_b, label_a, label_b, folder)
    key = fingerprint(cfg, "compare", inputs)
    out = data_dir / "compare" / f"{run_a}--{run_b}-{key[:12]}"
    return inputs, out, read_stamp(out).get("fingerprint") == key


def pooled_pair(cfg: DictConfig, data_dir: Path, run_a: str, run_b: str, label_a: str, label_b: str, pair: str,
                folder: str, seed: int) -> Path:
    """The finished folder of one pair of runs in the pool (``paths.data_dir``/compare/<a>--<b>-<key>):
    reused when its stamp holds the same fingerprint (:func:`_pool_entry`), else computed, written
    and logged."""
    inputs, out, finished = _pool_entry(cfg, data_dir, run_a, run_b, label_a, label_b, folder)
    if finished:
        log.info("compare %s (seed %s): reusing %s", pair, seed, out)
        return out
    t0 = time.time()
    log.info("compare %s (seed %s): %s (%s) vs %s (%s)", pair, seed, label_a, run_a, label_b, run_b)
    a, b = load_run(data_dir, "run_a", run_a), load_run(data_dir, "run_b", run_b)
    result = compare_pair(cfg, data_dir, a, b)
    with start_run(cfg, "compare", {"run_a": run_a, "run_b": run_b, "pair": pair, "seed": str(seed)},
                   name=f"{folder}/compare") as tracker, atomic_dir(out) as tmp:
        write_pair(tmp, result, label_a, label_b, folder, cfg.compare.diagram_metric, tracker)
        write_stamp(tmp, cfg, "compare", seconds=time.time() - t0, inputs=inputs, threads=threads_per_job())
    return out


def resolve_pairs(summary_csv: Path, pairs: dict, experiment: str) -> dict[str, dict[int, tuple[str, str, str, str]]]:
    """``compare.pairs`` (name -> [label A, label B]) -> name -> training seed -> (run A, run B,
    label A, label B), by the labels and seeds of the experiment's runs in its aggregate's summary
    table: a pair is compared once per seed, run A of a seed against run B of the same seed."""
    if not summary_csv.is_file():
        raise ReptopoError(f"compare.pairs of experiment {experiment!r}: {summary_csv} is missing; run the "
                           f"experiment first (python -m reptopo experiment experiment={experiment}_<scale>)")
    summary = read_table(summary_csv, "experiment summary")
    if "seed" not in summary:
        summary = summary.assign(seed=-1)
    by_label: dict[str, dict[int, list[str]]] = {}
    for run, label, seed in summary.drop_duplicates("run")[["run", "label", "seed"]].itertuples(index=False):
        by_label.setdefault(str(label), {}).setdefault(int(seed), []).append(str(run))
    out = {}
    for name, labels in pairs.items():
        labels = list(labels)
        if len(labels) != 2:
            raise ReptopoError(f"config key compare.pairs.{name}: {labels}; expected two run labels [A, B]")
        for label in labels:
            if label not in by_label:
                raise ReptopoError(f"config key compare.pairs.{name}: label {label!r} names no run of {summary_csv}; "
                                   f"expected one of {sorted(by_label)}")
            crowded = {s: len(r) for s, r in by_label[label].items() if len(r) != 1}
            if crowded:
                raise ReptopoError(f"config key compare.pairs.{name}: label {label!r} names {max(crowded.values())} runs "
                                   f"of seed {min(crowded)} in {summary_csv}; expected exactly one per seed")
        a, b = by_label[labels[0]], by_label[labels[1]]
        if set(a) != set(b):
            raise ReptopoError(f"config key compare.pairs.{name}: {labels[0]!r} has seeds {sorted(a)} but {labels[1]!r} "
                               f"has {sorted(b)} in {summary_csv}; a pair is compared seed by seed")
        out[str(name)] = {s: (a[s][0], b[s][0], labels[0], labels[1]) for s in sorted(a)}
    return out


def compare_pair(cfg: DictConfig, data_dir: Path, a: dict, b: dict) -> Comparison:
    c = cfg.compare
    check_same_sample(a, b)
    if "diagrams" in c.measures:
        for r in (a, b):
            r["diagrams"] = load_diagrams(data_dir, r)
    return compare_runs(a["layers"], b["layers"], a["names"], b["names"], a["depths"], b["depths"],
                        measures=list(c.measures), k=int(c.k), rtd_batches=int(c.rtd_batches),
                        rtd_batch_size=int(c.rtd_batch_size), seed=int(cfg.seed), diagrams_a=a["diagrams"],
                        diagrams_b=b["diagrams"], diagram_metric=c.diagram_metric, n_threads=limit_threads())


def write_pair(out: Path, result: Comparison, name_a: str, name_b: str, pair: str, diagram_metric: str, tracker) -> None:
    """One pair's CSVs, summary and figures into ``out``, each logged to ``tracker``."""
    (out / "figures").mkdir()
    for measure, M in result.matrices.items():
        M.to_csv(out / f"{measure}.csv", index_label="layer_a")
        label = LABELS.get(measure, f"{diagram_metric} distance, H{measure[-1]}")
        figures.save(figures.heatmap_figure(M, f"{label}: {name_a} (rows) vs {name_b}", label),
                     out / "figures" / f"{measure}.png")
    result.diagonal.to_csv(out / "diagonal.csv", index=False)
    profile = [m for m in ("cka", "cka_debiased", "overlap", "rtd") if m in result.diagonal]
    figures.save(figures.diagonal_profile_figure(result.diagonal, profile, f"Same relative depth: {name_a} vs {name_b}"),
                 out / "figures" / "diagonal.png")
    write_json(out / "summary.json", result.summary)
    tracker.log_metrics(result.summary)
    for path in sorted(out.glob("*.csv")):
        tracker.log_artifact(path)
    for png in sorted((out / "figures").glob("*.png")):
        tracker.log_artifact(png, "figures")
    for key, value in result.summary.items():
        log.info("compare %s: %s = %.4f", pair, key, value)


def load_run(data_dir: Path, key: str, name: str | None, layers: bool = True) -> dict:
    """One run's probed layers (names, relative depths, (n, d) float64 arrays unless ``layers`` is
    false) and sample indices."""
    if not name:
        raise ReptopoError(f"config key compare.{key}: null; the compare stage needs two run names "
                           "(compare.run_a=<run> compare.run_b=<run>, folders under data/activations), or an "
                           "experiment whose file sets compare.pairs")
    act = require_dir(data_dir / "activations" / name, "activations", f"run the pipeline for {name!r} first")
    meta = read_json(act / "meta.json", "activation metadata")
    n = int(meta["n_samples"])
    probes = meta["layers"]
    return {"name": name, "names": [l["name"] for l in probes], "depths": [float(l["depth"]) for l in probes],
            "layers": [load_layer(act, l, n).astype(np.float64) for l in probes] if layers else None,
            "indices": np.load(act / "indices.npy"), "dataset": meta.get("dataset"), "meta_layers": probes,
            "diagrams": None}


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
