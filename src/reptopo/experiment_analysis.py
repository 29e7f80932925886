"""Per-experiment analysis for the aggregate stage: which finding checks and extra figures and
tables each paper experiment gets (``aggregate.analysis``). No file I/O: DataFrames in,
(findings, {file name: Figure}, {file name: DataFrame}) out."""
from __future__ import annotations

import pandas as pd

from reptopo import findings as fnd
from reptopo import plotting
from reptopo.errors import ReptopoError

ANALYSES = ("e1", "e2", "e3", "e4", "e5", "e7", "naitzat")


def analyze(kind: str, experiment: str, summary: pd.DataFrame, train: pd.DataFrame, per_class: pd.DataFrame,
            attacks: pd.DataFrame, class_betti: pd.DataFrame, target_class: int = 0, n_boot: int = 2000,
            seed: int = 0):
    if kind not in ANALYSES:
        raise ReptopoError(f"aggregate.analysis={kind!r}; expected null or one of {list(ANALYSES)}")
    figures, tables = {}, {}
    if kind == "e1":
        found = [fnd.check_collapse(summary, experiment), fnd.check_rise_fall(summary, experiment),
                 fnd.check_rise_fall(summary, experiment, fid="A1", column="twonn")]
    elif kind == "e2":
        found = [fnd.check_datasets(summary, train, experiment), fnd.check_collapse(summary, experiment, fid="1b")]
    elif kind == "e3":
        found = [fnd.check_activations(summary, experiment)]
    elif kind == "e4":
        if per_class.empty or train.empty:
            raise ReptopoError("aggregate.analysis=e4 needs per-class lifespans and train metrics for every run")
        zoo = fnd.zoo_table(summary, per_class, train, target_class)
        f = fnd.check_generalization(zoo, experiment, n_boot=n_boot, seed=seed, target_class=target_class)
        found = [f]
        tables["zoo.csv"] = zoo
        figures["zoo_generalization.png"] = plotting.zoo_scatter(
            zoo, f.values, f"E4: class {target_class} at the logits vs test accuracy ({len(zoo)} models)")
    elif kind == "e5":
        if attacks.empty:
            raise ReptopoError("aggregate.analysis=e5 needs runs made with probe.attack (no attack.json found)")
        found = [fnd.check_adversarial(summary, attacks, experiment)]
        merged = summary.merge(attacks, on="run")
        tables["attack.csv"] = attacks.sort_values("eps")
        figures["attack_lifespans.png"] = plotting.attack_curves(merged, "L1_global", "E5: L_1 per layer vs FGSM eps")
    elif kind == "e7":
        found = [fnd.check_collapse(summary, experiment, fid="1T"), fnd.check_rise_fall(summary, experiment, fid="2T")]
    else:  # naitzat
        if class_betti.empty:
            raise ReptopoError("aggregate.analysis=naitzat needs topology.class_betti.enabled=true (no class_betti.csv)")
        found = fnd.check_naitzat(class_betti, summary, train, experiment)
        meta = summary.drop_duplicates("run").set_index("run")
        cb = class_betti.assign(curve=[f"{meta.loc[r, 'dataset']} {meta.loc[r, 'label']}" for r in class_betti["run"]])
        tables["class_betti.csv"] = cb
        figures["class_betti.png"] = plotting.class_betti_figure(cb, "Per-class Betti numbers vs depth")
    return found, figures, tables
