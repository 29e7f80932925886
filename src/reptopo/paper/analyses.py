"""Each paper experiment's analysis for the aggregate stage (``aggregate.analysis: <name>``): which
finding checks run and which extra figures and tables it gets. No file I/O: the stacked run
tables in, (findings, {file name: Figure}, {file name: DataFrame}) out. ``ANALYSES`` has one
entry per paper experiment of conf/experiment/ (a test keeps them in step)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from reptopo.analysis import figures
from reptopo.analysis.tables import Combined
from reptopo.paper import findings as fnd
from reptopo.runtime.errors import ReptopoError


def _e1(c: Combined, experiment: str, **_):
    return [fnd.check_collapse(c.summary, experiment), fnd.check_rise_fall(c.summary, experiment),
            fnd.check_rise_fall(c.summary, experiment, fid="A1", column="twonn")], {}, {}


def _e2(c: Combined, experiment: str, **_):
    return [fnd.check_datasets(c.summary, c.train, experiment), fnd.check_collapse(c.summary, experiment, fid="1b")], {}, {}


def _e3(c: Combined, experiment: str, **_):
    return [fnd.check_activations(c.summary, experiment)], {}, {}


def _e4(c: Combined, experiment: str, target_class: int = 0, n_boot: int = 2000, seed: int = 0):
    if c.per_class.empty or c.train.empty:
        raise ReptopoError("aggregate.analysis=e4 needs per-class lifespans and train metrics for every run")
    zoo = fnd.zoo_table(c.summary, c.per_class, c.train, target_class)
    f = fnd.check_generalization(zoo, experiment, n_boot=n_boot, seed=seed, target_class=target_class)
    fig = figures.zoo_scatter(zoo, f.values, f"E4: class {target_class} at the logits vs test accuracy ({len(zoo)} models)")
    return [f], {"zoo_generalization.png": fig}, {"zoo.csv": zoo}


def _e5(c: Combined, experiment: str, **_):
    if c.attacks.empty:
        raise ReptopoError("aggregate.analysis=e5 needs runs made with attack.method set (no attack.json found)")
    merged = c.summary.merge(c.attacks, on="run")
    fig = figures.attack_curves(merged, "L1_global", "E5: L_1 per layer vs FGSM eps")
    return ([fnd.check_adversarial(c.summary, c.attacks, experiment)], {"attack_lifespans.png": fig},
            {"attack.csv": c.attacks.sort_values("eps")})


def _e7(c: Combined, experiment: str, **_):
    return [fnd.check_collapse(c.summary, experiment, fid="1T"), fnd.check_rise_fall(c.summary, experiment, fid="2T")], {}, {}


def _naitzat(c: Combined, experiment: str, **_):
    if c.class_betti.empty:
        raise ReptopoError("aggregate.analysis=naitzat needs topology.class_betti.enabled=true (no class_betti.csv)")
    meta = c.summary.drop_duplicates("run").set_index("run")
    cb = c.class_betti.assign(curve=[f"{meta.loc[r, 'dataset']} {meta.loc[r, 'label']}" for r in c.class_betti["run"]])
    fig = figures.class_betti_figure(cb, "Per-class Betti numbers vs depth")
    return fnd.check_naitzat(c.class_betti, c.summary, c.train, experiment), {"class_betti.png": fig}, {"class_betti.csv": cb}


ANALYSES: dict[str, Callable] = {"e1": _e1, "e2": _e2, "e3": _e3, "e4": _e4, "e5": _e5, "e7": _e7, "naitzat": _naitzat}


# Findings that rest on the compare stage's matrices: experiment -> check, given
# {pair name: (CKA matrix (len(A), len(B)), depths of A, depths of B)}.
COMPARE_ANALYSES: dict[str, Callable] = {"e1": lambda pairs, experiment: [fnd.check_depth_correspondence(pairs, experiment)]}


def compare_findings(kind: str | None, experiment: str, pairs: dict) -> list:
    """The comparison findings of experiment ``kind`` (none for an experiment without any)."""
    return COMPARE_ANALYSES[kind](pairs, experiment) if kind in COMPARE_ANALYSES else []


def analyze(kind: str, experiment: str, combined: Combined, target_class: int = 0, n_boot: int = 2000, seed: int = 0):
    """Run experiment ``kind``'s checks on ``combined``: (findings, figures, tables).

    The checks run once per training seed (on that seed's runs alone) and once on the seed means
    (:meth:`Combined.seed_means`), with the same rules; each finding's verdict is the means' and
    carries the per-seed verdicts (:func:`reptopo.paper.findings.with_seeds`). Figures are the
    means'; tables are each seed's, stacked with a ``seed`` column."""
    if kind not in ANALYSES:
        raise ReptopoError(f"aggregate.analysis={kind!r}; expected null or one of {list(ANALYSES)}")
    check = ANALYSES[kind]
    kw = dict(target_class=target_class, n_boot=n_boot, seed=seed)
    per_seed, tables = {}, {}
    for s in combined.seeds:
        found, _, seed_tables = check(combined.for_seed(s), experiment, **kw)
        per_seed[s] = found
        for name, table in seed_tables.items():
            tables.setdefault(name, []).append(table.assign(seed=s))
    means = combined if len(combined.seeds) == 1 else combined.seed_means()
    found, figs, _ = check(means, experiment, **kw)
    return fnd.with_seeds(found, per_seed), figs, {n: pd.concat(t, ignore_index=True) for n, t in tables.items()}


def compare_findings_with_seeds(kind: str | None, experiment: str, per_seed: dict[int, dict]) -> list:
    """:func:`compare_findings` per seed, and on each pair's CKA matrix averaged over the seeds
    (``per_seed``: seed -> {pair: (CKA matrix, depths of A, depths of B)}; a pair's layers do not
    depend on the seed; a pair's mean is over the seeds that compared it)."""
    found = {s: compare_findings(kind, experiment, pairs) for s, pairs in per_seed.items()}
    if len(per_seed) == 1:
        return fnd.with_seeds(next(iter(found.values())), found)
    pairs = {p: (da, db) for s in sorted(per_seed, reverse=True) for p, (_, da, db) in per_seed[s].items()}
    means = {p: (np.mean([per_seed[s][p][0] for s in per_seed if p in per_seed[s]], axis=0), da, db)
             for p, (da, db) in sorted(pairs.items())}
    return fnd.with_seeds(compare_findings(kind, experiment, means), found)
