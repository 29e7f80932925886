"""``build_model``: the network described by ``conf/model/*``, whatever its family.

Families: ``timm``, ``timm_vgg``, ``cifar_resnet``, ``mlp`` (:mod:`reptopo.nets.vision`) and
``hf_bert``, ``hf_pretrained`` (:mod:`reptopo.nets.text`).
"""
from __future__ import annotations

from torch import nn

from reptopo.nets.vision import (MLP, CifarResNet, build_timm, build_vgg, pad_small_grouped_convs, plain,
                                 replace_activations)
from reptopo.runtime.choices import allowed
from reptopo.runtime.errors import ReptopoError

FAMILIES = allowed("model.family")
TEXT_FAMILIES = ("hf_bert", "hf_pretrained")


def data_kinds(family: str) -> tuple[str, ...]:
    """The ``data.kind`` values a model family accepts."""
    if family in TEXT_FAMILIES:
        return ("text",)
    if family == "mlp":
        return ("points",)
    return ("image",)


def check_compatible(model_cfg, data_cfg) -> None:
    """One sentence when a model cannot read a dataset's inputs (e.g. a CNN on text)."""
    kind = data_cfg.get("kind", "image")
    kinds = data_kinds(model_cfg.family)
    if kind not in kinds:
        raise ReptopoError(
            f"model {model_cfg.name!r} (family {model_cfg.family}) takes {'/'.join(kinds)} inputs, but "
            f"data {data_cfg.name!r} is kind {kind!r}; pick a matching model or dataset"
        )


def build_model(model_cfg, in_chans: int, num_classes: int, img_size: int, vocab_size: int | None = None,
                hf_config_dir=None) -> nn.Module:
    """Build the network described by ``model_cfg`` (see conf/model/*.yaml).

    ``in_chans`` is the channel count for images and the point dimension for ``kind: points`` data;
    ``vocab_size`` is needed by ``hf_bert`` (the locally trained tokenizer's size);
    ``hf_config_dir`` (text families) rebuilds the architecture from a saved transformers config
    with random weights, for loading a trained checkpoint without the hub.
    """
    family = model_cfg.family
    kwargs = dict(plain(model_cfg.get("kwargs")) or {})
    activation = model_cfg.get("activation")
    if family == "timm":
        model = build_timm(model_cfg, kwargs, in_chans, num_classes, img_size)
    elif family == "timm_vgg":
        model = build_vgg(kwargs, in_chans, num_classes)
    elif family == "cifar_resnet":
        if model_cfg.get("pretrained"):
            raise ReptopoError("model.pretrained=true: there are no hub weights for the CIFAR ResNets; set it to false")
        model = CifarResNet(in_chans=in_chans, num_classes=num_classes, **kwargs)
    elif family == "mlp":
        model = MLP(in_chans, num_classes, list(kwargs.get("hidden", [32, 32])), activation or "relu",
                    init=str(kwargs.get("init", "torch")))
        activation = None  # already built with it
    elif family in TEXT_FAMILIES:
        from reptopo.nets.text import build_text_model

        return build_text_model(model_cfg, num_classes, vocab_size, hf_config_dir)
    else:
        raise ReptopoError(f"model.family={family!r} is unknown; expected one of {list(FAMILIES)}")
    if activation:
        replace_activations(model, activation)
    return pad_small_grouped_convs(model)
