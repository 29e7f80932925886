"""Output stamps: what made a finished output folder, so reruns reuse it and readers can tell.

Every stage writes ``_stage.json`` inside its output folder before the folder is renamed into
place: the stage, its fingerprint (:func:`fingerprint`), wall seconds, and what made it: the
code hash and library versions that entered the fingerprint, the Python version, the CPU and its
instruction set, and the threads the stage ran on. :func:`is_complete` compares the stamp's
fingerprint with the current config and code.
"""
from __future__ import annotations

import json
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from omegaconf import DictConfig

from reptopo.runtime.codehash import code_fingerprint, python_version
from reptopo.runtime.confighash import CODE_OF, subtree_hash
from reptopo.runtime.io import write_json
from reptopo.runtime.schema import validate_config

STAMP = "_stage.json"
# Instruction-set extensions that pick the kernels of oneDNN, OpenBLAS and numba (and so the last
# bits of their sums): the ones of this CPU are recorded with every output.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve")


def fingerprint(cfg: DictConfig, stage: str, inputs: dict | None = None) -> str:
    """SHA-256 of what decides ``stage``'s output (:func:`reptopo.runtime.confighash.subtree_hash`,
    after schema validation, so defaults filled in by the schema count the same as explicit values)."""
    return subtree_hash(validate_config(cfg), stage, inputs)


@lru_cache(maxsize=1)
def machine() -> dict:
    """The CPU this process runs on: model name, architecture and the :data:`ISA_FLAGS` it has."""
    model, flags = platform.processor() or "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model Name") and not model.strip():
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model.strip() or "unknown", "arch": platform.machine(),
            "isa": [f for f in ISA_FLAGS if f in flags]}


def provenance(stage: str, threads: int | None = None) -> dict:
    """What made an output of ``stage`` here: code hash and library versions (as hashed), Python,
    the CPU (:func:`machine`) and the threads the stage computed on."""
    code = code_fingerprint(CODE_OF[stage])
    return {"code": code.code, "libraries": code.libraries, "python": python_version(),
            "machine": {**machine(), "threads": threads}}


def write_stamp(out_dir: Path, cfg: DictConfig, stage: str, seconds: float | None = None,
                inputs: dict | None = None, threads: int | None = None) -> None:
    """Record, inside an output folder being written, its fingerprint (of ``cfg``, the code and
    ``inputs``), the stage's wall time in seconds (the reproduction report sums these per stage)
    and its :func:`provenance` (``threads``: torch's and BLAS's thread cap of the stage)."""
    write_json(Path(out_dir) / STAMP, {"stage": stage, "fingerprint": fingerprint(cfg, stage, inputs),
                                       "seconds": None if seconds is None else round(float(seconds), 2),
                                       **provenance(stage, threads)})


def read_stamp(out_dir: str | os.PathLike) -> dict:
    """The stamp of a finished output folder ({} when there is none)."""
    try:
        return json.loads((Path(out_dir) / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def is_complete(out_dir: str | os.PathLike, cfg: DictConfig, stage: str, inputs: dict | None = None) -> bool:
    """True when ``out_dir`` holds a finished output of ``stage`` made from the same config, code
    and ``inputs``."""
    fp = read_stamp(out_dir).get("fingerprint")
    return fp is not None and fp == fingerprint(cfg, stage, inputs)


def summarise_provenance(stamps: Iterable[dict], summaries: Iterable[dict] = ()) -> dict:
    """What a set of outputs was made with, from their stamps (and earlier summaries, merged in):
    ``machines`` (each CPU kind and thread count, with how many outputs of each stage it made),
    ``python`` and ``libraries`` (every version seen) and ``code`` (each stage's code hashes, 12
    hex digits). A pool that mixes machines or versions shows more than one entry."""
    machines: dict[str, dict] = {}
    python: set[str] = set()
    libraries: dict[str, set[str]] = {}
    code: dict[str, set[str]] = {}

    def add_machine(m: dict, outputs: dict) -> None:
        key = json.dumps({k: m.get(k) for k in ("cpu", "arch", "isa", "threads")}, sort_keys=True)
        entry = machines.setdefault(key, {**json.loads(key), "outputs": {}})
        for stage, n in outputs.items():
            entry["outputs"][stage] = entry["outputs"].get(stage, 0) + int(n)

    for s in summaries:
        for m in s.get("machines", []):
            add_machine(m, m.get("outputs", {}))
        python |= set(s.get("python", []))
        for lib, versions in s.get("libraries", {}).items():
            libraries.setdefault(lib, set()).update(versions)
        for stage, hashes in s.get("code", {}).items():
            code.setdefault(stage, set()).update(hashes)
    for st in stamps:
        if "machine" not in st:  # a stamp written before stamps recorded provenance
            continue
        add_machine(st["machine"], {st.get("stage", "?"): 1})
        python.add(st.get("python", "?"))
        for lib, version in st.get("libraries", {}).items():
            libraries.setdefault(lib, set()).add(version)
        code.setdefault(st.get("stage", "?"), set()).add(str(st.get("code", "?"))[:12])
    return {"machines": [machines[k] for k in sorted(machines)], "python": sorted(python),
            "libraries": {lib: sorted(v) for lib, v in sorted(libraries.items(), key=lambda kv: kv[0].lower())},
            "code": {stage: sorted(v) for stage, v in sorted(code.items())}}


def describe_provenance(summary: dict) -> list[str]:
    """:func:`summarise_provenance` as short lines for a report."""
    lines = []
    for m in summary.get("machines", []):
        outputs = ", ".join(f"{n} {stage}" for stage, n in sorted(m.get("outputs", {}).items()))
        lines.append(f"CPU {m.get('cpu')} ({m.get('arch')}; {' '.join(m.get('isa') or []) or 'no listed extensions'}), "
                     f"{m.get('threads')} thread(s) per job: {outputs} output(s)")
    if summary.get("python"):
        lines.append("Python " + ", ".join(summary["python"]))
    if summary.get("libraries"):
        lines.append("libraries: " + ", ".join(f"{lib} {'/'.join(v)}" for lib, v in summary["libraries"].items()))
    if summary.get("code"):
        lines.append("code: " + "; ".join(f"{stage} {', '.join(h)}" for stage, h in summary["code"].items()))
    return lines or ["(no provenance recorded)"]
