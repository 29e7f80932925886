"""The paper's findings as computable checks: measured numbers in, a verdict out.

Each ``check_*`` takes the aggregate stage's tables (pandas DataFrames, no I/O) and returns
:class:`Finding` records: the paper's claim and its reported values (from
docs/paper-protocol.md), what this run measured, and a verdict computed from the numbers
by the rule stated in ``rule``: "reproduced", "partly" or "not reproduced" (or "not measured"
when the experiment produced nothing to test). Tables:

- ``summary``: one row per (run, layer): run, label, model, dataset, layer_index, depth, phdim,
  L0_local, L1_local, L0_global, L1_global, twonn, mle (the homology stage's summary.csv);
- ``train``: one row per run: run, train_acc, test_acc, ...;
- ``per_class``: run, layer_index, dim, class, L (lifespans_per_class.csv);
- ``attacks``: run, eps, macro_f1, accuracy, target_rate;
- ``class_betti``: run, layer_index, depth, class, betti_0, betti_1.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

REPRODUCED, PARTLY, NOT, UNMEASURED = "reproduced", "partly", "not reproduced", "not measured"

# Every change to a rule below after it was first written, with its scientific reason (the report
# lists them). A rule never changes to move a verdict.
RULE_CHANGES: tuple[str, ...] = ()


@dataclass
class Finding:
    id: str
    experiment: str
    claim: str
    paper: str
    measured: str
    verdict: str
    rule: str
    values: dict = field(default_factory=dict)
    # Training seed -> {"verdict", "measured", "values"} of the same rule applied to that seed's runs
    # alone (:func:`with_seeds`); ``verdict``, ``measured`` and ``values`` above are then those of
    # the seed means. Empty when the finding was not checked per seed.
    seeds: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def seed_summary(self) -> str:
        return seed_summary(self.verdict, [s["verdict"] for s in self.seeds.values()])


def seed_summary(mean_verdict: str, seed_verdicts: list[str]) -> str:
    """"reproduced in 2 of 3 seeds, partly in 1 (mean: reproduced)"; just the verdict without seeds."""
    if not seed_verdicts:
        return mean_verdict
    n = len(seed_verdicts)
    counts = {v: seed_verdicts.count(v) for v in (REPRODUCED, PARTLY, NOT, UNMEASURED)}
    parts = [f"reproduced in {counts[REPRODUCED]} of {n} seed{'s' if n > 1 else ''}"]
    parts += [f"{v} in {counts[v]}" for v in (PARTLY, NOT, UNMEASURED) if counts[v]]
    return ", ".join(parts) + f" (mean: {mean_verdict})"


def with_seeds(on_means: list[Finding], per_seed: dict[int, list[Finding]]) -> list[Finding]:
    """The findings checked on the seed means, each given the same finding's per-seed results
    (matched by id). ``per_seed``: training seed -> that seed's findings (same checks, same rules)."""
    out = []
    for f in on_means:
        seeds = {}
        for seed in sorted(per_seed):
            match = [g for g in per_seed[seed] if g.id == f.id]
            if match:
                seeds[str(seed)] = {"verdict": match[0].verdict, "measured": match[0].measured,
                                    "values": match[0].values}
        out.append(Finding(f.id, f.experiment, f.claim, f.paper, f.measured, f.verdict, f.rule, f.values, seeds))
    return out


def _share_verdict(passed: list[bool]) -> str:
    """All pass: reproduced; some: partly; none: not reproduced."""
    if not passed:
        return UNMEASURED
    if all(passed):
        return REPRODUCED
    return PARTLY if any(passed) else NOT


def _curves(summary: pd.DataFrame):
    for run, df in summary.sort_values(["run", "layer_index"]).groupby("run", sort=True):
        yield run, df.reset_index(drop=True)


def _label(df: pd.DataFrame) -> str:
    return str(df["label"].iloc[0]) if "label" in df else str(df["run"].iloc[0])


# ---------------------------------------------------------------- finding 1: collapse with depth

COLLAPSE_RATIO = 0.25


def check_collapse(summary: pd.DataFrame, experiment: str, fid: str = "1") -> Finding:
    """L_0 and L_1 (local) at the logits are at most 25 % of their largest value at earlier probes."""
    passed, parts, values = [], [], {}
    for run, df in _curves(summary):
        ratios = {}
        for k in (0, 1):
            col = f"L{k}_local"
            if col not in df or len(df) < 2:
                continue
            earlier = float(df[col].iloc[:-1].max())
            ratios[k] = float(df[col].iloc[-1]) / earlier if earlier > 0 else float("nan")
        ok = bool(ratios) and all(np.isfinite(r) and r <= COLLAPSE_RATIO for r in ratios.values())
        passed.append(ok)
        values[run] = {"L0_first": float(df["L0_local"].iloc[0]), "L0_logits": float(df["L0_local"].iloc[-1]),
                       **{f"L{k}_logits_over_max": r for k, r in ratios.items()}}
        parts.append(f"{_label(df)}: L_0 {df['L0_local'].iloc[0]:.3g} -> {df['L0_local'].iloc[-1]:.3g} at the logits "
                     f"({', '.join(f'L_{k} {100 * r:.0f} %' for k, r in ratios.items())} of the earlier maximum)")
    return Finding(
        fid, experiment, "Topology simplifies with depth: L_0 and L_1 of class manifolds fall towards the output "
        "and collapse at the logits.",
        "VGG/CIFAR-10: L_0 about 160-170 flat to mid-depth, about 7 at the logits (about 4 %).",
        "; ".join(parts) or "no runs", _share_verdict(passed),
        f"per run: L_k local at the logits <= {COLLAPSE_RATIO:.0%} of its maximum over earlier probes, k = 0 and 1; "
        "all runs: reproduced, some: partly, none: not reproduced", values)


# ---------------------------------------------------------------- finding 2: PHdim rise and fall

def _hunchback(y: np.ndarray) -> tuple[bool, int]:
    """Interior maximum at least 10 % above the first value, last value at most 75 % of it."""
    i = int(np.argmax(y))
    ok = 0 < i < len(y) - 1 and y[i] >= 1.1 * y[0] and y[-1] <= 0.75 * y[i]
    return bool(ok), i


def check_rise_fall(summary: pd.DataFrame, experiment: str, fid: str = "2", column: str = "phdim") -> Finding:
    passed, parts, values = [], [], {}
    for run, df in _curves(summary):
        y = df[column].to_numpy(dtype=float)
        ok, i = _hunchback(y)
        passed.append(ok)
        values[run] = {"first": y[0], "peak": y[i], "peak_depth": float(df["depth"].iloc[i]), "last": y[-1]}
        parts.append(f"{_label(df)}: {y[0]:.1f} -> peak {y[i]:.1f} at depth {df['depth'].iloc[i]:.0%} -> {y[-1]:.1f}")
    name = {"phdim": "PHdim", "twonn": "TwoNN intrinsic dimension", "mle": "MLE intrinsic dimension"}.get(column, column)
    paper = ("about 12 at the first probe, peak 16-20 at 20-40 % depth, 2-5 at the logits" if column == "phdim"
             else "Ansuini et al.: TwoNN about 30 -> 100-120 -> 15-20 on ImageNet CNNs")
    return Finding(
        fid, experiment, f"{name} rises then falls with depth.", paper, "; ".join(parts) or "no runs",
        _share_verdict(passed),
        f"per run: the maximum of {name} over probes is at an interior probe, >= 1.1 x the first probe's value, "
        "and the logits' value is <= 0.75 x the maximum; all runs: reproduced, some: partly, none: not reproduced",
        values)


# ---------------------------------------------------------------- finding 3: activations

EARLY, LATE = ("relu", "silu"), ("sigmoid", "tanh")


def simplification_depth(depth: np.ndarray, y: np.ndarray) -> float:
    """First relative depth after the maximum of ``y`` where ``y`` has fallen half way from its
    maximum to its value at the logits."""
    i = int(np.argmax(y))
    half = y[-1] + 0.5 * (y[i] - y[-1])
    for j in range(i, len(y)):
        if y[j] <= half:
            return float(depth[j])
    return float(depth[-1])


def check_activations(summary: pd.DataFrame, experiment: str = "e3") -> Finding:
    t, values, parts = {}, {}, []
    for run, df in _curves(summary):
        act = _label(df)
        y = df["phdim"].to_numpy(dtype=float)
        t[act] = simplification_depth(df["depth"].to_numpy(dtype=float), y)
        values[act] = {"simplification_depth": t[act], "phdim_peak": float(y.max()), "phdim_logits": float(y[-1])}
        parts.append(f"{act}: falls by depth {t[act]:.0%} (peak {y.max():.1f}, logits {y[-1]:.1f})")
    early = [t[a] for a in EARLY if a in t]
    late = [t[a] for a in LATE if a in t]
    if not early or not late:
        verdict = UNMEASURED
    elif max(early) <= min(late) and np.mean(early) < np.mean(late):
        verdict = REPRODUCED
    elif np.mean(early) < np.mean(late):
        verdict = PARTLY
    else:
        verdict = NOT
    return Finding(
        "3", experiment, "ReLU and Swish (SiLU) simplify earlier in depth than Sigmoid and Tanh.",
        "PHdim peaks 13.7-16.8; all activations end near 2.3-3 at the output.", "; ".join(parts) or "no runs",
        verdict,
        "simplification depth = first depth after the PHdim maximum where PHdim is half way down to its logits value; "
        "reproduced: every one of ReLU, SiLU <= every one of Sigmoid, Tanh (and a lower mean); partly: lower mean "
        "only; not reproduced: otherwise", values)


# ---------------------------------------------------------------- finding 4: generalization

def bootstrap_ci(x: np.ndarray, y: np.ndarray, stat, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(x, y)`` over resampled (x, y) pairs (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    vals = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue  # a resample with a constant variable has no correlation
        vals.append(stat(x[idx], y[idx]))
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def correlations(x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Pearson and Spearman correlation of x and y with 95 % bootstrap intervals and p-values.

    The pairs are put in (x, y) order first, so the intervals depend on the pairs alone, not on
    the order they come in (which follows run names, and so the code that made the runs)."""
    from scipy import stats

    order = np.lexsort((y, x))
    x, y = np.asarray(x)[order], np.asarray(y)[order]

    pear = lambda a, b: float(stats.pearsonr(a, b)[0])  # noqa: E731
    spear = lambda a, b: float(stats.spearmanr(a, b)[0])  # noqa: E731
    out = {"n": int(len(x)), "pearson": pear(x, y), "spearman": spear(x, y),
           "pearson_p": float(stats.pearsonr(x, y)[1]), "spearman_p": float(stats.spearmanr(x, y)[1])}
    out["pearson_lo"], out["pearson_hi"] = bootstrap_ci(x, y, pear, n_boot, seed)
    out["spearman_lo"], out["spearman_hi"] = bootstrap_ci(x, y, spear, n_boot, seed + 1)
    return out


def zoo_table(summary: pd.DataFrame, per_class: pd.DataFrame, train: pd.DataFrame, target_class: int) -> pd.DataFrame:
    """One row per zoo model: L_0 and L_1 of ``target_class`` at the logits (last probe), the class
    mean, and train/test accuracy."""
    last = summary.loc[summary.groupby("run")["layer_index"].idxmax(), ["run", "label", "layer_index"]]
    pc = per_class.merge(last, on=["run", "layer_index"])
    rows = []
    for run, df in pc.groupby("run", sort=True):
        row = {"run": run, "label": df["label"].iloc[0]}
        for k in (0, 1):
            sel = df[(df["dim"] == k)]
            cls = sel[sel["class"] == target_class]["L"]
            row[f"L{k}_class"] = float(cls.iloc[0]) if len(cls) else float("nan")
            row[f"L{k}_mean"] = float(sel["L"].mean())
        rows.append(row)
    zoo = pd.DataFrame(rows).merge(train[["run", "train_acc", "test_acc"]], on="run", how="left")
    return zoo.sort_values(["label", "run"], kind="stable", ignore_index=True)


def check_generalization(zoo: pd.DataFrame, experiment: str = "e4", n_boot: int = 2000, seed: int = 0,
                         target_class: int = 0) -> Finding:
    values = {}
    ok = zoo.dropna(subset=["L0_class", "test_acc"])
    if len(ok) < 4 or np.ptp(ok["test_acc"]) == 0:
        return Finding("4", experiment, "Smaller L_0 at the logits goes with higher test accuracy.", "about -0.87",
                       f"{len(ok)} models with a spread of test accuracy; need at least 4", UNMEASURED, "", {})
    for k in (0, 1):
        values[f"L{k}"] = correlations(ok[f"L{k}_class"].to_numpy(float), ok["test_acc"].to_numpy(float), n_boot, seed)
    c = values["L0"]
    if c["pearson"] <= -0.5 and c["pearson_hi"] < 0:
        verdict = REPRODUCED
    elif c["pearson"] < 0:
        verdict = PARTLY
    else:
        verdict = NOT
    acc = ok["test_acc"]
    measured = (f"{len(ok)} models, test accuracy {acc.min():.3f}-{acc.max():.3f}; L_0 of class {target_class} at the "
                f"logits vs test accuracy: Pearson {c['pearson']:.2f} [95 % CI {c['pearson_lo']:.2f}, {c['pearson_hi']:.2f}], "
                f"Spearman {c['spearman']:.2f} [{c['spearman_lo']:.2f}, {c['spearman_hi']:.2f}]; L_1: Pearson "
                f"{values['L1']['pearson']:.2f}")
    return Finding(
        "4", experiment, "Across a ResNet zoo, a smaller L_0 of the training class manifold at the logits goes with "
        "higher test accuracy (strong negative correlation).", "Pearson about -0.87 (read off the figure)",
        measured, verdict,
        "reproduced: Pearson r <= -0.5 and the 95 % bootstrap interval below 0; partly: r < 0; not reproduced: r >= 0",
        values)


# ---------------------------------------------------------------- finding 5: adversarial

def check_adversarial(summary: pd.DataFrame, attacks: pd.DataFrame, experiment: str = "e5",
                      column: str = "L1_global") -> Finding:
    from scipy import stats

    df = summary.merge(attacks[["run", "eps", "macro_f1"]], on="run")
    rhos, values = [], {}
    for (idx, layer), sub in df.groupby(["layer_index", "layer"], sort=True):
        if sub["macro_f1"].nunique() < 3 or sub[column].nunique() < 2:
            continue
        rho = float(stats.spearmanr(sub["macro_f1"], sub[column])[0])
        rhos.append(rho)
        values[f"{int(idx):02d} {layer}"] = rho
    if not rhos:
        return Finding("5", experiment, "A more successful targeted attack gives lower lifespans at every layer.",
                       "", "fewer than 3 distinct attack strengths", UNMEASURED, "", {})
    pos = [r > 0 for r in rhos]
    f1 = attacks.sort_values("eps")
    verdict = REPRODUCED if all(pos) else (PARTLY if np.mean(pos) > 0.5 else NOT)
    measured = (f"macro-F1 {f1['macro_f1'].iloc[0]:.3f} (eps {f1['eps'].iloc[0]:g}) -> {f1['macro_f1'].iloc[-1]:.3f} "
                f"(eps {f1['eps'].iloc[-1]:g}); Spearman(macro-F1, L_1) > 0 at {sum(pos)} of {len(rhos)} layers "
                f"(median {np.median(rhos):.2f})")
    return Finding(
        "5", experiment, "A more successful targeted attack (lower macro-F1) gives lower lifespans at every layer.",
        "L_1 per layer falls as eps grows (MobileNetV2, CIFAR-10, 10 eps in 0.005-0.095)", measured, verdict,
        "per layer: Spearman correlation over attack strengths between macro-F1 and L_1 (pooled cloud); reproduced: "
        "> 0 at every layer; partly: at more than half; not reproduced: otherwise", values)


# ---------------------------------------------------------------- finding 6: datasets

def retained_topology(df: pd.DataFrame, column: str = "L0_local") -> float:
    """Mean of ``column`` over the probes before the logits, relative to the first probe."""
    y = df[column].to_numpy(dtype=float)
    return float(np.mean(y[:-1]) / y[0]) if y[0] > 0 else float("nan")


def check_datasets(summary: pd.DataFrame, train: pd.DataFrame, experiment: str = "e2") -> Finding:
    acc = dict(zip(train["run"], train["test_acc"]))
    passed, parts, values = [], [], {}
    for model, sub in summary.groupby("model", sort=True):
        runs = []
        for run, df in _curves(sub):
            runs.append((acc.get(run, float("nan")), retained_topology(df), str(df["dataset"].iloc[0])))
        runs = sorted(r for r in runs if np.isfinite(r[0]) and np.isfinite(r[1]))
        if len(runs) < 2:
            continue
        hardest, easiest = runs[0], runs[-1]
        ok = hardest[1] > easiest[1]
        passed.append(ok)
        values[model] = {d: {"test_acc": a, "retained_L0": r} for a, r, d in runs}
        parts.append(f"{model}: harder {hardest[2]} (acc {hardest[0]:.3f}) retains {hardest[1]:.2f}, easier "
                     f"{easiest[2]} (acc {easiest[0]:.3f}) {easiest[1]:.2f}")
    return Finding(
        "6", experiment, "Harder natural-image data keep more topology until later layers.",
        "CIFAR-10 vs SVHN vs a natural-image set: the harder set's L_0/L_1 stay high deeper", "; ".join(parts) or
        "fewer than 2 datasets per model", _share_verdict(passed),
        "per model: retained topology = mean L_0 local over the probes before the logits / its first-probe value; "
        "the dataset with the lowest test accuracy must retain more than the one with the highest; all models: "
        "reproduced, some: partly, none: not reproduced", values)


# ---------------------------------------------------------------- Naitzat et al.

def simple_depth(cb: pd.DataFrame) -> float:
    """First relative depth from which every class has beta_0 = 1 and beta_k = 0 (k >= 1) at every
    later probe; inf when the output never gets there."""
    betti_cols = [c for c in cb.columns if c.startswith("betti_") and c != "betti_0"]
    layers = cb.groupby(["layer_index", "depth"], sort=True).apply(
        lambda d: bool((d["betti_0"] == 1).all() and (d[betti_cols] == 0).all().all())).reset_index(name="simple")
    simple = layers["simple"].to_numpy()
    for j in range(len(simple)):
        if simple[j:].all():
            return float(layers["depth"].iloc[j])
    return float("inf")


WELL_TRAINED = 0.95


def check_naitzat(class_betti: pd.DataFrame, summary: pd.DataFrame, train: pd.DataFrame,
                  experiment: str = "naitzat") -> list[Finding]:
    meta = summary.drop_duplicates("run").set_index("run")
    acc = dict(zip(train["run"], train["test_acc"]))
    depth, test_acc = {}, {}  # (dataset, activation) -> simple-from depth, test accuracy
    for run, cb in class_betti.groupby("run", sort=True):
        key = (str(meta.loc[run, "dataset"]), str(meta.loc[run, "label"]))
        depth[key], test_acc[key] = simple_depth(cb), acc.get(run, float("nan"))
    values = {f"{ds} {act}": {"simple_from_depth": depth[(ds, act)], "test_acc": test_acc[(ds, act)]}
              for ds, act in depth}
    reached = [bool(np.isfinite(depth[key])) for key in sorted(depth) if test_acc[key] >= WELL_TRAINED]
    parts = [f"{ds} {act}: {'simple from depth %.0f%%' % (100 * d) if np.isfinite(d) else 'not simple at the output'}"
             for (ds, act), d in sorted(depth.items())]
    f_a = Finding(
        "N1", experiment, "Per-class Betti numbers fall to beta_0 = 1, beta_1 = 0 through well-trained fully "
        "connected nets.", "Naitzat et al. (JMLR 2020): D-I/D-II/D-III, every well-trained net",
        "; ".join(parts) or "no runs", _share_verdict(reached),
        f"per well-trained run (test accuracy >= {WELL_TRAINED}): every class has beta_0 = 1 and beta_1 = 0 at the last probes (Betti numbers of each class's "
        "12-NN graph, loops alive after 2 hops); all runs: reproduced, some: partly, none: not reproduced", values)
    pairs = [(ds, depth[(ds, "relu")], depth[(ds, "tanh")]) for ds in sorted({k[0] for k in depth})
             if (ds, "relu") in depth and (ds, "tanh") in depth]
    parts2 = [f"{ds}: relu {r:.0%} vs tanh {t:.0%}".replace("inf%", "never") for ds, r, t in pairs]
    strictly = [r < t for _, r, t in pairs]
    if not pairs:
        verdict = UNMEASURED
    elif all(r <= t for _, r, t in pairs) and any(strictly):
        verdict = REPRODUCED
    elif any(strictly):
        verdict = PARTLY
    else:
        verdict = NOT
    f_b = Finding(
        "N2", experiment, "ReLU nets simplify topology faster (at shallower depth) than tanh nets.",
        "Naitzat et al.: ReLU reduces Betti numbers faster than tanh", "; ".join(parts2) or "no relu/tanh pairs",
        verdict, "per dataset: depth from which all classes are simple; reproduced: ReLU <= tanh on every dataset and "
        "< on at least one; partly: < on at least one; not reproduced: never earlier", {})
    return [f_a, f_b]


# ---------------------------------------------------------------- K1: depth correspondence (Kornblith et al.)

# Written before any run was compared (and fixed, like the rules above). 0.15 relative depth is
# 1.5 probe spacings at 10 probes, under half the ~0.33 mean gap of a uniformly random match.
DEPTH_GAP_MAX = 0.15
DEPTH_RANK_MIN = 0.7


def best_match_depths(cka: np.ndarray, depths_a, depths_b) -> dict[str, dict[str, float]]:
    """Per direction (``a_to_b``: for each layer of A the layer of B with the largest CKA, and
    ``b_to_a``), the mean |relative depth gap| to the match (``gap``), the same gap for a match
    drawn uniformly at random (``chance_gap``) and the Spearman correlation between a layer's depth
    and its match's depth (``rank``). ``cka``: (len(A), len(B)); depths in [0, 1]."""
    from scipy.stats import spearmanr

    M = np.asarray(cka, dtype=float)
    out = {}
    for key, S, d_from, d_to in (("a_to_b", M, depths_a, depths_b), ("b_to_a", M.T, depths_b, depths_a)):
        d_from, d_to = np.asarray(d_from, float), np.asarray(d_to, float)
        match = d_to[np.argmax(S, axis=1)]
        rank = spearmanr(d_from, match).statistic if np.ptp(match) > 0 and len(match) > 2 else float("nan")
        out[key] = {"gap": float(np.mean(np.abs(match - d_from))),
                    "chance_gap": float(np.mean(np.abs(d_to[None, :] - d_from[:, None]))),
                    "rank": float(rank), "match_depths": [float(x) for x in match]}
    return out


def check_depth_correspondence(pairs: dict[str, tuple[np.ndarray, list, list]], experiment: str,
                               fid: str = "K1") -> Finding:
    """Kornblith et al. (2019): across architectures, the layer of B most similar by linear CKA to a
    layer of A sits at a similar relative depth. ``pairs``: name -> (CKA matrix (len(A), len(B)),
    depths of A, depths of B)."""
    passed, parts, values = [], [], {}
    for name, (cka, da, db) in pairs.items():
        res = best_match_depths(cka, da, db)
        values[name] = res
        for key, r in res.items():
            ok = bool(r["gap"] <= DEPTH_GAP_MAX and np.isfinite(r["rank"]) and r["rank"] >= DEPTH_RANK_MIN)
            passed.append(ok)
            parts.append(f"{name} {key.replace('_to_', '->')}: mean gap {r['gap']:.2f} (chance {r['chance_gap']:.2f}), "
                         f"Spearman {r['rank']:.2f}")
    return Finding(
        fid, experiment, "Across architectures, the most CKA-similar layer of one network lies at a similar "
        "relative depth of the other (Kornblith et al. 2019).",
        "Kornblith et al. (ICML 2019): CKA finds corresponding layers at similar relative depth between CNNs "
        "of different depths and between plain and residual nets",
        "; ".join(parts) or "no pairs compared", _share_verdict(passed),
        f"per compared pair and direction (A->B: each layer of A matched to B's layer of largest linear CKA, and "
        f"B->A): mean |relative depth of the match - the layer's| <= {DEPTH_GAP_MAX} and Spearman correlation "
        f"of the two depths >= {DEPTH_RANK_MIN}; all directions: reproduced, some: partly, none: not reproduced",
        values)
