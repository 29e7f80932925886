"""The train stage's Lightning loop against a plain PyTorch loop: images per second, same model.

Run from the repository root, on an otherwise idle machine::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_train.py          # ~4 min on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/bench_train.py --quick  # ~1 min

For each model (``conf/model/<name>.yaml``, built by ``reptopo.nets.build_model`` for 1 x 28 x 28
inputs and 10 classes) both loops train a fresh copy with the same seed on the same tensors
(random images, Fashion-MNIST's shape; throughput does not depend on the pixels), the same batch
size, optimiser (AdamW), cosine schedule, deterministic algorithms, thread count and memory
layout (``--layout``; default: the stage's, ``train.channels_last`` of ``conf/train/default.yaml``):

- **reference**: ``for x, y in loader``: forward, cross-entropy, backward, step, where ``loader`` is
  the stage's ``reptopo.nets.lightning.batch_loader`` (one gather per batch; the same batches as a
  per-item ``DataLoader(TensorDataset)``, which costs the MLP about 0.8 ms of its ~3 ms step);
- **ours**: ``reptopo.stages.train.fit``'s set-up: :class:`reptopo.nets.lightning.Classifier` in a
  ``pl.Trainer`` with the stage's options (loss and accuracy summed on the device, logged once per
  epoch; the tqdm progress bar, redrawn at most twice a second), no validation loader; for the MLP
  the Naitzat experiment's ``train.steps_per_call`` (an epoch's minibatches in one Lightning batch).

Each loop runs once untimed (warm-up: allocator, oneDNN kernels) and then ``--repeats`` times
alternating; the best time counts. The overhead is ``ours / reference - 1`` in time; the issue's
bound is 10 %. This is a script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
from _table import run_rows
from torch.nn import functional as F


# The point-cloud MLP (Naitzat et al.) trains on 3-d points in 2 classes; the rest on 1 x 28 x 28 images.
POINT_MODELS = ("mlp",)


def _model(name: str):
    from omegaconf import OmegaConf

    from reptopo.nets import build_model

    cfg = OmegaConf.load(os.path.join("conf", "model", f"{name}.yaml"))
    if name in POINT_MODELS:
        return build_model(cfg, in_chans=3, num_classes=2, img_size=0)
    return build_model(cfg, in_chans=1, num_classes=10, img_size=28)


def _data(n: int, name: str = ""):
    g = torch.Generator().manual_seed(0)
    if name in POINT_MODELS:
        return torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _loader(x, y, batch: int, seed: int = 0, steps_per_call: int = 1):
    from reptopo.nets.lightning import batch_loader

    return batch_loader((x, y), batch, shuffle=True, generator=torch.Generator().manual_seed(seed),
                        steps_per_call=steps_per_call)


def _steps_per_call(name: str) -> int:
    """train.steps_per_call as the stage runs the model: the Naitzat experiment's for the MLP, else
    conf/train/default.yaml's."""
    from omegaconf import OmegaConf

    default = int(OmegaConf.load("conf/train/default.yaml").steps_per_call)
    if name in POINT_MODELS:
        exp = OmegaConf.load("conf/experiment/naitzat_quick.yaml")
        return int(OmegaConf.select(exp, "train.steps_per_call", default=default))
    return default


def _naitzat_recipe() -> tuple[int, int, int]:
    """(training points, batch size, epochs) of the Naitzat experiment's nets."""
    from omegaconf import OmegaConf

    exp = OmegaConf.load("conf/experiment/naitzat_quick.yaml")
    return int(exp.data.train_size), int(exp.train.batch_size), int(exp.train.max_epochs)


def _stage_layout() -> str:
    from omegaconf import OmegaConf

    return "channels_last" if OmegaConf.load("conf/train/default.yaml").channels_last else "nchw"


def plain_loop(name: str, x, y, batch: int, epochs: int, lr: float = 2e-3, layout: str = "nchw",
               precision: str = "32-true") -> float:
    torch.manual_seed(0)
    model = _model(name)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    loader = _loader(x, y, batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            if xb.ndim == 4:
                xb = xb.contiguous(memory_format=fmt)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - t0


def lightning_loop(name: str, x, y, batch: int, epochs: int, lr: float = 2e-3, layout: str = "nchw",
                   precision: str = "32-true", steps_per_call: int = 1) -> float:
    import logging

    import pytorch_lightning as pl

    from reptopo.nets.lightning import Classifier, EpochProgressBar, HistoryCallback

    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    torch.manual_seed(0)
    steps_per_epoch = -(-len(y) // batch)
    module = Classifier(_model(name), "adamw", lr, 5e-4, "cosine", augment=None,
                        channels_last=layout == "channels_last",
                        steps_per_epoch=steps_per_epoch if steps_per_call > 1 else None)
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, deterministic=True, logger=False, precision=precision,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[HistoryCallback(), EpochProgressBar(refresh_rate=10)],
        default_root_dir="/tmp/reptopo-bench-train",
    )
    loader = _loader(x, y, batch, steps_per_call=steps_per_call)
    t0 = time.perf_counter()
    trainer.fit(module, loader)
    return time.perf_counter() - t0


def bench(name: str, n: int, batch: int, epochs: int, repeats: int, layout: str, precision: str) -> dict:
    x, y = _data(n, name)
    opts = {"layout": layout, "precision": precision}
    group = _steps_per_call(name)
    plain_loop(name, x[: batch * 4], y[: batch * 4], batch, 1, **opts)  # warm-up
    lightning_loop(name, x[: batch * 4], y[: batch * 4], batch, 1, **opts, steps_per_call=group)
    t_ref = t_ours = float("inf")
    for _ in range(repeats):
        t_ref = min(t_ref, plain_loop(name, x, y, batch, epochs, **opts))
        t_ours = min(t_ours, lightning_loop(name, x, y, batch, epochs, **opts, steps_per_call=group))
    images = n * epochs
    unit = "points" if name in POINT_MODELS else "images"
    setting = "" if name in POINT_MODELS else f" {'NHWC' if layout == 'channels_last' else 'NCHW'}"
    setting += f" steps_per_call={group}" if group > 1 else ""
    return {
        "task": f"{name}{setting} {precision} N={n} b={batch} x{epochs}",
        "ref_name": "plain PyTorch loop",
        "t_ref": t_ref,
        "t_ours": t_ours,
        "extra": (f"{unit}/s: plain {images / t_ref:.0f}, Lightning {images / t_ours:.0f}; "
                  f"Lightning overhead {100 * (t_ours / t_ref - 1):+.1f} % (bound: 10 %)"),
    }


def main(argv: list[str] | None = None) -> None:
    from reptopo.runtime.choices import allowed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each loop, interleaved; the best counts")
    parser.add_argument("--batch", type=int, default=256, help="the quick scale's train.batch_size")
    parser.add_argument("--layout", choices=["channels_last", "nchw"], default=None,
                        help="memory layout of both loops (default: the stage's train.channels_last)")
    parser.add_argument("--precision", choices=allowed("train.precision"), default="32-true",
                        help="train.precision of both loops (bf16-mixed: autocast to bfloat16)")
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)  # as the stage (deterministic=True) does
    from reptopo.runtime.threads import limit_threads

    threads = limit_threads()
    torch.set_flush_denormal(True)  # as the stage does
    layout = args.layout or _stage_layout()
    n = 2048 if args.quick else 6000
    models = ["vgg_small", "resnet_small"] + ([] if args.quick else ["mobilenetv2"])
    # The Naitzat MLP as its experiment trains it (conf/experiment/naitzat_quick.yaml: 3000 points,
    # batches of 512, 300 epochs of 6 steps), where the per-step and per-epoch cost of the loop itself
    # shows (the CNNs' steps are 100x longer).
    point_rows = [] if args.quick else [("mlp", *_naitzat_recipe())]
    print(f"# torch {torch.__version__}, {threads} threads; {platform.python_version()} on {sys.platform}")
    rows = [(m, n, args.batch, 1) for m in models] + point_rows
    run_rows("reptopo train benchmark: Lightning (the train stage) vs a plain loop",
             (lambda r=r: bench(*r, args.repeats, layout, args.precision) for r in rows), task_width=50)


if __name__ == "__main__":
    main()
