"""The REPRODUCTION report: every paper finding next to what the experiments measured.

Pure: :func:`reproduction_report` turns each experiment's results (its findings.json verdicts,
computed by :mod:`reptopo.paper.findings`, its train metrics, timing and figure names) into the
Markdown report and the findings table. The ``reproduction`` stage reads those files and writes
``reports/<scale>/REPRODUCTION.md`` and ``findings.csv``. Nothing in the report is typed by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reptopo.paper.findings import RULE_CHANGES, seed_summary
from reptopo.paper.regime import accuracy_by_config, check_regime
from reptopo.runtime.errors import ReptopoError

BADGE = {"reproduced": "reproduced", "partly": "partly", "not reproduced": "NOT reproduced", "not measured": "not measured"}
FINDING_COLUMNS = ("id", "experiment", "claim", "paper", "measured", "verdict", "rule")
# findings.csv: FINDING_COLUMNS, then the per-seed tally ("reproduced in 2 of 3 seeds (mean: ...)")
# and each seed's verdict ("0: reproduced; 1: partly; ...").
TABLE_COLUMNS = (*FINDING_COLUMNS, "seeds", "seed_verdicts")


@dataclass
class ExperimentResults:
    """What one finished experiment left under reports/<scale>/<name>/."""

    name: str
    title: str
    findings: list[dict]
    timing: dict = field(default_factory=dict)
    train: pd.DataFrame | None = None
    figures: list[str] = field(default_factory=list)
    # The compare stage's pairs.csv (one row per compared pair) and figure paths under the folder.
    pairs: pd.DataFrame | None = None
    compare_figures: list[str] = field(default_factory=list)


def _fmt_s(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _section(exp: ExperimentResults) -> list[str]:
    lines = [f"### {exp.title}", ""]
    if exp.train is not None and len(exp.train) and "test_acc" in exp.train:
        acc = exp.train["test_acc"]
        lines += [f"{len(exp.train)} trained run(s); test accuracy {acc.min():.3f}-{acc.max():.3f}. "
                  f"Full tables: [`{exp.name}/tables/report.md`]({exp.name}/tables/report.md).", ""]
        if {"label", "seed"} <= set(exp.train.columns):
            by = accuracy_by_config(exp.train)
            lines += ["| configuration | seeds | test accuracy, mean | sd | lowest |", "|---|---|---|---|---|",
                      *[f"| {r.label} ({r.model}, {r.dataset}) | {r.seeds} | {r.mean:.3f} | {r.sd:.3f} | {r.lowest:.3f} |"
                        if "model" in by else f"| {r.label} | {r.seeds} | {r.mean:.3f} | {r.sd:.3f} | {r.lowest:.3f} |"
                        for r in by.itertuples()], ""]
    seeded = [f for f in exp.findings if f.get("seeds")]
    for f in seeded:
        lines += [f"Finding {f['id']} per seed ({seed_summary(f['verdict'], [v['verdict'] for v in f['seeds'].values()])}):",
                  "", "| seed | verdict | measured |", "|---|---|---|",
                  *[f"| {s} | {BADGE.get(v['verdict'], v['verdict'])} | {v['measured']} |" for s, v in f["seeds"].items()],
                  f"| mean | {BADGE.get(f['verdict'], f['verdict'])} | {f['measured']} |", ""]
    lines += [f"![{exp.name} {Path(p).stem}]({exp.name}/figures/{p})" for p in exp.figures if not p.startswith("betti_")]
    if exp.pairs is not None and len(exp.pairs):
        cols = [c for c in ("mean_diagonal_cka", "mean_diagonal_cka_debiased", "mean_diagonal_rtd",
                            "mean_diagonal_overlap", "cka_best_depth_gap") if c in exp.pairs]
        pairs = exp.pairs if "seed" in exp.pairs else exp.pairs.assign(seed=-1)
        g = pairs.groupby(["pair", "label_a", "label_b"], sort=False)
        mean, sd, n = g[cols].mean(), g[cols].std().fillna(0.0), g["seed"].nunique()
        cell = lambda key, c: f"{mean.loc[key, c]:.3f}" + (f" +- {sd.loc[key, c]:.3f}" if n[key] > 1 else "")  # noqa: E731
        lines += ["", f"Compared layer by layer ([`{exp.name}/compare/`]({exp.name}/compare/pairs.csv); means along "
                  "the same-relative-depth diagonal; best-depth gap: mean |depth of the most CKA-similar layer of B - "
                  "depth of A's layer|; each pair compared seed by seed, mean +- sd over the seeds; heatmaps of the "
                  "first seed):", "",
                  "| pair | A | B | seeds | " + " | ".join(cols) + " |", "|---|---|---|---|" + "---|" * len(cols),
                  *[f"| {key[0]} | {key[1]} | {key[2]} | {n[key]} | " + " | ".join(cell(key, c) for c in cols) + " |"
                    for key in mean.index], ""]
        lines += [f"![{exp.name} {p.split('/')[1]} {Path(p).stem}]({exp.name}/{p})" for p in exp.compare_figures]
    return lines + [""]


def reproduction_report(scale: str, experiments: list[ExperimentResults],
                        made_with: list[str] | None = None) -> tuple[str, pd.DataFrame]:
    """(REPRODUCTION.md text, findings table with columns ``FINDING_COLUMNS``); ``made_with``:
    lines saying what the runs were made with (CPU, threads, libraries), listed in the report."""
    rows = [{**{k: f[k] for k in FINDING_COLUMNS}, "experiment": exp.name,
             "seeds": seed_summary(f["verdict"], [v["verdict"] for v in f.get("seeds", {}).values()]),
             "seed_verdicts": "; ".join(f"{s}: {v['verdict']}" for s, v in f.get("seeds", {}).items())}
            for exp in experiments for f in exp.findings]
    if not rows:
        raise ReptopoError(f"reproduction report ({scale} scale): the experiments hold no findings")
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    regimes = [check_regime(exp.name, exp.train) for exp in experiments]
    counts = table["verdict"].value_counts().to_dict()
    timings = [(e.name, e.timing.get("runs"), e.timing.get("checkpoints"), e.timing.get("stage_seconds", {}),
                e.timing.get("wall_seconds")) for e in experiments if e.timing]
    md = [
        f"# Reproducing Magai (2023): {scale} scale", "",
        "Generated by `python -m reptopo reproduction` from the experiments' outputs; every "
        "verdict is computed from the measured numbers by the rule shown (src/reptopo/paper/findings.py), none is "
        "typed by hand. Paper values are read off the authors' figures (docs/paper-protocol.md).", "",
        "Verdicts: " + ", ".join(f"{BADGE.get(v, v)}: {n}" for v, n in sorted(counts.items())), "",
        "## Findings", "",
        "Each finding is checked on every training seed's runs alone and on the seed means (each configuration's "
        "numbers averaged over its seeds, layer by layer) with the same rule; the verdict is the means', beside the "
        "count over seeds. The measured values are the means'; each experiment's section below gives every seed's.", "",
        "| # | experiment | paper finding | paper value | measured here (seed means) | verdict | over seeds |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r.id} | {r.experiment} | {r.claim} | {r.paper} | {r.measured} | **{BADGE.get(r.verdict, r.verdict)}** "
          f"| {r.seeds if r.seed_verdicts else '-'} |" for r in table.itertuples()],
        "",
        "## Regime: the paper's setting and ours", "",
        "The paper studies well-trained networks; a verdict counts only where the floors below are met (test "
        "accuracy, training seeds per configuration, the E4 zoo's size and spread; src/reptopo/paper/regime.py, fixed "
        "before the runs).", "",
        "| experiment | paper: architecture | paper: data | paper: accuracy | here: models | here: data | here: test "
        "accuracy | here: seeds per configuration | floors met |", "|---|---|---|---|---|---|---|---|---|",
        *[f"| {g['experiment']} | {g['paper_architecture']} | {g['paper_data']} | {g['paper_accuracy']} | {g['models']} "
          f"| {g['datasets']} | {g['accuracy']} | {g['seeds']} | {'yes' if g['met'] else '**no**'} |" for g in regimes],
        "",
        *[f"- {g['experiment']}: " + "; ".join(f"{c['requirement']}: {c['measured']} ({'met' if c['met'] else 'NOT met'})"
                                               for c in g["checks"]) for g in regimes],
        "",
        "## Rules behind the verdicts", "",
        *[f"- **{r.id}**: {r.rule}" for r in table.itertuples() if r.rule],
        "",
        "Rule changes since the rules were first written (each for a scientific reason, never to move a verdict):", "",
        *([f"- {c}" for c in RULE_CHANGES] or ["- none"]),
        "",
        "## Wall time per stage", "",
        "| experiment | runs | checkpoints | train | activations | homology | aggregate | experiment wall |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {e} | {n} | {c} | " + " | ".join(_fmt_s(st.get(k)) for k in ("train", "activations", "homology", "aggregate"))
          + f" | {_fmt_s(w)} |" for e, n, c, st, w in timings],
        "",
        "Stage times are summed over each experiment's runs as measured when each output was made; a checkpoint "
        "or run shared by two experiments is listed under both, and its second use costs no time (see the "
        "experiment wall column).", "",
        "## Made with", "",
        "The same config and seed give the same numbers bit for bit on the same CPU kind, threads per job and "
        "library versions; on another CPU the training kernels differ in the last bits and the numbers move by a "
        "few per cent (`make verify` reruns the paper and says which verdicts still hold).", "",
        *[f"- {line}" for line in (made_with or ["(not recorded)"])],
        "",
        "## Experiments", "",
        *[line for exp in experiments for line in _section(exp)],
    ]
    return "\n".join(md) + "\n", table
