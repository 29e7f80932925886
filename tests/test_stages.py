"""Stages driven through the compose API on a tiny real run (digits): outputs, determinism, errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import compose_cfg, TINY
from reptopo import topology
from reptopo.stages import activations, aggregate, homology
from reptopo.runtime.errors import ReptopoError


def test_train_writes_checkpoint_and_metrics(trained_digits):
    root, cfg, metrics, _ = trained_digits
    out = root / "data/train" / cfg.run_name
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "model.json", "metrics.json", "history.json", "_stage.json"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads((root / "data/metrics" / cfg.run_name / "train.json").read_text())
    assert 0.0 <= saved["test_acc"] <= 1.0 and saved["n_parameters"] == 174_970  # resnet_small (ResNet-14), 1 channel
    # No temp folders are left next to the output.
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_activations_metadata(trained_digits):
    root, cfg, _, meta = trained_digits
    out = root / "data/activations" / cfg.run_name
    assert [l["name"] for l in meta["layers"]] == ["act1", "layer3.1", "fc"]
    assert [l["depth"] for l in meta["layers"]] == pytest.approx([1 / 3, 2 / 3, 1])
    assert [l["pooling"] for l in meta["layers"]] == ["gap", "gap", "none"]
    # The stem keeps the input's resolution (3x3 stride 1, no max-pool): 8x8 digits stay 8x8.
    assert meta["layers"][0]["output_shape"] == [16, 8, 8]
    assert meta["layers"][1]["output_shape"] == [64, 2, 2]  # layer3.1: two stride-2 stages, 8 -> 2
    labels, idx = np.load(out / "labels.npy"), np.load(out / "indices.npy")
    assert labels.shape == idx.shape == (200,) and len(set(idx)) == 200
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(load_digits().target[idx], labels)
    assert json.loads((out / "meta.json").read_text())["n_samples"] == 200


def test_activations_are_deterministic(trained_digits, tmp_path):
    root, cfg, _, _ = trained_digits
    again = compose_cfg(root, [*TINY, "run_name=repeat", f"paths.train_dir={root}/data/train/{cfg.run_name}",
                               "tracking=none"])
    activations.run(again)
    a, b = root / "data/activations" / cfg.run_name, root / "data/activations/repeat"
    for f in ("layer_00.npy", "layer_01.npy", "layer_02.npy", "labels.npy"):
        assert np.array_equal(np.load(a / f), np.load(b / f)), f


def test_homology_matches_the_engine_and_is_deterministic(trained_digits):
    root, cfg, _, _ = trained_digits
    summary = homology.run(cfg)
    out = root / "data/homology" / cfg.run_name
    X = np.load(root / "data/activations" / cfg.run_name / "layer_01.npy").astype(np.float64)
    labels = np.load(root / "data/activations" / cfg.run_name / "labels.npy")
    # The stage's numbers are the engine's numbers on the same cloud.
    ph = topology.phdim(X, n_start=60, n_step=30, n_repeats=3, seed=cfg.seed)
    assert summary.loc[1, "phdim"] == pytest.approx(ph.dim, rel=1e-9)
    l_local = topology.lifespans_sum(X, [0, 1], labels=labels, max_per_class=50)
    assert summary.loc[1, ["L0_local", "L1_local"]].tolist() == pytest.approx(list(l_local), rel=1e-9)
    # Depth order and the Betti grid.
    assert summary["layer"].tolist() == ["act1", "layer3.1", "fc"]
    grid = json.loads((out / "grid.json").read_text())
    assert grid["num"] == 20 and grid["values"][0] == 0.0
    with np.load(out / "diagrams.npz") as d:
        assert np.isinf(d["layer_00_h0"][:, 1]).sum() == 1
        assert grid["stop"] == pytest.approx(max(np.max(d[k][np.isfinite(d[k][:, 1]), 1]) for k in d.files))
    points = pd.read_csv(out / "phdim_points.csv")
    assert sorted(points["n"].unique()) == [60, 90, 120, 150, 180]
    # Same activations and seed: bit-identical results.
    first = pd.read_csv(out / "summary.csv")
    homology.run(cfg)
    pd.testing.assert_frame_equal(first, pd.read_csv(out / "summary.csv"), check_exact=True)


def test_aggregate_tables_and_report(trained_digits):
    root, cfg, _, _ = trained_digits
    if not (root / "data/homology" / cfg.run_name).is_dir():
        homology.run(cfg)
    summary = aggregate.run(cfg)
    reports = root / "reports/tiny"
    assert set(summary["run"]) == {cfg.run_name}
    assert (reports / "tables/report.md").read_text().count("resnet_small-digits") >= 2
    assert {p.name for p in (reports / "figures").iterdir()} >= {"phdim_vs_depth.png", "lifespans_vs_depth.png"}
    with pytest.raises(ReptopoError, match=r"aggregate.runs names run\(s\) \['nope'\]"):
        aggregate.run(compose_cfg(root, [*TINY, "aggregate.runs=[nope]", "tracking=none"]))


def test_bf16_mixed_precision_trains_in_bfloat16_and_repeats_per_seed(tmp_path):
    """train.precision=bf16-mixed runs the training forward passes in bfloat16 (fp32 weights): the
    same seed gives the same weights twice, and other weights than 32-true."""
    import torch

    from reptopo.datasets import load_dataset
    from reptopo.nets import build_model
    from reptopo.stages.train import fit

    def train(precision: str):
        cfg = compose_cfg(tmp_path / precision, [*TINY, f"train.precision={precision}"])
        torch.manual_seed(int(cfg.seed))
        ds = load_dataset(cfg.data, cfg.seed)
        model = build_model(cfg.model, ds.in_chans, ds.num_classes, ds.img_size)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        dtypes = set()
        conv.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype) if m.training else None)
        model, _ = fit(cfg, model, ds, tmp_path / precision)
        return dtypes, torch.cat([p.detach().flatten() for p in model.parameters()])

    d32, w32 = train("32-true")
    d16, w16 = train("bf16-mixed")
    _, w16_again = train("bf16-mixed")
    assert d32 == {torch.float32} and d16 == {torch.bfloat16}
    assert w16.dtype == torch.float32 and torch.equal(w16, w16_again)
    assert not torch.allclose(w16, w32, atol=1e-4)


def test_batch_loader_yields_the_batches_of_a_tensordataset_loader():
    """The train stage's loader (one gather per batch) gives the batches, in the order, of the
    per-item DataLoader(TensorDataset) it replaced, epoch after epoch, for the same seed: so the
    trained weights are unchanged."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from reptopo.nets.lightning import batch_loader

    x, y = torch.randn(103, 3, 4, 4), torch.arange(103)
    ours = batch_loader((x, y), 16, shuffle=True, generator=torch.Generator().manual_seed(5))
    ref = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(5))
    assert len(ours) == len(ref) == 7
    for _ in range(3):  # each epoch draws a new permutation from the generator
        pairs = list(zip(ours, ref, strict=True))
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in pairs)
    assert not torch.equal(next(iter(ours))[1], torch.arange(16))  # shuffled
    plain = [b[1] for b in batch_loader((x, y), 50)]
    assert [len(b) for b in plain] == [50, 50, 3] and torch.equal(torch.cat(plain), y)


@pytest.mark.parametrize("optimizer, scheduler, precision", [("adamw", "onecycle", "32-true"), ("sgd", "cosine", "32-true"),
                                                          ("adamw", None, "32-true"), ("sgd", "onecycle", "bf16-mixed")])
def test_classifier_steps_as_lightning_automatic_optimisation(tmp_path, optimizer, scheduler, precision):
    """Classifier writes its step out (manual optimisation, for speed); the weights after 3 epochs
    with a per-step schedule equal, bitwise, those of Lightning's automatic optimisation (the
    loss returned from training_step), in full and in bf16 mixed precision, and the progress bar shows the epoch's running means."""
    import pytorch_lightning as pl
    import torch

    from reptopo.nets.lightning import Classifier, EpochProgressBar, batch_loader

    class Automatic(Classifier):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.automatic_optimization = True

        def training_step(self, batch, batch_idx):
            return self._step(batch, "train")

    def train(cls):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                  torch.nn.Linear(4 * 4 * 4, 3))
        module = cls(net, optimizer, 0.05, 1e-3, scheduler, channels_last=True)
        bar = EpochProgressBar()
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
                             precision=precision, callbacks=[bar], default_root_dir=str(tmp_path))
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(40, 1, 6, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
        trainer.fit(module, batch_loader((x, y), 8, shuffle=True, generator=g), batch_loader((x[:9], y[:9]), 4))
        return module, bar.get_metrics(trainer, module), trainer.global_step

    ours, shown, steps = train(Classifier)
    ref, _, ref_steps = train(Automatic)
    assert ours.automatic_optimization is False and steps == ref_steps == 15
    state, ref_state = ours.model.state_dict(), ref.model.state_dict()
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    torch.manual_seed(0)
    assert not torch.equal(state["0.weight"], torch.nn.Conv2d(1, 4, 3).weight)  # it trained
    assert set(shown) >= {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert shown["train_loss"] == pytest.approx(ours.epoch_metrics()["train_loss"], abs=1e-4)


@pytest.mark.parametrize("scheduler, augment", [("onecycle", None), ("cosine", "crop")])
def test_grouped_minibatches_make_the_same_updates(tmp_path, scheduler, augment):
    """train.steps_per_call: k minibatches per Lightning batch (the last group of an epoch short)
    give bitwise the weights, schedule, optimizer step count and history of one per batch, with
    the plain backward/step and through Lightning's wrappers."""
    import pytorch_lightning as pl
    import torch

    from reptopo.nets.lightning import Classifier, EpochProgressBar, HistoryCallback, batch_loader

    class ThroughLightning(Classifier):  # Lightning's manual_backward and optimizer wrapper
        def on_fit_start(self):
            self._plain_steps = False

    def train(steps_per_call, cls=Classifier):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                  torch.nn.Linear(4 * 4 * 4, 3))
        # 44 rows in batches of 8: 6 minibatches an epoch, in groups of 4 + 2 when grouped.
        module = cls(net, "adamw", 0.05, 1e-3, scheduler, augment=augment,
                     steps_per_epoch=6 if steps_per_call > 1 else None)
        history = HistoryCallback()
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
                             callbacks=[history, EpochProgressBar()], default_root_dir=str(tmp_path))
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(44, 1, 6, 6, generator=g), torch.randint(0, 3, (44,), generator=g)
        loader = batch_loader((x, y), 8, shuffle=True, generator=g, steps_per_call=steps_per_call)
        trainer.fit(module, loader, batch_loader((x[:9], y[:9]), 4))
        lr = module.lr_schedulers().get_last_lr()[0]
        return module.model.state_dict(), trainer.global_step, history.epochs, lr, len(loader)

    state, steps, history, lr, batches = train(1)
    for cls in (Classifier, ThroughLightning):
        g_state, g_steps, g_history, g_lr, g_batches = train(4, cls)
        assert (batches, g_batches) == (6, 2)
        assert steps == g_steps == 18
        assert all(torch.equal(state[k], g_state[k]) for k in state)
        assert g_history == history and len(history) == 3
        assert g_lr == lr and lr < 0.05 / 50  # the whole schedule ran: annealed to its end


def test_grouped_loader_yields_the_same_minibatches_in_order():
    import torch

    from reptopo.nets.lightning import batch_loader

    x, y = torch.arange(23).float()[:, None], torch.arange(23)
    flat = [b for b in batch_loader((x, y), 5, shuffle=True, generator=torch.Generator().manual_seed(3))]
    groups = list(batch_loader((x, y), 5, shuffle=True, generator=torch.Generator().manual_seed(3), steps_per_call=2))
    assert [len(g) for g in groups] == [2, 2, 1]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(flat, [m for g in groups for m in g]))
    assert sorted(torch.cat([b[1] for b in flat]).tolist()) == list(range(23))


def test_history_holds_example_weighted_epoch_means(tmp_path):
    """history.json's train/val loss and accuracy per epoch are means over examples (the last,
    short batch weighs by its size): at lr 0 the model is fixed, so they equal one evaluation of it."""
    import pytorch_lightning as pl
    import torch

    from reptopo.nets.lightning import Classifier, HistoryCallback, batch_loader, evaluate

    torch.manual_seed(0)
    x, y = torch.randn(30, 5), torch.randint(0, 3, (30,))
    xv, yv = torch.randn(11, 5), torch.randint(0, 3, (11,))
    net = torch.nn.Sequential(torch.nn.Linear(5, 3))
    history = HistoryCallback()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[history], default_root_dir=str(tmp_path))
    trainer.fit(Classifier(net, "adamw", 0.0, 0.0, None), batch_loader((x, y), 7, shuffle=True,
                generator=torch.Generator().manual_seed(0)), batch_loader((xv, yv), 4))
    train, val = evaluate(net, x, y), evaluate(net, xv, yv)
    assert len(history.epochs) == 2
    for row in history.epochs:
        assert set(row) == {"train_loss", "train_acc", "val_loss", "val_acc"}
        assert row["train_acc"] == pytest.approx(train["acc"], abs=1e-12)
        assert row["train_loss"] == pytest.approx(train["loss"], rel=1e-6)
        assert row["val_acc"] == pytest.approx(val["acc"], abs=1e-12)
        assert row["val_loss"] == pytest.approx(val["loss"], rel=1e-6)
