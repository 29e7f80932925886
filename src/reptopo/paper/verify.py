"""Two reproductions of the paper side by side: which verdicts changed, and how far each finding's
numbers moved.

Pure: findings in (the dicts of each experiment's ``findings.json``), a table and a Markdown page
out. The ``verify`` stage reruns the paper and compares the rerun with the committed reports.
"""
from __future__ import annotations

import math
import re

import pandas as pd

# Run folders in the pool end in 8 hex digits of their fingerprint, which change with the code.
# A run is matched by its configuration (``run_keys``: label, model, dataset); a run name no table
# describes is matched by its name without the fingerprint.
_RUN_FINGERPRINT = re.compile(r"-[0-9a-f]{8}(?=$|[\s/])")
VERIFY_COLUMNS = ("experiment", "id", "verdict_reference", "verdict_rerun", "verdict_changed", "seeds_reference",
                  "seeds_rerun", "n_values", "n_unmatched", "max_rel_change", "largest_change_at",
                  "value_reference", "value_rerun")


def run_key(label, model, dataset) -> str:
    """How a run is named in a comparison: its configuration, the same in two reproductions."""
    return f"{label} ({model}, {dataset})"


def flat_values(finding: dict, run_keys: dict[str, str] | None = None) -> dict[str, float]:
    """Every number of a finding (its seed means' ``values`` and each seed's) as {path: value}:
    ``mean/<group>/<quantity>``, ``seed 0/<run>/<quantity>``, a run named by ``run_keys`` ({run
    folder: :func:`run_key`}) or else by its folder name less the fingerprint."""
    out: dict[str, float] = {}
    run_keys = run_keys or {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                key = str(key)
                walk(f"{prefix}/{run_keys.get(key) or _RUN_FINGERPRINT.sub('', key)}", value)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(f"{prefix}/{i}", value)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out[prefix] = float(node)

    walk("mean", finding.get("values") or {})
    for seed, per_seed in (finding.get("seeds") or {}).items():
        walk(f"seed {seed}", per_seed.get("values") or {})
    return out


def relative_change(reference: float, rerun: float) -> float:
    """|rerun - reference| / |reference|: 0 when equal (NaN equals NaN), inf from 0 or NaN to
    something else."""
    if reference == rerun or (math.isnan(reference) and math.isnan(rerun)):
        return 0.0
    if reference == 0 or math.isnan(reference) or math.isnan(rerun):
        return math.inf
    return abs(rerun - reference) / abs(reference)


def _tally(finding: dict | None) -> str:
    if not finding:
        return "-"
    seeds = finding.get("seeds") or {}
    return "; ".join(f"{s}: {v.get('verdict')}" for s, v in seeds.items()) or "-"


def compare_findings(reference: list[dict], rerun: list[dict], run_keys_reference: dict[str, str] | None = None,
                     run_keys_rerun: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per finding of either side (``VERIFY_COLUMNS``), keyed by (experiment, id): both
    verdicts (``missing`` where a side lacks the finding) and the largest relative change over the
    numbers both sides have (``n_unmatched``: numbers only one side has). ``run_keys_*``: each
    side's {run folder: :func:`run_key`}, so runs are matched by configuration."""
    ref = {(str(f["experiment"]), str(f["id"])): f for f in reference}
    new = {(str(f["experiment"]), str(f["id"])): f for f in rerun}
    rows = []
    for key in [*ref, *(k for k in new if k not in ref)]:
        a, b = ref.get(key), new.get(key)
        va, vb = (flat_values(f, keys) if f else {} for f, keys in ((a, run_keys_reference), (b, run_keys_rerun)))
        common = [p for p in va if p in vb]
        changes = {p: relative_change(va[p], vb[p]) for p in common}
        worst = max(changes, key=lambda p: changes[p]) if changes else None
        verdict_a, verdict_b = (f["verdict"] if f else "missing" for f in (a, b))
        rows.append({
            "experiment": key[0], "id": key[1], "verdict_reference": verdict_a, "verdict_rerun": verdict_b,
            "verdict_changed": verdict_a != verdict_b, "seeds_reference": _tally(a), "seeds_rerun": _tally(b),
            "n_values": len(common), "n_unmatched": len(set(va) ^ set(vb)),
            "max_rel_change": changes[worst] if worst else float("nan"), "largest_change_at": worst or "",
            "value_reference": va.get(worst, float("nan")) if worst else float("nan"),
            "value_rerun": vb.get(worst, float("nan")) if worst else float("nan"),
        })
    return pd.DataFrame(rows, columns=list(VERIFY_COLUMNS))


def _pct(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return "inf" if math.isinf(x) else f"{100 * x:.2g} %"


def verify_report(table: pd.DataFrame, reference: str, rerun: str, made_with: dict[str, list[str]] | None = None) -> str:
    """The comparison as Markdown: a headline (how many verdicts changed), one row per finding,
    and, when given, what each side was made with (``made_with``: {side: lines})."""
    changed = table[table["verdict_changed"]]
    finite = table["max_rel_change"].replace(math.inf, float("nan")).dropna()
    lines = [f"# Verification: {rerun} against {reference}", "",
             f"{len(changed)} of {len(table)} verdicts changed"
             + (f" ({', '.join(f'{r.experiment} {r.id}' for r in changed.itertuples())})" if len(changed) else "")
             + f"; the largest relative change of a finding's numbers: {_pct(table['max_rel_change'].max())}"
             + (f" (median over findings {_pct(float(finite.median()))})" if len(finite) else "") + ".", "",
             "| experiment | # | verdict (reference -> rerun) | per seed, rerun | numbers | largest relative change | at |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        verdict = (f"**{r.verdict_reference} -> {r.verdict_rerun}**" if r.verdict_changed else r.verdict_reference)
        at = (f"{r.largest_change_at} ({r.value_reference:.4g} -> {r.value_rerun:.4g})"
              if r.largest_change_at and r.max_rel_change != 0 else "-")
        lines.append(f"| {r.experiment} | {r.id} | {verdict} | {r.seeds_rerun} | {r.n_values}"
                     + (f" (+{r.n_unmatched} unmatched)" if r.n_unmatched else "") + f" | {_pct(r.max_rel_change)} | {at} |")
    for side, described in (made_with or {}).items():
        lines += ["", f"{side} made with:", "", *[f"- {line}" for line in described]]
    return "\n".join(lines) + "\n"
