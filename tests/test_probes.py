"""Probes resolve to real modules in depth order; hooks pool as documented."""
from __future__ import annotations

import pytest
import torch

from conftest import compose_cfg
from reptopo.runtime.errors import ReptopoError
from reptopo.nets import build_model, example_input
from reptopo.probing.probes import ActivationRecorder, pool_output, select_probes


@pytest.mark.parametrize("model, expected_first, expected_last", [
    ("resnet_small", "act1", "fc"),
    ("vgg_small", "features.2", "head.fc"),
])
def test_default_models_give_ten_probes_in_depth_order(tmp_path, model, expected_first, expected_last):
    cfg = compose_cfg(tmp_path, [f"model={model}"])
    net = build_model(cfg.model, 1, 10, 28)
    probes = select_probes(net, cfg.model, cfg.probe, example_input(1, 28))
    names = [p.name for p in probes]
    assert len(probes) == 10
    assert names[0] == expected_first and names[-1] == expected_last
    assert [p.depth for p in probes] == pytest.approx([(i + 1) / 10 for i in range(10)])
    # Depth order = the order outputs are produced in a forward pass.
    seen = []
    hooks = [dict(net.named_modules())[n].register_forward_hook(lambda m, i, o, n=n: seen.append(n)) for n in names]
    net.eval()
    net(example_input(1, 28))
    for h in hooks:
        h.remove()
    assert seen == names


def test_resnet_blocks_cover_every_residual_block(tmp_path):
    cfg = compose_cfg(tmp_path, ["probe.strategy=blocks"])
    net = build_model(cfg.model, 1, 10, 28)
    names = [p.name for p in select_probes(net, cfg.model, cfg.probe, example_input(1, 28))]
    assert names == ["act1", "layer1.0.act1", "layer1.0", "layer1.1.act1", "layer1.1", "layer2.0.act1", "layer2.0",
                     "layer2.1.act1", "layer2.1", "layer3.0.act1", "layer3.0", "layer3.1.act1", "layer3.1", "fc"]


def test_probe_naming_missing_layer(tmp_path):
    cfg = compose_cfg(tmp_path, ["probe.strategy=names", "probe.layers=[layer1.0,layer9.9]"])
    net = build_model(cfg.model, 1, 10, 28)
    with pytest.raises(ReptopoError, match=r"\['layer9.9'\].*resnet_small.*lacks"):
        select_probes(net, cfg.model, cfg.probe, example_input(1, 28))


def test_too_many_probes_requested(tmp_path):
    cfg = compose_cfg(tmp_path, ["probe.num=40"])
    net = build_model(cfg.model, 1, 10, 28)
    with pytest.raises(ReptopoError, match="probe.num=40 but model 'resnet_small' has only 13 block outputs"):
        select_probes(net, cfg.model, cfg.probe, example_input(1, 28))


def test_pooling_rules():
    conv = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert torch.equal(pool_output(conv), conv.mean(dim=(2, 3)))
    tokens = torch.randn(2, 4, 5)
    assert torch.equal(pool_output(tokens, "cls"), tokens[:, 0])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = pool_output((tokens,), "mean", mask)
    assert torch.allclose(pooled[0], tokens[0, :2].mean(0)) and torch.allclose(pooled[1], tokens[1].mean(0))


def test_recorder_pools_inside_hook(tmp_path):
    cfg = compose_cfg(tmp_path, [])
    net = build_model(cfg.model, 1, 10, 28).eval()
    probes = select_probes(net, cfg.model, cfg.probe, example_input(1, 28))
    got = {}
    with torch.no_grad(), ActivationRecorder(net, probes, lambda p, t: got.setdefault(p.name, t)):
        logits = net(torch.randn(3, 1, 28, 28))
    assert all(t.dim() == 2 and t.shape[0] == 3 for t in got.values())
    assert got["layer3.1"].shape[1] == 64  # resnet_small: widths 16/32/64
    assert torch.allclose(got["fc"], logits)
    # Hooks are removed on exit.
    assert all(len(m._forward_hooks) == 0 for m in net.modules())
