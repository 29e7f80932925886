"""The paper-finding checks: verdicts computed from numbers, on tables with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reptopo.paper import findings as fnd


def curves(rows: dict[str, dict[str, list[float]]], **const) -> pd.DataFrame:
    """A summary table: run -> {column: values per probe}."""
    out = []
    for run, cols in rows.items():
        n = len(next(iter(cols.values())))
        for i in range(n):
            out.append({"run": run, "label": const.get("labels", {}).get(run, run), "layer_index": i,
                        "layer": f"l{i}", "depth": (i + 1) / n, **{c: v[i] for c, v in cols.items()},
                        **{k: v[run] for k, v in const.items() if k != "labels"}})
    return pd.DataFrame(out)


def test_collapse_verdicts():
    falls = {"L0_local": [100, 120, 110, 5], "L1_local": [3, 4, 3, 0.1]}
    flat = {"L0_local": [100, 120, 110, 90], "L1_local": [3, 4, 3, 3]}
    assert fnd.check_collapse(curves({"a": falls, "b": falls}), "e1").verdict == fnd.REPRODUCED
    assert fnd.check_collapse(curves({"a": falls, "b": flat}), "e1").verdict == fnd.PARTLY
    f = fnd.check_collapse(curves({"a": flat}), "e1")
    assert f.verdict == fnd.NOT and f.values["a"]["L0_logits_over_max"] == pytest.approx(90 / 120)


def test_rise_and_fall_verdicts():
    hunch = {"phdim": [12, 18, 15, 9, 3]}
    assert fnd.check_rise_fall(curves({"a": hunch}), "e1").verdict == fnd.REPRODUCED
    v = fnd.check_rise_fall(curves({"a": hunch}), "e1").values["a"]
    assert (v["first"], v["peak"], v["peak_depth"], v["last"]) == (12, 18, 0.4, 3)
    assert fnd.check_rise_fall(curves({"a": {"phdim": [18, 15, 9, 3]}}), "e1").verdict == fnd.NOT  # falls only
    assert fnd.check_rise_fall(curves({"a": {"phdim": [3, 9, 15, 18]}}), "e1").verdict == fnd.NOT  # rises only


def test_activation_ordering():
    depth = np.linspace(0.1, 1, 10)
    early = np.array([10, 16, 8, 5, 4, 3, 3, 3, 3, 3.0])   # falls half way by the 3rd probe
    late = np.array([10, 12, 14, 16, 15, 14, 12, 8, 5, 3.0])  # by the 8th
    assert fnd.simplification_depth(depth, early) == pytest.approx(0.3)
    assert fnd.simplification_depth(depth, late) == pytest.approx(0.8)
    rows = {a: {"phdim": list(early if a in ("relu", "silu") else late)} for a in ("relu", "silu", "tanh", "sigmoid")}
    assert fnd.check_activations(curves(rows), "e3").verdict == fnd.REPRODUCED
    swapped = {a: {"phdim": list(late if a in ("relu", "silu") else early)} for a in rows}
    assert fnd.check_activations(curves(swapped), "e3").verdict == fnd.NOT
    assert fnd.check_activations(curves({"relu": rows["relu"]}), "e3").verdict == fnd.UNMEASURED


def test_generalization_correlation_and_bootstrap():
    rng = np.random.default_rng(0)
    acc = np.linspace(0.6, 0.9, 12)
    zoo = pd.DataFrame({"run": [f"m{i}" for i in range(12)], "L0_class": 10 - 8 * acc + rng.normal(0, 0.1, 12),
                        "L1_class": rng.random(12), "test_acc": acc})
    f = fnd.check_generalization(zoo, n_boot=500)
    c = f.values["L0"]
    from scipy import stats

    assert c["pearson"] == pytest.approx(stats.pearsonr(zoo.L0_class, zoo.test_acc)[0])
    assert c["spearman"] == pytest.approx(stats.spearmanr(zoo.L0_class, zoo.test_acc)[0])
    assert c["pearson"] < -0.9 and c["pearson_lo"] <= c["pearson"] <= c["pearson_hi"] < 0
    assert f.verdict == fnd.REPRODUCED
    pos = zoo.assign(L0_class=2 + 8 * acc)
    assert fnd.check_generalization(pos, n_boot=200).verdict == fnd.NOT
    # Same seed, same interval.
    assert fnd.bootstrap_ci(acc, zoo.L0_class.to_numpy(), lambda a, b: float(np.corrcoef(a, b)[0, 1]), 300, seed=3) == \
        fnd.bootstrap_ci(acc, zoo.L0_class.to_numpy(), lambda a, b: float(np.corrcoef(a, b)[0, 1]), 300, seed=3)
    # The zoo in another order (its rows follow run names, which follow the code): the same numbers.
    shuffled = zoo.iloc[rng.permutation(12)].assign(run=[f"x{i}" for i in range(12)])
    assert fnd.check_generalization(shuffled, n_boot=500).values == f.values


def test_adversarial_and_datasets():
    eps = [0.0, 0.01, 0.03, 0.05]
    f1 = [0.9, 0.7, 0.4, 0.2]
    rows = {f"r{i}": {"L1_global": [1.0 * (1 + f1[i]), 0.5 * (1 + f1[i]), 0.1 * (1 + f1[i])]} for i in range(4)}
    attacks = pd.DataFrame({"run": list(rows), "eps": eps, "macro_f1": f1})
    f = fnd.check_adversarial(curves(rows), attacks)
    assert f.verdict == fnd.REPRODUCED and all(v == pytest.approx(1.0) for v in f.values.values())
    inverted = {r: {"L1_global": [1 / v for v in c["L1_global"]]} for r, c in rows.items()}
    assert fnd.check_adversarial(curves(inverted), attacks).verdict == fnd.NOT

    hard = {"L0_local": [100, 95, 90, 5]}
    easy = {"L0_local": [100, 50, 20, 5]}
    summary = curves({"m-hard": hard, "m-easy": easy}, model={"m-hard": "m", "m-easy": "m"},
                     dataset={"m-hard": "cifar", "m-easy": "svhn"})
    train = pd.DataFrame({"run": ["m-hard", "m-easy"], "test_acc": [0.7, 0.95]})
    f = fnd.check_datasets(summary, train)
    assert f.verdict == fnd.REPRODUCED
    assert f.values["m"]["cifar"]["retained_L0"] == pytest.approx(95 / 100)
    assert fnd.check_datasets(summary, train.assign(test_acc=[0.95, 0.7])).verdict == fnd.NOT


def test_naitzat_simple_depth_and_relu_vs_tanh():
    def cb(run, per_layer):  # per_layer: [(b0 class0, b1 class0, b0 class1, b1 class1), ...]
        rows = []
        for i, (a0, a1, c0, c1) in enumerate(per_layer):
            d = (i + 1) / len(per_layer)
            rows += [{"run": run, "layer_index": i, "depth": d, "class": 0, "betti_0": a0, "betti_1": a1},
                     {"run": run, "layer_index": i, "depth": d, "class": 1, "betti_0": c0, "betti_1": c1}]
        return pd.DataFrame(rows)

    relu = cb("relu", [(9, 0, 1, 9), (3, 0, 1, 2), (1, 0, 1, 0), (1, 0, 1, 0)])
    tanh = cb("tanh", [(9, 0, 1, 9), (5, 0, 1, 4), (1, 0, 1, 1), (1, 0, 1, 0)])
    flicker = cb("x", [(1, 0, 1, 0), (2, 0, 1, 0), (1, 0, 1, 0), (1, 0, 1, 1)])
    assert fnd.simple_depth(relu) == 0.75 and fnd.simple_depth(tanh) == 1.0 and fnd.simple_depth(flicker) == np.inf
    summary = pd.DataFrame({"run": ["relu", "tanh"], "label": ["relu", "tanh"], "dataset": ["d1", "d1"]})
    train = pd.DataFrame({"run": ["relu", "tanh"], "test_acc": [0.99, 0.97]})
    n1, n2 = fnd.check_naitzat(pd.concat([relu, tanh]), summary, train)
    assert n1.verdict == fnd.REPRODUCED and n2.verdict == fnd.REPRODUCED
    # A net that is not well trained does not count for N1.
    n1, _ = fnd.check_naitzat(pd.concat([relu, tanh.assign(run="tanh")]), summary,
                              train.assign(test_acc=[0.99, 0.6]))
    assert "well-trained" in n1.rule and n1.verdict == fnd.REPRODUCED


def test_naitzat_leaves_under_trained_nets_out_of_n1():
    """Known answer: one well-trained net that simplifies and one under-trained net (test_acc below
    WELL_TRAINED) that never does. N1 counts the well-trained one only: reproduced. Counting the
    under-trained one too would make it partly; with only the under-trained net, not measured."""
    def cb(run, per_layer):  # per_layer: [(b0, b1) of each of two classes, ...]
        return pd.DataFrame([{"run": run, "layer_index": i, "depth": (i + 1) / len(per_layer), "class": c,
                              "betti_0": b0, "betti_1": b1}
                             for i, layer in enumerate(per_layer) for c, (b0, b1) in enumerate(layer)])

    good = cb("good", [((4, 2), (3, 1)), ((1, 0), (1, 0)), ((1, 0), (1, 0))])    # simple from depth 2/3
    poor = cb("poor", [((4, 2), (3, 1)), ((3, 1), (2, 1)), ((2, 0), (1, 1))])    # never simple
    assert fnd.simple_depth(good) == pytest.approx(2 / 3) and fnd.simple_depth(poor) == np.inf
    summary = pd.DataFrame({"run": ["good", "poor"], "label": ["relu", "tanh"], "dataset": ["d1", "d1"]})
    low = fnd.WELL_TRAINED - 0.3
    train = pd.DataFrame({"run": ["good", "poor"], "test_acc": [0.99, low]})

    n1, n2 = fnd.check_naitzat(pd.concat([good, poor]), summary, train)
    assert n1.verdict == fnd.REPRODUCED  # would be PARTLY if `poor` counted
    assert n1.values == {"d1 relu": {"simple_from_depth": pytest.approx(2 / 3), "test_acc": 0.99},
                         "d1 tanh": {"simple_from_depth": np.inf, "test_acc": pytest.approx(low)}}
    assert n2.verdict == fnd.REPRODUCED  # N2 compares depths whatever the accuracy
    # The threshold itself: the same net at exactly WELL_TRAINED counts, and then N1 is only partly.
    n1, _ = fnd.check_naitzat(pd.concat([good, poor]), summary, train.assign(test_acc=[0.99, fnd.WELL_TRAINED]))
    assert n1.verdict == fnd.PARTLY
    # Only under-trained nets: nothing to judge (not "not reproduced"); a run missing from the
    # training table (no accuracy) does not count either.
    n1, _ = fnd.check_naitzat(poor, summary, train)
    assert n1.verdict == fnd.UNMEASURED
    n1, _ = fnd.check_naitzat(pd.concat([good, poor]), summary, train[train.run == "good"])
    assert n1.verdict == fnd.REPRODUCED


def _cka_peaked(depths_a, depths_b, shift=0.0, width=0.1):
    """A CKA-like matrix whose row maxima sit at B's layer nearest depth_a + shift."""
    da, db = np.asarray(depths_a)[:, None], np.asarray(depths_b)[None, :]
    return np.exp(-((db - np.clip(da + shift, 0, 1)) ** 2) / width**2)


def test_depth_correspondence_known_answers():
    d10 = [(i + 1) / 10 for i in range(10)]
    d6 = [(i + 1) / 6 for i in range(6)]
    # Layers matched at the same relative depth (different depths: 10 vs 6 probes): reproduced.
    f = fnd.check_depth_correspondence({"ab": (_cka_peaked(d10, d6), d10, d6)}, "e1")
    assert f.verdict == fnd.REPRODUCED and f.id == "K1"
    a_to_b = f.values["ab"]["a_to_b"]
    # Independent count: each of A's depths to the nearest of B's sixths.
    want = np.mean([min(abs(x - y) for y in d6) for x in d10])
    assert a_to_b["gap"] == pytest.approx(want) and a_to_b["rank"] == pytest.approx(1.0, abs=0.05)
    # The chance gap of 10 evenly spaced depths matched at random: E|U - V| over the grid = 0.33.
    assert fnd.check_depth_correspondence({"aa": (np.eye(10), d10, d10)}, "e1").values["aa"]["a_to_b"]["chance_gap"] \
        == pytest.approx(0.33)
    # Everything most similar to B's last layer: gap 0.45, no rank order -> not reproduced.
    flat = np.tile(np.linspace(0.1, 1.0, 10), (10, 1))
    g = fnd.check_depth_correspondence({"flat": (flat, d10, d10)}, "e1")
    assert g.verdict == fnd.NOT and g.values["flat"]["a_to_b"]["gap"] == pytest.approx(0.45)
    # A match shifted by 0.2 relative depth: ordered but too far (gap > 0.15) in both directions.
    h = fnd.check_depth_correspondence({"shift": (_cka_peaked(d10, d10, 0.2, 0.05), d10, d10)}, "e1")
    assert h.verdict == fnd.NOT and h.values["shift"]["a_to_b"]["rank"] > 0.9
    # One pair matched, one reversed: partly.
    rev = np.eye(10)[::-1]
    k = fnd.check_depth_correspondence({"ok": (np.eye(10), d10, d10), "rev": (rev, d10, d10)}, "e1")
    assert k.verdict == fnd.PARTLY and k.values["rev"]["b_to_a"]["rank"] == pytest.approx(-1.0)
    assert fnd.check_depth_correspondence({}, "e1").verdict == fnd.UNMEASURED
