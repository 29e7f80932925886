"""The tables the homology and aggregate stages write, built from results in memory (no I/O).

Homology (one run): :func:`homology_tables` turns the per-layer :class:`LayerResult` list into
summary / betti / phdim_points / lifespans_per_class / class_betti DataFrames and the grid
record. Aggregate (many runs): :func:`combine_runs` stacks the runs' tables, :func:`betti_arrays`
turns a long Betti table back into curves, :func:`aggregate_report` writes the Markdown report.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reptopo import topology
from reptopo.analysis.layers import LayerResult, shared_grid
from reptopo.topology.intrinsic import METHODS as INTRINSIC_METHODS

# Per-layer columns of summary.csv that MLflow gets as series (step = probe index).
SERIES_COLUMNS = ("phdim", "L0_local", "L1_local", "L0_global", "L1_global", *INTRINSIC_METHODS)
REPORT_COLUMNS = ["run", "label", "layer", "depth", "phdim", "L0_local", "L1_local", "L0_global", "L1_global",
                  *INTRINSIC_METHODS]
CURVE_COLUMNS = ["run", "label", "layer", "depth", "phdim", "L0_local", "L1_local", "L0_global", "L1_global"]


def homology_tables(layers: list[dict], results: list[LayerResult], n_samples: int, betti_num: int,
                    run: dict) -> tuple[dict[str, pd.DataFrame], dict, np.ndarray]:
    """Tables of one run's homology output.

    ``layers``: the activations metadata's layer records (index, name, depth, shape);
    ``results``: one LayerResult per layer; ``run``: label, model and dataset of the run.
    Returns ({file name: DataFrame}, grid record for grid.json, Betti curves (L, maxdim+1, G)).
    """
    dims = list(range(len(results[0].diagrams)))
    grid = shared_grid([r.diagrams for r in results], betti_num)
    curves = np.stack([topology.betti_curves(r.diagrams, grid) for r in results])
    summary = pd.DataFrame([
        {"layer_index": l["index"], "layer": l["name"], "depth": l["depth"], "label": run["label"],
         "model": run["model"], "dataset": run["dataset"], "n_samples": n_samples, "n_features": l["shape"][1],
         "phdim": r.phdim.dim, "phdim_std": r.phdim.dim_std, "phdim_slope": r.phdim.slope,
         **{f"L{k}_{mode}": getattr(r, f"lifespans_{mode}")[k] for k in dims for mode in ("local", "global")},
         **r.intrinsic}
        for l, r in zip(layers, results)
    ])
    tables = {
        "summary.csv": summary,
        "betti.csv": pd.DataFrame([
            {"layer_index": l["index"], "layer": l["name"], "depth": l["depth"], "filtration": float(eps),
             **{f"betti_{k}": int(curves[i, k, g]) for k in dims}}
            for i, l in enumerate(layers) for g, eps in enumerate(grid)]),
        "phdim_points.csv": pd.DataFrame([
            {"layer_index": l["index"], "layer": l["name"], "n": int(size), "repeat": rep, "E": float(r.phdim.E[s, rep])}
            for l, r in zip(layers, results) for s, size in enumerate(r.phdim.sizes) for rep in range(r.phdim.E.shape[1])]),
        "lifespans_per_class.csv": pd.DataFrame([
            {"layer_index": l["index"], "layer": l["name"], "dim": k, "class": c, "L": v}
            for l, r in zip(layers, results) for k in dims for c, v in r.lifespans_per_class[k].items()]),
        "class_betti.csv": pd.DataFrame([
            {"layer_index": l["index"], "layer": l["name"], "depth": l["depth"], "class": c,
             **{f"betti_{k}": b[k] for k in dims}}
            for l, r in zip(layers, results) for c, b in r.class_betti.items()]),
    }
    grid_info = {
        "kind": "linear", "start": 0.0, "stop": float(grid[-1]), "num": len(grid),
        "space": "MinMax-scaled activations (global cloud)",
        "stop_rule": "largest finite death over all layers of this run",
        "global_points": [r.n_global for r in results], "values": grid.tolist(),
    }
    return tables, grid_info, curves


def layer_metrics(summary: pd.DataFrame) -> dict:
    """homology.json for ``dvc metrics``: PHdim and L_k local per layer name, rounded to 1e-4."""
    names = summary["layer"].tolist()
    cols = ["phdim"] + [c for c in summary.columns if c.startswith("L") and c.endswith("_local")]
    return {c: dict(zip(names, summary[c].round(4))) for c in cols}


def betti_arrays(betti: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A long Betti table (one run's betti.csv) back to (grid (G,), curves (L, maxdim+1, G), layer names)."""
    layers = betti.drop_duplicates("layer_index").sort_values("layer_index")
    grid = betti[betti.layer_index == layers.layer_index.iloc[0]]["filtration"].to_numpy()
    ks = sorted(int(c.split("_")[1]) for c in betti.columns if c.startswith("betti_"))
    curves = np.stack([np.stack([betti[betti.layer_index == i][f"betti_{k}"].to_numpy() for k in ks])
                       for i in layers.layer_index])
    return grid, curves, layers.layer.tolist()


@dataclass
class RunTables:
    """What the aggregate reads of one run (None / empty where the run has no such file)."""

    name: str
    summary: pd.DataFrame
    betti: pd.DataFrame
    train: dict | None = None
    per_class: pd.DataFrame | None = None
    class_betti: pd.DataFrame | None = None
    attack: dict | None = None
    label: str | None = None
    seed: int | None = None


# A configuration is a run's label, model and dataset: its training seeds are its replicates.
CONFIG_COLUMNS = ["label", "model", "dataset"]


@dataclass
class Combined:
    """Every run's tables stacked, each row tagged with its ``run``; ``summary`` and ``train`` also
    carry the run's ``label`` and training ``seed``."""

    summary: pd.DataFrame
    train: pd.DataFrame
    per_class: pd.DataFrame
    class_betti: pd.DataFrame
    attacks: pd.DataFrame
    betti: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        """The training seeds present, ascending."""
        return sorted(int(s) for s in self.summary["seed"].unique())

    def for_seed(self, seed: int) -> "Combined":
        """Only the runs trained with ``seed``."""
        runs = set(self.summary.loc[self.summary["seed"] == seed, "run"])
        keep = lambda df: df[df["run"].isin(runs)].reset_index(drop=True) if len(df) else df  # noqa: E731
        return Combined(keep(self.summary), keep(self.train), keep(self.per_class), keep(self.class_betti),
                        keep(self.attacks), {r: b for r, b in self.betti.items() if r in runs})

    def seed_means(self) -> "Combined":
        """One pseudo-run per configuration (label, model, dataset), named ``mean <label> <model>
        <dataset>``: every numeric column averaged over its seeds, row by row (same layer, class,
        ...). Betti numbers become means too, so a rule that asks beta_0 == 1 on the means asks it
        of every seed. No Betti curves (they are per run)."""
        meta = self.summary.drop_duplicates("run").set_index("run")[CONFIG_COLUMNS]
        name = {run: "mean " + " ".join(str(v) for v in row) for run, row in meta.iterrows()}

        def average(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
            if not len(df):
                return df
            df = df.assign(run=df["run"].map(name))
            numeric = [c for c in df.columns if c not in keys and c != "run" and pd.api.types.is_numeric_dtype(df[c])]
            other = [c for c in df.columns if c not in keys and c != "run" and c not in numeric]
            agg = {**{c: "mean" for c in numeric}, **{c: "first" for c in other}}
            out = df.groupby(["run", *keys], sort=True, dropna=False).agg(agg).reset_index()
            return out[[c for c in df.columns if c in out]]

        summary = average(self.summary.drop(columns=["seed"]), [*CONFIG_COLUMNS, "layer_index"])
        train = average(self.train.drop(columns=[c for c in ("seed",) if c in self.train]), [])
        per_class = average(self.per_class, [c for c in ("layer_index", "dim", "class") if c in self.per_class])
        class_betti = average(self.class_betti, [c for c in ("layer_index", "class") if c in self.class_betti])
        attacks = average(self.attacks, [])
        return Combined(summary.assign(seed=-1), train, per_class, class_betti, attacks, {})


def _stack(frames: list[pd.DataFrame | None], names: list[str]) -> pd.DataFrame:
    tagged = [f.assign(run=n)[["run", *f.columns]] for f, n in zip(frames, names) if f is not None and len(f)]
    return pd.concat(tagged, ignore_index=True) if tagged else pd.DataFrame()


def combine_runs(runs: list[RunTables]) -> Combined:
    """Stack the runs' tables; a run's ``label`` (set by the caller) overrides its summary's."""
    summaries = []
    for r in runs:
        df = r.summary.copy()
        df.insert(0, "run", r.name)
        if "label" not in df:
            df.insert(1, "label", r.name)
        if r.label is not None:
            df["label"] = r.label
        df.insert(list(df.columns).index("label") + 1, "seed", -1 if r.seed is None else int(r.seed))
        summaries.append(df)
    names = [r.name for r in runs]
    summary = pd.concat(summaries, ignore_index=True)
    meta = summary.drop_duplicates("run").set_index("run")
    tags = lambda r: {"label": meta.loc[r.name, "label"], "seed": -1 if r.seed is None else int(r.seed),  # noqa: E731
                      **{c: meta.loc[r.name, c] for c in ("model", "dataset") if c in meta}}
    return Combined(
        summary=summary,
        train=pd.DataFrame([{"run": r.name, **tags(r), **{k: v for k, v in r.train.items() if k not in tags(r)}}
                            for r in runs if r.train is not None]),
        per_class=_stack([r.per_class for r in runs], names),
        class_betti=_stack([r.class_betti for r in runs], names),
        attacks=pd.DataFrame([{"run": r.name, **r.attack} for r in runs if r.attack is not None]),
        betti={r.name: r.betti for r in runs},
    )


def legend_column(summary: pd.DataFrame) -> str:
    """Legends use the run labels when they tell configurations apart (one run per label, or one
    run per seed of a label: the seeds of one curve); else ``config`` (label, model and dataset,
    the column :func:`with_config` adds) when that does; the run names otherwise."""
    if "label" not in summary:
        return "run"
    runs = with_config(summary).drop_duplicates("run")
    for column in ("label", "config"):
        per = runs.groupby(column)
        seeds_apart = "seed" in runs and per["seed"].nunique().eq(per["run"].nunique()).all()
        if per["run"].nunique().max() == 1 or (per["config"].nunique().max() == 1 and seeds_apart):
            return column
    return "run"


def with_config(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with a ``config`` column: label, model and dataset joined (a curve's name)."""
    cols = [c for c in CONFIG_COLUMNS if c in summary]
    return summary.assign(config=summary[cols].astype(str).agg(" ".join, axis=1))


def md_table(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (floats to 4 significant digits)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def aggregate_report(experiment: str, scale: str | None, runs: list[str], findings: list, train: pd.DataFrame,
                     summary: pd.DataFrame, figures: list[str]) -> str:
    """report.md of an aggregate: findings (objects with id, claim, measured, verdict), training,
    per-layer descriptors and links to ``figures`` (file names under ../figures/)."""
    lines = [
        f"# reptopo report: experiment `{experiment}`" + (f" ({scale} scale)" if scale else ""), "",
        f"Runs: {', '.join(runs)}", "",
        *(["## Findings", "", "| # | finding | measured (seed means) | verdict | over seeds |", "|---|---|---|---|---|",
           *[f"| {f.id} | {f.claim} | {f.measured} | **{f.verdict}** | {f.seed_summary} |" for f in findings], "",
           *[line for f in findings if getattr(f, "seeds", None) for line in (
               f"Finding {f.id} per seed:", "", "| seed | verdict | measured |", "|---|---|---|",
               *[f"| {s} | {v['verdict']} | {v['measured']} |" for s, v in f.seeds.items()], "")]]
          if findings else []),
        "## Training", "", md_table(train) if len(train) else "(no train metrics found)", "",
        "## Per-layer descriptors", "",
        md_table(summary[[c for c in REPORT_COLUMNS if c in summary]]), "",
        "## Figures", "",
        *[f"![{name.rsplit('.', 1)[0]}](../figures/{name})" for name in figures],
    ]
    return "\n".join(lines) + "\n"
