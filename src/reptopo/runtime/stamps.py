"""Output stamps: which config made a finished output folder, so reruns reuse it.

Every stage writes ``_stage.json`` (stage, fingerprint, wall seconds) inside its output folder
before the folder is renamed into place; :func:`is_complete` compares it with the current config.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from omegaconf import DictConfig

from reptopo.runtime.confighash import subtree_hash
from reptopo.runtime.io import write_json
from reptopo.runtime.schema import validate_config

STAMP = "_stage.json"


def fingerprint(cfg: DictConfig, stage: str) -> str:
    """SHA-256 of the resolved config subtrees that decide ``stage``'s output (after schema
    validation, so defaults filled in by the schema count the same as explicit values)."""
    return subtree_hash(validate_config(cfg), stage)


def write_stamp(out_dir: Path, cfg: DictConfig, stage: str, seconds: float | None = None) -> None:
    """Record, inside an output folder being written, which config produced it and the stage's
    wall time in seconds (the reproduction report sums these per stage)."""
    write_json(Path(out_dir) / STAMP, {"stage": stage, "fingerprint": fingerprint(cfg, stage),
                                       "seconds": None if seconds is None else round(float(seconds), 2)})


def read_stamp(out_dir: str | os.PathLike) -> dict:
    """The stamp of a finished output folder ({} when there is none)."""
    try:
        return json.loads((Path(out_dir) / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def is_complete(out_dir: str | os.PathLike, cfg: DictConfig, stage: str) -> bool:
    """True when ``out_dir`` holds a finished output of ``stage`` made from the same config."""
    fp = read_stamp(out_dir).get("fingerprint")
    return fp is not None and fp == fingerprint(cfg, stage)
