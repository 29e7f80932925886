"""Fingerprints of what decides each stage's output (its config subtrees, its code and library
versions), and the ``${fp:<stage>}`` resolver that names output folders by them.

``train_name: ${model.name}-${data.name}-${fp:train}`` names a checkpoint folder by what decides
it, so experiments that train the same model share one checkpoint and never overwrite each
other's.
"""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from reptopo.runtime.codehash import code_fingerprint
from reptopo.runtime.errors import ReptopoError

# Which config subtrees decide each stage's output (a stage reruns when one of them changes).
STAGE_INPUTS = {
    "train": ("seed", "model", "data", "train"),
    "activations": ("seed", "model", "data", "train", "probe", "sample", "attack"),
    "homology": ("seed", "model", "data", "train", "probe", "sample", "attack", "topology"),
    # One pair of runs: the runs themselves enter as inputs (their fingerprints; stages/compare.py).
    "compare": ("seed", "compare"),
}
# Whose code decides each stage's numbers: the stage's and that of every stage whose output it
# reads (a retrained checkpoint is probed anew). compare reads finished runs, whose fingerprints
# it hashes as inputs.
CODE_OF = {
    "train": ("train",),
    "activations": ("train", "activations"),
    "homology": ("train", "activations", "homology"),
    "compare": ("compare",),
}

# Keys inside those subtrees that do not decide the numbers: which engine computes the same tree;
# how many minibatches Lightning hands over at once (the same updates, bitwise: tests/test_stages.py);
# which pairs an experiment compares and how many at a time (a pair's inputs are its runs).
NOT_DECIDING = ("topology.phdim.algorithm", "train.steps_per_call", "compare.pairs", "compare.run_a",
                "compare.run_b", "compare.n_jobs")


def _drop(parts: dict, dotted: str) -> None:
    """Remove the dotted key from the nested dict ``parts`` (if there)."""
    *path, last = dotted.split(".")
    node = parts
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(last, None)


def subtree_hash(cfg: DictConfig, stage: str, inputs: dict | None = None) -> str:
    """SHA-256 (hex) of what decides ``stage``'s output: the resolved config subtrees of
    ``STAGE_INPUTS`` less ``NOT_DECIDING``, the code fingerprint of the stages in ``CODE_OF``
    (their source and library versions, :func:`reptopo.runtime.codehash.code_fingerprint`), and
    ``inputs`` (JSON-able: what else the stage reads, e.g. the runs a pair compares)."""
    if stage not in STAGE_INPUTS:
        raise ReptopoError(f"${{fp:{stage}}}: unknown stage; expected one of {sorted(STAGE_INPUTS)}")
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
             for k in STAGE_INPUTS[stage]}
    for key in NOT_DECIDING:
        _drop(parts, key)
    parts["_code"] = code_fingerprint(CODE_OF[stage]).digest
    if inputs is not None:
        parts["_inputs"] = inputs
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def register_resolvers() -> None:
    """Register ``${fp:<stage>}`` (the first 8 hex digits of :func:`subtree_hash`); idempotent.

    Called by the stage entry point before Hydra resolves run directories, and by
    ``validate_config`` before it resolves a config composed elsewhere (tests, notebooks).
    """
    if not OmegaConf.has_resolver("fp"):
        OmegaConf.register_new_resolver("fp", lambda stage, *, _root_: subtree_hash(_root_, stage)[:8])
