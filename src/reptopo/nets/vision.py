"""Vision and point-cloud networks: timm CNNs and ViTs adapted to small inputs, CIFAR ResNets,
MLPs, and the activation swap (``replace_activations`` swaps every activation module in place).

Each builder returns a plain ``nn.Module`` whose forward maps a batch to (N, num_classes) logits:
images (N, C, H, W) for the CNN/ViT families, points (N, D) for ``mlp``.

Families:
- ``timm``: ``timm.create_model(arch, ...)``; with ``small_input: true`` the stem is adapted to
  28x28 / 32x32 inputs (ResNet-like: 3x3 stride-1 ``conv1`` and no ``maxpool``; EfficientNet-like
  such as mobilenetv2: stride-1 ``conv_stem``; ViT: ``img_size`` set to the data's size, and
  ``patch_size`` from ``kwargs``).
- ``timm_vgg``: timm's ``VGG`` class with a custom layer ``cfg`` (a VGG-11-BN with 4 pools fits
  28x28).
- ``cifar_resnet``: He et al.'s CIFAR ResNet-(6n+2) built from timm's ``BasicBlock`` (3 stages of
  16/32/64 channels, 3x3 stem; ``kwargs.depth`` 20/32/56/110; ``kwargs.attn_layer: se`` for
  SE-ResNet). Shortcuts that change shape are 1x1 conv + BN (option B).
- ``mlp``: fully connected net (``kwargs.hidden`` widths) for ``kind: points`` data.
- text encoders (``hf_bert`` / ``hf_pretrained``) live in :mod:`reptopo.nets.text`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reptopo.nets.hub import hub_error, hub_offline_when_unreachable, looks_like_network_error
from reptopo.runtime.errors import ReptopoError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}
# Module types counted as activations (probing "activation outputs", swapping).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU, nn.LeakyReLU, nn.Hardswish, nn.Mish,
)
try:  # timm's own activation modules (what create_act_layer may return)
    from timm.layers import activations as _timm_act

    ACTIVATION_TYPES += tuple(
        getattr(_timm_act, n) for n in ("Swish", "Mish", "Sigmoid", "Tanh", "GELU", "HardSwish", "HardSigmoid",
                                        "HardMish", "QuickGELU", "GELUTanh")
        if isinstance(getattr(_timm_act, n, None), type)
    )
except ImportError:  # pragma: no cover
    pass
# Children with these names are gates (squeeze-excitation sigmoid), part of the block's structure
# rather than its nonlinearity: the activation swap leaves them alone.
GATE_NAMES = frozenset({"gate"})

_NORM_LAYERS = {"batchnorm": nn.BatchNorm2d, None: None}


def plain(obj: Any) -> Any:
    """OmegaConf containers -> plain Python (timm rejects ListConfig in some arguments)."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(obj):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return obj


class CifarResNet(nn.Module):
    """CIFAR-style ResNet-(6n+2) from timm's ``BasicBlock``: names follow timm's ResNet
    (``conv1``, ``bn1``, ``act1``, ``layer{1,2,3}.{i}``, ``global_pool``, ``fc``)."""

    def __init__(self, depth: int = 32, in_chans: int = 3, num_classes: int = 10,
                 channels: tuple[int, ...] = (16, 32, 64), attn_layer: str | None = None) -> None:
        super().__init__()
        from timm.layers import SelectAdaptivePool2d, get_attn
        from timm.models.resnet import BasicBlock, make_blocks

        if (depth - 2) % 6 or depth < 8:
            raise ReptopoError(f"model.kwargs.depth={depth}; a CIFAR ResNet has depth 6n+2 (20, 32, 56, 110)")
        n = (depth - 2) // 6
        channels = tuple(int(c) for c in channels)
        self.conv1 = nn.Conv2d(in_chans, channels[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.act1 = nn.ReLU(inplace=True)
        stages, _ = make_blocks(
            (BasicBlock,) * len(channels), channels, (n,) * len(channels), channels[0],
            act_layer=nn.ReLU, norm_layer=nn.BatchNorm2d,
            attn_layer=get_attn(attn_layer) if attn_layer else None,
        )
        for name, stage in stages:
            self.add_module(name, stage)
        self.stage_names = [name for name, _ in stages]
        self.global_pool = SelectAdaptivePool2d(pool_type="avg", flatten=True)
        self.num_features = channels[-1]
        self.fc = nn.Linear(channels[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(self.global_pool(x))


# Glorot gains per nonlinearity (torch.nn.init.calculate_gain); the ReLU family's for the rest.
_GLOROT_GAIN = {"tanh": 5.0 / 3.0, "sigmoid": 1.0}
MLP_INITS = ("torch", "glorot")


class MLP(nn.Module):
    """Fully connected classifier for point clouds: ``layers.{i}`` = Linear + activation, ``fc``.

    ``init``: ``torch`` (PyTorch's default, uniform with variance 1/(3 fan_in)), or ``glorot``
    (Glorot-uniform scaled by the activation's gain, zero biases): deep tanh stacks keep their
    signal and gradients at unit scale instead of shrinking layer by layer."""

    def __init__(self, in_features: int, num_classes: int, hidden: list[int], activation: str = "relu",
                 init: str = "torch") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ReptopoError(f"model.activation={activation!r} is unknown; expected one of {sorted(ACTIVATIONS)}")
        if init not in MLP_INITS:
            raise ReptopoError(f"model.kwargs.init={init!r} is unknown; expected one of {list(MLP_INITS)}")
        blocks, width = [], in_features
        for h in hidden:
            blocks.append(nn.Sequential(nn.Linear(width, int(h)), ACTIVATIONS[activation]()))
            width = int(h)
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, num_classes)
        if init == "glorot":
            gain = _GLOROT_GAIN.get(activation, 2.0 ** 0.5)
            for block in self.layers:
                nn.init.xavier_uniform_(block[0].weight, gain=gain)
                nn.init.zeros_(block[0].bias)
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(x))


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that pads explicitly when a grouped conv's input is smaller than its kernel.

    PyTorch's CPU backend leaves oneDNN for such shapes (MobileNetV2's 3x3 depthwise convs on its
    last 2x2 maps) and loops over the groups one slow convolution at a time: 57 ms for one backward
    at batch 256 and 480 channels against 2.4 ms padded (benchmarks/README.md). Zero padding is the
    same arithmetic either way, so the outputs are equal; every other call is ``nn.Conv2d``'s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        if x.shape[-2] < kh or x.shape[-1] < kw:
            ph, pw = self.padding
            x = torch.nn.functional.pad(x, (pw, pw, ph, ph))
            return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return super().forward(x)


def pad_small_grouped_convs(model: nn.Module) -> nn.Module:
    """Make every grouped ``nn.Conv2d`` with zero padding a :class:`SmallMapConv2d` (in place: same
    parameters, names and state dict); returns ``model``."""
    for module in model.modules():
        if (type(module) is nn.Conv2d and module.groups > 1 and module.padding_mode == "zeros"
                and isinstance(module.padding, tuple) and any(module.padding)):
            module.__class__ = SmallMapConv2d
    return model


def _adapt_small_input(model: nn.Module, in_chans: int) -> None:
    """Remove the early downsampling of an ImageNet stem so 28x28 / 32x32 inputs keep resolution."""
    if hasattr(model, "conv1") and hasattr(model, "maxpool") and isinstance(model.conv1, nn.Conv2d):
        out = model.conv1.out_channels
        model.conv1 = nn.Conv2d(in_chans, out, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif hasattr(model, "conv_stem") and isinstance(model.conv_stem, nn.Conv2d):
        model.conv_stem.stride = (1, 1)
    # ViTs get img_size/patch_size at construction (see build_model).


def build_timm(model_cfg, kwargs: dict, in_chans: int, num_classes: int, img_size: int) -> nn.Module:
    import timm

    if "channels" in kwargs:
        kwargs["channels"] = tuple(kwargs["channels"])
    small = bool(model_cfg.get("small_input", False))
    if small and str(model_cfg.arch).startswith(("vit", "deit")):
        kwargs.setdefault("img_size", img_size)
    pretrained = bool(model_cfg.get("pretrained", False))
    try:
        if pretrained:
            with hub_offline_when_unreachable():
                model = timm.create_model(model_cfg.arch, pretrained=True, in_chans=in_chans,
                                          num_classes=num_classes, **kwargs)
        else:
            model = timm.create_model(model_cfg.arch, pretrained=False, in_chans=in_chans,
                                      num_classes=num_classes, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ReptopoError(f"model.arch={model_cfg.arch!r} is not a timm architecture") from None
        if model_cfg.get("pretrained") and looks_like_network_error(exc):
            raise hub_error(model_cfg.arch, exc) from None
        raise
    except Exception as exc:  # hub unreachable for pretrained=True (OSError, requests/httpx errors, ...)
        if model_cfg.get("pretrained") and looks_like_network_error(exc):
            raise hub_error(model_cfg.arch, exc) from None
        raise
    if small:
        _adapt_small_input(model, in_chans)
    return model


def build_vgg(kwargs: dict, in_chans: int, num_classes: int) -> nn.Module:
    """timm's ``VGG`` with a custom layer ``kwargs["cfg"]`` and ``kwargs["norm_layer"]`` (batchnorm or null).

    timm's head is a ``ConvMlp`` of width 4096 whose 7x7 ``fc1`` runs on the last map average-pooled
    *up* to 7x7. ``kwargs["head_width"]`` (with ``head_kernel``, the last map's side) sizes it for
    small inputs instead: ``fc1`` a ``head_kernel`` conv to ``head_width * mlp_ratio`` channels,
    ``fc2`` 1x1 to ``head_width``, then the classifier (module names as timm's)."""
    from timm.layers import ClassifierHead
    from timm.models.vgg import VGG, ConvMlp

    norm = kwargs.pop("norm_layer", None)
    if norm not in _NORM_LAYERS:
        raise ReptopoError(f"model.kwargs.norm_layer={norm!r}; expected one of batchnorm or null")
    head_width, head_kernel = kwargs.pop("head_width", None), kwargs.pop("head_kernel", 7)
    model = VGG(cfg=list(kwargs.pop("cfg")), num_classes=num_classes, in_chans=in_chans,
                norm_layer=_NORM_LAYERS[norm], **kwargs)
    if head_width is not None:
        if int(head_width) < 1 or int(head_kernel) < 1:
            raise ReptopoError(f"model.kwargs.head_width={head_width!r}, head_kernel={head_kernel!r}; "
                               "expected positive integers")
        model.pre_logits = ConvMlp(model.num_features, int(head_width), int(head_kernel),
                                   mlp_ratio=kwargs.get("mlp_ratio", 1.0), drop_rate=kwargs.get("drop_rate", 0.0))
        model.head = ClassifierHead(int(head_width), num_classes, pool_type=kwargs.get("global_pool", "avg"),
                                    drop_rate=kwargs.get("drop_rate", 0.0))
        model.head_hidden_size = int(head_width)
        model._initialize_weights()  # timm's init (Kaiming convs, BN 1/0, N(0, 0.01) linears) for the new head too
    return model


def count_activations(model: nn.Module) -> int:
    """Activation modules that ``replace_activations`` would swap (gates excluded)."""
    return sum(
        1 for parent in model.modules() for child_name, child in parent.named_children()
        if isinstance(child, ACTIVATION_TYPES) and child_name not in GATE_NAMES
    )


def replace_activations(model: nn.Module, name: str) -> int:
    """Replace every activation module of ``model`` by ``name``; returns how many were replaced.

    Squeeze-excitation gates (children named ``gate``) are kept: they are a sigmoid by design.
    """
    if name not in ACTIVATIONS:
        raise ReptopoError(f"model.activation={name!r} is unknown; expected one of {sorted(ACTIVATIONS)}")
    new_type = ACTIVATIONS[name]
    count = 0
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, ACTIVATION_TYPES) and child_name not in GATE_NAMES:
                setattr(parent, child_name, new_type())
                count += 1
    return count


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def example_input(in_chans: int, img_size: int, batch: int = 2) -> torch.Tensor:
    """A deterministic dummy batch, for tracing the execution order of modules.

    ``img_size == 0`` means point data: (batch, in_chans) vectors.
    """
    if not img_size:
        return torch.zeros(batch, in_chans)
    return torch.zeros(batch, in_chans, img_size, img_size)
