"""Model construction from ``conf/model/*``: timm CNNs adapted to small inputs.

``build_model`` returns a plain ``nn.Module`` whose forward maps (N, C, H, W) inputs to
(N, num_classes) logits; ``replace_activations`` swaps every activation module in place.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reptopo.errors import ReptopoError

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

_NORM_LAYERS = {"batchnorm": nn.BatchNorm2d, None: None}


def _plain(obj: Any) -> Any:
    """OmegaConf containers -> plain Python (timm rejects ListConfig in some arguments)."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(obj):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return obj


def build_model(model_cfg, in_chans: int, num_classes: int, img_size: int) -> nn.Module:
    """Build the network described by ``model_cfg`` (see conf/model/*.yaml)."""
    family = model_cfg.family
    kwargs = dict(_plain(model_cfg.get("kwargs")) or {})
    if family == "timm":
        import timm

        if "channels" in kwargs:
            kwargs["channels"] = tuple(kwargs["channels"])
        try:
            model = timm.create_model(
                model_cfg.arch,
                pretrained=bool(model_cfg.get("pretrained", False)),
                in_chans=in_chans,
                num_classes=num_classes,
                **kwargs,
            )
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise ReptopoError(f"model.arch={model_cfg.arch!r} is not a timm architecture") from None
            raise
        except OSError as exc:  # hub unreachable for pretrained=True
            raise ReptopoError(
                f"model.pretrained=true needs the hub weights of {model_cfg.arch!r}, which could not be "
                f"fetched ({type(exc).__name__}); set model.pretrained=false or allow network access"
            ) from None
    elif family == "timm_vgg":
        from timm.models.vgg import VGG

        norm = kwargs.pop("norm_layer", None)
        if norm not in _NORM_LAYERS:
            raise ReptopoError(f"model.kwargs.norm_layer={norm!r}; expected one of batchnorm or null")
        model = VGG(
            cfg=list(kwargs.pop("cfg")),
            num_classes=num_classes,
            in_chans=in_chans,
            norm_layer=_NORM_LAYERS[norm],
            **kwargs,
        )
    else:
        raise ReptopoError(f"model.family={family!r} is unknown; expected one of ['timm', 'timm_vgg']")
    activation = model_cfg.get("activation")
    if activation:
        replace_activations(model, activation)
    return model


def replace_activations(model: nn.Module, name: str) -> int:
    """Replace every activation module of ``model`` by ``name``; returns how many were replaced."""
    if name not in ACTIVATIONS:
        raise ReptopoError(f"model.activation={name!r} is unknown; expected one of {sorted(ACTIVATIONS)}")
    new_type = ACTIVATIONS[name]
    count = 0
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, ACTIVATION_TYPES):
                setattr(parent, child_name, new_type())
                count += 1
    return count


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def example_input(in_chans: int, img_size: int, batch: int = 2) -> torch.Tensor:
    """A deterministic dummy batch, for tracing the execution order of modules."""
    return torch.zeros(batch, in_chans, img_size, img_size)
