"""Hashes of the config subtrees that decide each stage's output, and the ``${fp:<stage>}``
resolver that names output folders by them.

``train_name: ${model.name}-${data.name}-${fp:train}`` names a checkpoint folder by what decides
it, so experiments that train the same model share one checkpoint and never overwrite each
other's.
"""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from reptopo.runtime.errors import ReptopoError

# Which config subtrees decide each stage's output (a stage reruns when one of them changes).
STAGE_INPUTS = {
    "train": ("seed", "model", "data", "train"),
    "activations": ("seed", "model", "data", "train", "probe", "sample", "attack"),
    "homology": ("seed", "model", "data", "train", "probe", "sample", "attack", "topology"),
}

# Revision of the code that computes each stage's numbers. DVC reruns a stage when its code
# changes, but the rerun reuses a finished output whose fingerprint matches, so a change that
# moves a stage's numbers must bump its revision here. Revision 1 is left out of the hash, so
# the fingerprints made before revisions existed stay valid.
#   homology 2: distance matrices exact to 1e-10 at any dynamic range (H0 on near-duplicates).
#   train 2: denormal floats flushed to zero while training.
#   train 3: grouped convs on maps smaller than their kernel padded explicitly (nets.vision.SmallMapConv2d:
#            MobileNetV2's last depthwise convs; same arithmetic, other kernels, so other last bits).
CODE_REVISIONS = {"train": 3, "activations": 1, "homology": 2}


# Keys inside those subtrees that do not decide the numbers: which engine computes the same tree;
# how many minibatches Lightning hands over at once (the same updates, bitwise: tests/test_stages.py).
NOT_DECIDING = ("topology.phdim.algorithm", "train.steps_per_call")
# Keys added after fingerprints existed, with the value that reproduces the earlier numbers: left
# out of the hash at that value, so earlier outputs keep their fingerprints.
ADDED_KEYS = {"topology.phdim.sizes": None, "train.channels_last": False, "model.kwargs.init": "torch",
              "train.precision": "32-true"}


def _drop(parts: dict, dotted: str, only_if=...) -> None:
    """Remove the dotted key from the nested dict ``parts`` (only when it equals ``only_if``,
    if given)."""
    *path, last = dotted.split(".")
    node = parts
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict) and last in node and (only_if is ... or node[last] == only_if):
        del node[last]


def subtree_hash(cfg: DictConfig, stage: str) -> str:
    """SHA-256 (hex) of the resolved config subtrees that decide ``stage`` (``STAGE_INPUTS``, less
    ``NOT_DECIDING`` and the ``ADDED_KEYS`` at their neutral value), and of the stage's code
    revision and its upstream stages' (``CODE_REVISIONS``) from revision 2 on."""
    if stage not in STAGE_INPUTS:
        raise ReptopoError(f"${{fp:{stage}}}: unknown stage; expected one of {sorted(STAGE_INPUTS)}")
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
             for k in STAGE_INPUTS[stage]}
    for key in NOT_DECIDING:
        _drop(parts, key)
    for key, neutral in ADDED_KEYS.items():
        _drop(parts, key, neutral)
    # A stage's numbers also move when an upstream stage's code does (a retrained checkpoint is
    # probed anew), so the revisions of the stage and of every stage before it count.
    upstream = list(STAGE_INPUTS)[: list(STAGE_INPUTS).index(stage) + 1]
    revisions = {s: CODE_REVISIONS[s] for s in upstream if CODE_REVISIONS[s] > 1}
    if revisions:
        parts["_code_revisions"] = revisions
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def register_resolvers() -> None:
    """Register ``${fp:<stage>}`` (the first 8 hex digits of :func:`subtree_hash`); idempotent.

    Called by the stage entry point before Hydra resolves run directories, and by
    ``validate_config`` before it resolves a config composed elsewhere (tests, notebooks).
    """
    if not OmegaConf.has_resolver("fp"):
        OmegaConf.register_new_resolver("fp", lambda stage, *, _root_: subtree_hash(_root_, stage)[:8])
