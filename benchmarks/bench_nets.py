"""What the quick scale's nets cost per training step: two fixes against what they replaced.

Run from the repository root, on an otherwise idle machine::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_nets.py          # ~2 min on 2 cores

Rows (forward + cross-entropy + backward + AdamW step, batch 256 of 1 x 28 x 28, channels-last,
``--threads`` threads, best of ``--repeats`` timed blocks of ``--steps`` steps after a warm-up):

- **depthwise 3x3 conv at side s** (s = 1, 2, 3, 4; 480 channels, padding 1): ``nn.Conv2d`` against
  :class:`reptopo.nets.vision.SmallMapConv2d`, which pads explicitly when the map is smaller than the
  kernel. PyTorch's CPU backend leaves oneDNN for those shapes and runs one slow convolution per
  group; the two are the same arithmetic (tests/test_models.py).
- **mobilenetv2** (``conf/model/mobilenetv2.yaml``): the net with plain ``nn.Conv2d`` against the
  net as ``build_model`` returns it (its 2x2 stage's depthwise convs padded explicitly).
- **vgg_small**: the earlier 2.0M-parameter VGG-style CNN (convs 16-16/32-32/64-64-64, timm's
  4096-wide ConvMlp head, whose 7x7 ``fc1`` reads the 3x3 map pooled up to 7x7) against
  ``conf/model/vgg_small.yaml`` (convs 16/32-32/64-64/64-64, a 256-wide head with a 3x3 ``fc1``).

This is a script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _table import run_rows
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

OLD_VGG = {"cfg": [16, 16, "M", 32, 32, "M", 64, 64, 64, "M"], "mlp_ratio": 0.0625, "norm_layer": "batchnorm"}


def _best_step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, steps: int, repeats: int) -> float:
    """Seconds per training step (best block); ``y`` None: the loss is the output's squared sum."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        out = model(x)
        loss = F.cross_entropy(out, y) if y is not None else out.square().sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def _net(name: str, kwargs: dict | None = None, plain_convs: bool = False) -> nn.Module:
    from reptopo.nets import build_model
    from reptopo.nets.vision import SmallMapConv2d

    cfg = OmegaConf.load(os.path.join("conf", "model", f"{name}.yaml"))
    if kwargs is not None:
        cfg.kwargs = kwargs
    torch.manual_seed(0)
    model = build_model(cfg, in_chans=1, num_classes=10, img_size=28)
    if plain_convs:
        for m in model.modules():
            if type(m) is SmallMapConv2d:
                m.__class__ = nn.Conv2d
    return model.to(memory_format=torch.channels_last).train()


def _images(batch: int):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=g).contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, 10, (batch,), generator=g)


def depthwise_case(side: int, batch: int, steps: int, repeats: int):
    def case() -> dict:
        from reptopo.nets.vision import pad_small_grouped_convs

        torch.manual_seed(0)
        plain = nn.Conv2d(480, 480, 3, padding=1, groups=480).to(memory_format=torch.channels_last)
        ours = pad_small_grouped_convs(nn.Sequential(nn.Conv2d(480, 480, 3, padding=1, groups=480)))
        ours = ours.to(memory_format=torch.channels_last)
        x = torch.randn(batch, 480, side, side).contiguous(memory_format=torch.channels_last)
        t_ref = _best_step_seconds(plain, x, None, steps, repeats)
        t_ours = _best_step_seconds(ours, x, None, steps, repeats)
        return {"task": f"depthwise 3x3, {side}x{side}, 480 ch", "ref_name": "nn.Conv2d", "t_ref": t_ref,
                "t_ours": t_ours, "extra": f"ms per step: {1e3 * t_ref:.1f} -> {1e3 * t_ours:.1f}"}
    return case


def net_case(task: str, ref_name: str, make_ref, make_ours, batch: int, steps: int, repeats: int):
    def case() -> dict:
        x, y = _images(batch)
        ref, ours = make_ref(), make_ours()
        t_ref = _best_step_seconds(ref, x, y, steps, repeats)
        t_ours = _best_step_seconds(ours, x, y, steps, repeats)
        n_ref, n_ours = (sum(p.numel() for p in m.parameters()) for m in (ref, ours))
        return {"task": task, "ref_name": ref_name, "t_ref": t_ref, "t_ours": t_ours,
                "extra": f"images/s {batch / t_ref:.0f} -> {batch / t_ours:.0f}; parameters {n_ref} -> {n_ours}"}
    return case


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    b, s, r = args.batch, args.steps, args.repeats
    cases = [depthwise_case(side, b, s, r) for side in (1, 2, 3, 4)]
    cases.append(net_case("mobilenetv2 (width 0.5)", "plain nn.Conv2d", lambda: _net("mobilenetv2", plain_convs=True),
                          lambda: _net("mobilenetv2"), b, s, r))
    cases.append(net_case("vgg_small", "2.0M VGG, timm head", lambda: _net("vgg_small", OLD_VGG),
                          lambda: _net("vgg_small"), b, s, r))
    run_rows(f"training step, batch {b}, {args.threads} threads, channels-last", cases, task_width=28)


if __name__ == "__main__":
    main()
