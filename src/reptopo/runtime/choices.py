"""The one registry of fixed choices: config keys whose value is one of a fixed set.

Validation (:func:`reptopo.runtime.schema.validate_config`) checks every key here up front, so a
typo fails at once naming the key instead of silently meaning "off" (an unknown
``topology.lifespans.scale`` would skip the scaling, an unknown scheduler would keep the learning
rate constant) or failing only after training. The code that implements the choices reads its
list from here (``None`` in a tuple: null is allowed); tests check that every choice listed is
implemented.
"""
from __future__ import annotations

CHOICES: dict[str, tuple] = {
    "scale": (None, "quick", "paper"),
    "model.family": ("timm", "timm_vgg", "cifar_resnet", "mlp", "hf_bert", "hf_pretrained"),
    "model.activation": (None, "relu", "silu", "tanh", "relu6", "sigmoid", "elu", "gelu"),
    "model.tokenizer": (None, "wordpiece", "pretrained"),
    "data.kind": ("image", "text", "points"),
    "data.loader": ("fashion_mnist", "digits", "mnist_5k", "cifar10", "svhn", "mnist", "synthetic",
                    "rotten_tomatoes", "fortunes", "sst2", "imdb"),
    "data.generator": (None, "d1", "d2", "d3"),
    "train.optimizer": ("adamw", "sgd"),
    "train.scheduler": (None, "cosine", "onecycle"),
    "train.augment": (None, "crop", "crop_flip"),
    "train.precision": ("32-true", "bf16-mixed"),
    "probe.strategy": ("evenly_spaced", "blocks", "names", "pattern"),
    "probe.token_pooling": ("cls", "mean"),
    "probe.dtype": ("float32", "float16"),
    "sample.split": ("train", "val", "test"),
    "attack.method": (None, "fgsm_targeted"),
    "topology.lifespans.scale": (None, "minmax"),
    "topology.lifespans.class_subsample": ("first", "random"),
    "topology.phdim.algorithm": ("auto", "dense", "tiled"),
    # The paper experiments' finding checks (reptopo.paper.analyses.ANALYSES); null: none.
    "aggregate.analysis": (None, "e1", "e2", "e3", "e4", "e5", "e7", "naitzat"),
    "compare.diagram_metric": ("wasserstein", "bottleneck"),
}
# List-valued keys whose every item is one of a fixed set.
LIST_CHOICES: dict[str, tuple] = {
    "topology.intrinsic": ("twonn", "mle", "gride"),
    "compare.measures": ("cka", "cka_debiased", "overlap", "rtd", "diagrams"),
}


def allowed(key: str) -> tuple:
    """The values ``key`` may take, without null (for dispatch tables and error messages)."""
    return tuple(v for v in {**CHOICES, **LIST_CHOICES}[key] if v is not None)


def choice_error(key: str, value) -> str:
    """The one-line message for a value of ``key`` outside the registry."""
    values = {**CHOICES, **LIST_CHOICES}[key]
    shown = ", ".join("null" if v is None else str(v) for v in values)
    return f"config key {key}: {value!r} is not one of: {shown}"
