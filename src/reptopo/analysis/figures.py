"""Figures for the homology and aggregate stages: functions that take arrays/DataFrames and
return matplotlib Figures (saving is the caller's job)."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _seeded(sub: pd.DataFrame) -> bool:
    return "seed" in sub and sub["seed"].nunique() > 1


def _curve(ax, sub: pd.DataFrame, metric: str, label: str, color=None):
    """One curve of ``metric`` vs depth. With several training seeds (column ``seed``): each seed
    thin, their mean bold, and a band of +- 1 standard deviation over the seeds (n - 1)."""
    if not _seeded(sub):
        (line,) = ax.plot(sub["depth"], sub[metric], "o-", lw=2, ms=4, label=label, color=color)
        return line
    stats = sub.groupby("depth", sort=True)[metric].agg(["mean", "std", "count"]).reset_index()
    (line,) = ax.plot(stats["depth"], stats["mean"], "o-", lw=2.4, ms=4, color=color,
                      label=f"{label} (mean of {int(stats['count'].max())} seeds)")
    for _, one in sub.groupby("seed", sort=True):
        ax.plot(one["depth"], one[metric], "-", lw=0.8, alpha=0.45, color=line.get_color())
    sd = stats["std"].fillna(0)
    ax.fill_between(stats["depth"], stats["mean"] - sd, stats["mean"] + sd, alpha=0.18, color=line.get_color(), lw=0)
    return line


def depth_curves(df: pd.DataFrame, metric: str, ylabel: str, title: str, group: str = "run"):
    """``metric`` vs relative depth, one curve per ``group`` (columns: group, depth, metric, and
    optionally seed: several seeds of a group give thin lines, a bold mean and a +- 1 sd band; a
    single run's ``<metric>_std`` column, e.g. PHdim over subsample repeats, gives a band)."""
    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    for name, sub in df.sort_values("depth").groupby(group, sort=True):
        line = _curve(ax, sub, metric, str(name))
        if not _seeded(sub) and f"{metric}_std" in sub and sub[f"{metric}_std"].fillna(0).gt(0).any():
            ax.fill_between(sub["depth"], sub[metric] - sub[f"{metric}_std"], sub[metric] + sub[f"{metric}_std"],
                            alpha=0.2, color=line.get_color())
    ax.set_xlabel("relative depth (probe i of K at (i+1)/K; 1 = logits)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def lifespans_panel(df: pd.DataFrame, title: str, group: str = "run"):
    """L_0 and L_1 (local and global) vs depth in a 2x2 grid, one curve per ``group`` (seeds as in
    :func:`depth_curves`)."""
    cols = [("L0_local", "L_0 local (class mean)"), ("L1_local", "L_1 local (class mean)"),
            ("L0_global", "L_0 global"), ("L1_global", "L_1 global")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    for ax, (col, label) in zip(axes.ravel(), cols):
        for name, sub in df.sort_values("depth").groupby(group, sort=True):
            _curve(ax, sub, col, str(name))
        ax.set_title(label)
        ax.set_xlabel("relative depth")
        ax.set_xlim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def betti_curves_figure(grid: np.ndarray, curves: np.ndarray, layer_names: Sequence[str], title: str):
    """Betti curves per layer: ``curves`` (L, maxdim+1, G) on ``grid`` (G,), colour = depth."""
    n_dims = curves.shape[1]
    fig, axes = plt.subplots(1, n_dims, figsize=(5.5 * n_dims, 4), constrained_layout=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 1, len(layer_names)))
    for k in range(n_dims):
        ax = axes[0, k]
        for i, name in enumerate(layer_names):
            ax.plot(grid, curves[i, k], color=colors[i], lw=1.6, label=name)
        ax.set_xlabel("filtration value (MinMax-scaled distance)")
        ax.set_ylabel(f"betti_{k}")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(f"H{k}")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, title="layer (shallow to deep)", loc="upper right")
    fig.suptitle(title)
    return fig


def diagrams_figure(diagrams: Sequence[Sequence[np.ndarray]], layer_names: Sequence[str], title: str):
    """Persistence diagrams (H0 and H1 overlaid) for each layer, finite bars only."""
    n = len(layer_names)
    cols = min(5, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, dgms, name in zip(axes.ravel(), diagrams, layer_names):
        top = 0.0
        for k, dgm in enumerate(dgms):
            fin = dgm[np.isfinite(dgm[:, 1])]
            if len(fin):
                ax.scatter(fin[:, 0], fin[:, 1], s=4, alpha=0.6, label=f"H{k}")
                top = max(top, float(fin[:, 1].max()))
        ax.plot([0, top], [0, top], "k--", lw=0.6)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(title)
    return fig


def phdim_fit_figure(fits: Sequence, layer_names: Sequence[str], title: str):
    """log E(n) vs log n with the least-squares line, one panel line per layer."""
    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    colors = plt.cm.viridis(np.linspace(0, 1, len(layer_names)))
    for fit, name, c in zip(fits, layer_names, colors):
        n = np.asarray(fit.sizes, dtype=float)
        e = np.asarray(fit.E, dtype=float).mean(axis=1)
        ax.loglog(n, e, "o", color=c, ms=3)
        ax.loglog(n, np.exp(fit.intercept) * n ** fit.slope, "-", color=c, lw=1, label=f"{name}: {fit.dim:.2f}")
    ax.set_xlabel("subsample size n")
    ax.set_ylabel("E(n) = total MST length")
    ax.set_title(title)
    ax.legend(fontsize=7, title="layer: PHdim")
    return fig


def zoo_scatter(zoo: pd.DataFrame, corr: dict, title: str):
    """E4: L_0 and L_1 of one class's logits (x) vs test accuracy (y), one point per model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, k in zip(axes, (0, 1)):
        ax.scatter(zoo[f"L{k}_class"], zoo["test_acc"], s=30)
        c = corr.get(f"L{k}", {})
        if c:
            ax.set_title(f"L_{k}: Pearson {c['pearson']:.2f} [{c['pearson_lo']:.2f}, {c['pearson_hi']:.2f}], "
                         f"Spearman {c['spearman']:.2f}", fontsize=9)
        ax.set_xlabel(f"L_{k} of the class manifold at the logits (MinMax-scaled)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def attack_curves(df: pd.DataFrame, column: str, title: str):
    """E5: ``column`` per layer vs attack eps (one line per layer, colour = depth) and macro-F1 vs eps."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    layers = df.drop_duplicates("layer_index").sort_values("layer_index")
    colors = plt.cm.viridis(np.linspace(0, 1, len(layers)))
    for color, (_, row) in zip(colors, layers.iterrows()):
        sub = df[df["layer_index"] == row["layer_index"]].sort_values("eps")
        axes[0].plot(sub["eps"], sub[column], "o-", color=color, ms=3, label=row["layer"])
    axes[0].set_xlabel("eps (L-inf, pixel units)")
    axes[0].set_ylabel(column.replace("_", " "))
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=6, title="layer")
    f1 = df.drop_duplicates("run").sort_values("eps")
    axes[1].plot(f1["eps"], f1["macro_f1"], "o-", label="macro-F1 vs true labels")
    axes[1].plot(f1["eps"], f1["target_rate"], "s--", label="share classified as target")
    axes[1].set_xlabel("eps (L-inf, pixel units)")
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def class_betti_figure(cb: pd.DataFrame, title: str):
    """Naitzat: per-class Betti numbers vs depth, one panel per (dataset, activation) run."""
    runs = sorted(cb["curve"].unique())
    ks = sorted(int(c.split("_")[1]) for c in cb.columns if c.startswith("betti_"))
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.4), constrained_layout=True, squeeze=False)
    for ax, name in zip(axes[0], runs):
        sub = cb[cb["curve"] == name]
        for (c, k), style in zip([(c, k) for c in sorted(sub["class"].unique()) for k in ks],
                                 ["o-", "s--", "^-", "v--", "d-", "x--"]):
            d = sub[sub["class"] == c].sort_values("depth")
            ax.plot(d["depth"], d[f"betti_{k}"], style, ms=3, label=f"class {c}: beta_{k}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("relative depth")
        ax.set_yscale("symlog", linthresh=1)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("Betti number")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def save(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def heatmap_figure(matrix: pd.DataFrame, title: str, label: str):
    """A layer x layer matrix (rows: run A's layers, columns: run B's) as a heatmap."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * matrix.shape[1], 1.0 + 0.4 * matrix.shape[0]),
                           constrained_layout=True)
    im = ax.imshow(matrix.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in matrix.index], fontsize=7)
    ax.set_xlabel("run B layer")
    ax.set_ylabel("run A layer")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label=label)
    return fig


def diagonal_profile_figure(diagonal: pd.DataFrame, measures: Sequence[str], title: str):
    """Each measure at the same relative depth, against run A's depth."""
    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    for m in measures:
        ax.plot(diagonal["depth_a"], diagonal[m], "o-", lw=2, ms=4, label=m)
    ax.set_xlabel("relative depth of run A's layer (run B: the layer at the nearest depth)")
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
