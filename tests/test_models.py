"""Every model config composes, builds, runs a forward pass on each compatible dataset, and gives
its documented probes in depth order; the activation swap and the pretrained switch."""
from __future__ import annotations

import re

import pytest
import torch
from conftest import CONF, compose_cfg
from fakes import fake_cifar10
from torch import nn

from reptopo.datasets import load_dataset
from reptopo.runtime.errors import ReptopoError
from reptopo.nets import build_model, example_input
from reptopo.nets.vision import ACTIVATION_TYPES, GATE_NAMES, count_activations, replace_activations
from reptopo.probing.probes import select_probes
from reptopo.runtime.schema import validate_config

def model_args(name: str) -> list[str]:
    """Overrides that select model ``name``: ``resnet<depth>`` is the one CIFAR-ResNet config at that
    depth (resnet18 is timm's, and resnet_small a config of its own: the CIFAR ResNet-14)."""
    m = re.fullmatch(r"resnet(\d+)", name)
    if m and name != "resnet18":
        return ["model=cifar_resnet", f"model.kwargs.depth={m.group(1)}"]
    return [f"model={name}"]


IMAGE_MODELS = ["resnet20", "resnet32", "resnet56", "resnet110", "seresnet", "resnet18", "vgg11_bn", "mobilenetv2",
                "vit_tiny", "resnet_small", "vgg_small"]
# With probe=blocks: (number of probes, first, last inner block, logits).
DOCUMENTED_PROBES = {
    "resnet20": (11, "act1", "layer3.2", "fc"),
    "resnet32": (17, "act1", "layer3.4", "fc"),
    "resnet56": (29, "act1", "layer3.8", "fc"),
    "resnet110": (56, "act1", "layer3.17", "fc"),
    "seresnet": (11, "act1", "layer3.2", "fc"),
    "resnet18": (10, "act1", "layer4.1", "fc"),
    "resnet_small": (14, "act1", "layer3.1", "fc"),
    "vgg11_bn": (11, "features.2", "pre_logits.act2", "head.fc"),
    "vgg_small": (10, "features.2", "pre_logits.act2", "head.fc"),
    "mobilenetv2": (20, "bn1", "bn2", "classifier"),
    "vit_tiny": (7, "blocks.0", "blocks.5", "head"),
    "mlp": (9, "layers.0", "layers.7", "fc"),
    "bert_small": (5, "net.bert.encoder.layer.0", "net.bert.encoder.layer.3", "net.classifier"),
    "minilm": (7, "net.bert.encoder.layer.0", "net.bert.encoder.layer.5", "net.classifier"),
}
# Activation modules each CNN holds (what the swap must replace; SE gates excluded).
ACTIVATION_COUNTS = {
    "resnet20": 19, "resnet32": 31, "resnet56": 55, "resnet110": 109,  # stem + 2 per BasicBlock
    "seresnet": 28,  # stem + 9 blocks x (2 + the SE module's ReLU); 9 sigmoid gates kept
    "resnet18": 17, "resnet_small": 13, "vgg11_bn": 10, "vgg_small": 9, "mobilenetv2": 35,
}


def test_every_model_config_is_covered():
    names = {p.stem for p in (CONF / "model").glob("*.yaml")}
    covered = {"cifar_resnet" if model_args(m)[0] == "model=cifar_resnet" else m for m in DOCUMENTED_PROBES}
    assert names == covered


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One small real batch per compatible dataset kind (loaded once)."""
    root = tmp_path_factory.mktemp("data")
    fake_cifar10(root / "cifar", per_batch=4)
    out = {}
    for name, over in [("mnist_5k", []), ("cifar10", [f"data.root={root / 'cifar'}", "data.train_size=16",
                                                     "data.val_size=0", "data.test_size=4"]),
                       ("naitzat_d1", []), ("naitzat_d3", [])]:
        cfg = validate_config(compose_cfg(root, [f"data={name}", *over]))
        out[name] = load_dataset(cfg.data, seed=0)
    return out


@pytest.mark.parametrize("model", IMAGE_MODELS + ["mlp"])
def test_model_forward_and_probes_on_compatible_data(tmp_path, datasets, model):
    data_names = ["naitzat_d1", "naitzat_d3"] if model == "mlp" else ["mnist_5k", "cifar10"]
    n_probes, first, last_inner, logits = DOCUMENTED_PROBES[model]
    for data in data_names:
        cfg = validate_config(compose_cfg(tmp_path, [*model_args(model), f"data={data}", "probe=blocks"]))
        ds = datasets[data]
        torch.manual_seed(0)
        net = build_model(cfg.model, ds.in_chans, ds.num_classes, ds.img_size).eval()
        x = ds.train.x[:3]
        with torch.no_grad():
            out = net(x)
        assert out.shape == (3, ds.num_classes) and torch.isfinite(out).all()
        probes = select_probes(net, cfg.model, cfg.probe, example_input(ds.in_chans, ds.img_size))
        names = [p.name for p in probes]
        assert (len(names), names[0], names[-2], names[-1]) == (n_probes, first, last_inner, logits)
        assert [p.depth for p in probes] == pytest.approx([(i + 1) / n_probes for i in range(n_probes)])
        fired = []
        modules = dict(net.named_modules())
        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: fired.append(n)) for n in names]
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        assert fired == names  # depth order = order of outputs in a forward pass


@pytest.mark.parametrize("model", ["resnet32", "resnet56", "resnet110"])
def test_paper_probe_default_ten_evenly_spaced(tmp_path, model):
    cfg = validate_config(compose_cfg(tmp_path, [*model_args(model)]))
    net = build_model(cfg.model, 3, 10, 32)
    probes = select_probes(net, cfg.model, cfg.probe, example_input(3, 32))
    assert len(probes) == 10 and probes[0].name == "act1" and probes[-1].name == "fc"
    assert probes[-2].name == DOCUMENTED_PROBES[model][2]


def test_small_input_adaptations_keep_resolution(tmp_path):
    seen = {}
    for model, module in [("resnet18", "layer1.0"), ("mobilenetv2", "bn1"), ("resnet32", "layer1.0")]:
        cfg = validate_config(compose_cfg(tmp_path, [*model_args(model)]))
        net = build_model(cfg.model, 3, 10, 32).eval()
        h = dict(net.named_modules())[module].register_forward_hook(lambda m, i, o, k=model: seen.__setitem__(k, o.shape))
        net(torch.zeros(1, 3, 32, 32))
        h.remove()
    assert seen["resnet18"][-2:] == (32, 32) and seen["mobilenetv2"][-2:] == (32, 32)
    assert seen["resnet32"] == (1, 16, 32, 32)
    cfg = validate_config(compose_cfg(tmp_path, ["model=vit_tiny"]))
    vit = build_model(cfg.model, 1, 10, 28)
    assert vit.patch_embed.num_patches == 16 and vit.pos_embed.shape == (1, 17, 64)  # 7x7 patches, dim 64
    assert len(vit.blocks) == 6


@pytest.mark.parametrize("model", sorted(ACTIVATION_COUNTS))
def test_activation_swap_replaces_every_activation(tmp_path, model):
    cfg = validate_config(compose_cfg(tmp_path, [*model_args(model)]))
    net = build_model(cfg.model, 3, 10, 32)
    gates = [m for p in net.modules() for n, m in p.named_children() if n in GATE_NAMES]
    assert count_activations(net) == ACTIVATION_COUNTS[model]
    assert replace_activations(net, "tanh") == ACTIVATION_COUNTS[model]
    kinds = [type(m) for p in net.modules() for n, m in p.named_children()
             if isinstance(m, ACTIVATION_TYPES) and n not in GATE_NAMES]
    assert kinds == [nn.Tanh] * ACTIVATION_COUNTS[model]
    assert len(gates) == (9 if model == "seresnet" else 0)
    assert all(type(m).__name__ == "Sigmoid" for m in gates)  # SE gates are kept
    # Through the config (model.activation=silu): every activation is a SiLU and it still runs.
    cfg = validate_config(compose_cfg(tmp_path, [*model_args(model), "model.activation=silu"]))
    net = build_model(cfg.model, 1, 10, 28).eval()
    assert sum(isinstance(m, nn.SiLU) for m in net.modules()) == ACTIVATION_COUNTS[model]
    assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in net.modules())
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_activation_is_one_line(tmp_path):
    # Caught by the config check, before any model is built.
    with pytest.raises(ReptopoError, match=r"^config key model.activation: 'swish' is not one of: null, relu, "):
        validate_config(compose_cfg(tmp_path, [*model_args("resnet32"), "model.activation=swish"]))
    # The builder itself (for callers without a validated config) says the same thing.
    cfg = validate_config(compose_cfg(tmp_path, model_args("resnet32")))
    with pytest.raises(ReptopoError, match=r"model.activation='swish' is unknown; expected one of"):
        replace_activations(build_model(cfg.model, 1, 10, 28), "swish")


@pytest.mark.parametrize("model, arch", [("resnet18", "resnet18"), ("vit_tiny", "vit_tiny_patch16_224")])
def test_pretrained_without_hub_is_one_sentence(tmp_path, model, arch, monkeypatch):
    from reptopo.nets.hub import hub_reachable

    if hub_reachable():
        pytest.skip("the hub is reachable here: pretrained weights would download")
    cfg = validate_config(compose_cfg(tmp_path, [*model_args(model), "model.pretrained=true"]))
    with pytest.raises(ReptopoError) as info:
        build_model(cfg.model, 3, 10, 32)
    msg = str(info.value)
    assert f"weights of {arch!r}" in msg and "no network" in msg and "model.pretrained=false" in msg
    assert "\n" not in msg


def test_cifar_resnet_rejects_bad_depth_and_pretrained(tmp_path):
    cfg = validate_config(compose_cfg(tmp_path, [*model_args("resnet32"), "model.kwargs.depth=33"]))
    with pytest.raises(ReptopoError, match="depth 6n\\+2"):
        build_model(cfg.model, 3, 10, 32)
    cfg = validate_config(compose_cfg(tmp_path, [*model_args("resnet32"), "model.pretrained=true"]))
    with pytest.raises(ReptopoError, match="no hub weights for the CIFAR ResNets"):
        build_model(cfg.model, 3, 10, 32)


def test_cifar_resnet_parameter_counts(tmp_path):
    # He et al. (2016), Table 6: ResNet-32 0.46M, ResNet-56 0.85M, ResNet-110 1.7M parameters
    # (option-A shortcuts; ours are 1x1 convs, a few thousand more).
    for model, millions in [("resnet32", 0.46), ("resnet56", 0.85), ("resnet110", 1.7)]:
        cfg = validate_config(compose_cfg(tmp_path, [*model_args(model)]))
        n = sum(p.numel() for p in build_model(cfg.model, 3, 10, 32).parameters())
        assert abs(n / 1e6 - millions) / millions < 0.03, (model, n)


def test_default_model_keeps_small_inputs_resolution(tmp_path):
    # README: the probes of resnet_small on 28x28 Fashion-MNIST see these maps (then GAP).
    cfg = validate_config(compose_cfg(tmp_path, []))
    assert cfg.model.name == "resnet_small"
    net = build_model(cfg.model, 1, 10, 28).eval()
    shapes = {}
    for name in ("act1", "layer1.1", "layer2.1", "layer3.1"):
        dict(net.named_modules())[name].register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert shapes == {"act1": (16, 28, 28), "layer1.1": (16, 28, 28), "layer2.1": (32, 14, 14), "layer3.1": (64, 7, 7)}
    assert net.conv1.stride == (1, 1) and net.conv1.kernel_size == (3, 3)


@pytest.mark.parametrize("activation, gain", [("tanh", 5.0 / 3.0), ("relu", 2.0 ** 0.5)])
def test_mlp_glorot_init_has_the_activations_variance(activation, gain):
    # Glorot-uniform: Var(W) = gain^2 * 2 / (fan_in + fan_out); zero biases. PyTorch's default
    # (init="torch") is 1 / (3 fan_in), a ninth of tanh's at equal fans: deep tanh stacks shrink.
    from reptopo.nets.vision import MLP

    torch.manual_seed(0)
    net = MLP(3, 2, [256] * 4, activation, init="glorot")
    for block in list(net.layers)[1:]:
        assert block[0].weight.var().item() == pytest.approx(gain ** 2 * 2 / 512, rel=0.02)
        assert torch.count_nonzero(block[0].bias) == 0
    default = MLP(3, 2, [256] * 4, activation)
    assert default.layers[1][0].weight.var().item() == pytest.approx(1 / (3 * 256), rel=0.02)
    with pytest.raises(ReptopoError, match=r"^model.kwargs.init='he' is unknown; expected one of \['torch', 'glorot'\]$"):
        MLP(3, 2, [8], activation, init="he")


def test_vgg_small_head_is_sized_for_its_last_map(tmp_path):
    # conf/model/vgg_small.yaml: the ConvMlp head reads the 3x3 map after the third pool with a 3x3
    # conv (timm's default would pool it *up* to 7x7 for a 7x7 conv into 4096 units).
    cfg = validate_config(compose_cfg(tmp_path, ["model=vgg_small"]))
    net = build_model(cfg.model, 1, 10, 28).eval()
    seen = {}
    for name in ("features.23", "pre_logits.fc1", "pre_logits.act2"):
        dict(net.named_modules())[name].register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:])))
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert seen == {"features.23": (64, 3, 3), "pre_logits.fc1": (256, 1, 1), "pre_logits.act2": (256, 1, 1)}
    assert net.pre_logits.fc1.kernel_size == (3, 3) and net.head.fc.in_features == 256
    assert sum(p.numel() for p in net.parameters()) == 360074
    # timm's initialisation reached the new head too (N(0, 0.01) linears, zero biases).
    assert net.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.2) and not net.head.fc.bias.any()
    with pytest.raises(ReptopoError, match="model.kwargs.head_width=0"):
        bad = validate_config(compose_cfg(tmp_path, ["model=vgg_small", "model.kwargs.head_width=0"]))
        build_model(bad.model, 1, 10, 28)


@pytest.mark.parametrize("side", [1, 2, 3, 5])
def test_small_map_grouped_conv_equals_the_plain_conv(side):
    from reptopo.nets.vision import SmallMapConv2d, pad_small_grouped_convs

    torch.manual_seed(0)
    plain = nn.Conv2d(12, 12, 3, stride=2 if side == 5 else 1, padding=1, groups=12)
    fast = pad_small_grouped_convs(nn.Sequential(nn.Conv2d(12, 12, 3, stride=plain.stride, padding=1, groups=12)))[0]
    fast.load_state_dict(plain.state_dict())
    assert type(fast) is SmallMapConv2d and list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(4, 12, side, side, dtype=torch.float64)
    plain, fast = plain.double(), fast.double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = plain(xa), fast(xb)
    assert ya.shape == yb.shape and torch.allclose(ya, yb, rtol=0, atol=1e-12)
    ya.square().sum().backward()
    yb.square().sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-12) and torch.allclose(plain.weight.grad, fast.weight.grad, atol=1e-12)


def test_only_zero_padded_grouped_convs_take_the_small_map_path(tmp_path):
    from reptopo.nets.vision import SmallMapConv2d

    cfg = validate_config(compose_cfg(tmp_path, ["model=mobilenetv2"]))
    net = build_model(cfg.model, 1, 10, 28)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [m for m in convs if m.groups > 1]
    assert depthwise and all(type(m) is SmallMapConv2d for m in depthwise)  # MobileNetV2's 17 depthwise convs
    assert len(depthwise) == 17 and all(type(m) is nn.Conv2d for m in convs if m.groups == 1)
    cfg = validate_config(compose_cfg(tmp_path, ["model=resnet_small"]))
    assert not any(type(m) is SmallMapConv2d for m in build_model(cfg.model, 1, 10, 28).modules())
