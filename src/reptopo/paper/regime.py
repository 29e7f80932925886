"""The training regime beside the verdicts: is each experiment in the paper's setting?

The paper studies well-trained networks, so a verdict only carries weight when the models behind
it are well trained and replicated. This module holds, per paper experiment, the paper's setting
(docs/paper-protocol.md) and the requirements the quick scale must meet (accuracy floors on the
test set, training seeds per configuration, the E4 zoo's size and spread), written down before
the runs they judge, like the rules of :mod:`reptopo.paper.findings`. :func:`check_regime` checks
them on an experiment's ``train_metrics.csv`` table (pure: a DataFrame in, a record out).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Floor:
    """Every run of ``experiment`` selected by ``model`` / ``dataset`` (a name prefix; None: any)
    reaches test accuracy >= ``floor``, and each of its configurations has >= ``seeds`` seeds."""

    experiment: str
    runs: str
    floor: float
    seeds: int = 3
    model: str | None = None
    dataset: str | None = None

    def select(self, train: pd.DataFrame) -> pd.DataFrame:
        keep = np.ones(len(train), dtype=bool)
        for column, prefix in (("model", self.model), ("dataset", self.dataset)):
            if prefix is not None:
                keep &= (train[column].astype(str).str.startswith(prefix).to_numpy() if column in train
                         else np.zeros(len(train), dtype=bool))
        return train[keep]


FLOORS: tuple[Floor, ...] = (
    Floor("e1", "Fashion-MNIST CNNs", 0.90, dataset="fashion_mnist"),
    Floor("e2", "Fashion-MNIST CNNs", 0.90, dataset="fashion_mnist"),
    Floor("e2", "MNIST-5k CNNs", 0.95, dataset="mnist_5k"),
    Floor("e3", "Fashion-MNIST CNNs, every activation", 0.90),
    Floor("e4", "every zoo model", 0.80, seeds=1),
    Floor("e5", "the attacked model, clean", 0.88),
    Floor("e7", "ViT", 0.85, model="vit"),
    Floor("e7", "fine-tuned MiniLM on Rotten Tomatoes (about a bag-of-words baseline)", 0.75, seeds=1,
          model="minilm"),
    Floor("naitzat", "all six nets", 0.97),
)

# E4: the paper's zoo is about 40 ResNet-32/56/110 "trained with different hyper-parameters",
# test accuracy 0.79-0.94. Ours: at least 12 models of at least 2 depths of one residual family,
# each trained to convergence under its setting, with a spread of test accuracy of at least 0.06.
ZOO = {"experiment": "e4", "min_models": 12, "min_depths": 2, "min_spread": 0.06}

PAPER_SETTING = {
    "e1": ("VGG-like and ResNet-like CNNs", "CIFAR-10", "trained to convergence (not reported)"),
    "e2": ("the E1 CNNs", "CIFAR-10, SVHN, a natural-image set", "trained to convergence (not reported)"),
    "e3": ("one CNN, six activations", "CIFAR-10", "trained to convergence (not reported)"),
    "e4": ("about 40 ResNet-32/56/110, varied hyper-parameters", "CIFAR-10", "0.79-0.94"),
    "e5": ("MobileNetV2", "CIFAR-10", "trained to convergence (not reported)"),
    "e7": ("ViT-like and BERT-like transformers", "images and text", "trained or fine-tuned (not reported)"),
    "naitzat": ("fully connected nets, ReLU and tanh", "D-I, D-II, D-III", "well-trained (about 1.0)"),
}


def _seed_counts(train: pd.DataFrame) -> pd.Series:
    cols = [c for c in ("label", "model", "dataset") if c in train]
    return train.groupby(cols, sort=True)["seed"].nunique() if cols and "seed" in train else pd.Series(dtype=int)


def check_regime(experiment: str, train: pd.DataFrame | None) -> dict:
    """The regime record of one experiment: the paper's setting, ours (models, datasets, test
    accuracy, seeds per configuration) and each requirement with what was measured and whether it
    is met. ``train``: the experiment's train_metrics.csv (run, label, seed, model, dataset,
    test_acc, ...)."""
    paper = PAPER_SETTING.get(experiment, ("-", "-", "-"))
    record = {"experiment": experiment, "paper_architecture": paper[0], "paper_data": paper[1],
              "paper_accuracy": paper[2], "checks": []}
    if train is None or not len(train) or "test_acc" not in train:
        record.update(models="-", datasets="-", accuracy="-", seeds="-", met=False)
        record["checks"].append({"requirement": "train metrics", "measured": "none found", "met": False})
        return record
    acc = train["test_acc"].astype(float)
    seeds = _seed_counts(train)
    record.update(models=", ".join(sorted(train["model"].astype(str).unique())) if "model" in train else "-",
                  datasets=", ".join(sorted(train["dataset"].astype(str).unique())) if "dataset" in train else "-",
                  accuracy=f"{acc.min():.3f}-{acc.max():.3f}",
                  seeds=(f"{seeds.min()}" if len(seeds) and seeds.min() == seeds.max() else
                         f"{seeds.min()}-{seeds.max()}" if len(seeds) else "-"))
    for floor in (f for f in FLOORS if f.experiment == experiment):
        sel = floor.select(train)
        if not len(sel):
            record["checks"].append({"requirement": f"{floor.runs}: test accuracy >= {floor.floor:.2f}",
                                     "measured": "no such runs", "met": False})
            continue
        low = sel.loc[sel["test_acc"].astype(float).idxmin()]
        record["checks"].append({
            "requirement": f"{floor.runs}: test accuracy >= {floor.floor:.2f}",
            "measured": f"lowest {float(low['test_acc']):.3f} ({low.get('label', low['run'])}, seed "
                        f"{low.get('seed', '-')}) of {len(sel)} runs", "met": bool(sel["test_acc"].min() >= floor.floor)})
        if floor.seeds > 1:
            n = _seed_counts(sel)
            record["checks"].append({"requirement": f"{floor.runs}: >= {floor.seeds} training seeds per configuration",
                                     "measured": f"{n.min() if len(n) else 0} to {n.max() if len(n) else 0} over "
                                                 f"{len(n)} configurations", "met": bool(len(n) and n.min() >= floor.seeds)})
    if experiment == ZOO["experiment"]:
        depths = train["model"].nunique() if "model" in train else 0
        spread = float(acc.max() - acc.min())
        record["checks"] += [
            {"requirement": f"zoo: >= {ZOO['min_models']} models", "measured": f"{len(train)}",
             "met": len(train) >= ZOO["min_models"]},
            {"requirement": f"zoo: >= {ZOO['min_depths']} depths of one residual family",
             "measured": ", ".join(sorted(train["model"].astype(str).unique())) if "model" in train else "-",
             "met": depths >= ZOO["min_depths"]},
            {"requirement": f"zoo: test accuracy spread >= {ZOO['min_spread']:.2f}",
             "measured": f"{spread:.3f} ({acc.min():.3f}-{acc.max():.3f})", "met": spread >= ZOO["min_spread"]},
        ]
    record["met"] = all(c["met"] for c in record["checks"])
    return record


def accuracy_by_config(train: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (label, model, dataset): seeds, mean and sd of test accuracy (n - 1), lowest."""
    cols = [c for c in ("label", "model", "dataset") if c in train]
    g = train.groupby(cols, sort=True)["test_acc"]
    out = g.agg(seeds="count", mean="mean", sd="std", lowest="min").reset_index()
    return out.assign(sd=out["sd"].fillna(0.0))
