"""The code part of a stage's fingerprint: the source that computes its numbers, and the versions
of the libraries that decide them.

A stage's source is its import closure inside reptopo (:mod:`reptopo.runtime.imports`: the stage
module and everything it imports, lazily too, with the packages above them), less the
bookkeeping modules below. Each file counts by its syntax tree without docstrings
(``ast.dump``), so comments, docstrings, blank lines and formatting do not count and any other
edit does. The libraries are the distributions of the third-party modules that closure imports,
less those that never decide a number (tracking, configuration, progress bars), plus the
compilers under them (numba's llvmlite).

Nothing here is kept by hand: editing a module that a stage runs changes that stage's fingerprint,
and the stage is recomputed rather than reused.
"""
from __future__ import annotations

import ast
import hashlib
import json
import platform
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from reptopo.runtime.imports import closure, graph, package_src, parse, third_party_imports

# Modules of a stage's closure that carry the run but never its numbers: editing them reuses
# finished outputs. None of them imports a numeric library (tests/test_codehash.py checks).
BOOKKEEPING = {
    "reptopo.__main__": "dispatches to the stage module",
    "reptopo.runtime.cli": "the error exit",
    "reptopo.runtime.errors": "the error type",
    "reptopo.runtime.tracking": "MLflow logging",
    "reptopo.runtime.callbacks": "the MLflow parent run of a sweep",
    "reptopo.runtime.config": "paths and Hydra access",
    "reptopo.runtime.schema": "validation; its effect on numbers is the validated config, which is hashed",
    "reptopo.runtime.choices": "the choice lists, likewise",
    "reptopo.runtime.confighash": "the fingerprint itself",
    "reptopo.runtime.codehash": "the fingerprint itself",
    "reptopo.runtime.imports": "the fingerprint itself",
    "reptopo.runtime.stamps": "the fingerprint itself",
}

# Distributions a stage imports that never decide its numbers.
NOT_NUMERIC = {"hydra-core", "omegaconf", "mlflow", "mlflow-skinny", "mlflow-tracing", "tqdm", "filelock", "PyYAML",
               "matplotlib", "huggingface_hub", "huggingface-hub", "threadpoolctl"}
# Libraries that compute for a distribution the closure imports, at versions it does not pin.
UNDERNEATH = {"numba": ("llvmlite",), "scikit-dimension": ("numba", "llvmlite")}


@dataclass(frozen=True)
class CodeFingerprint:
    """What decides the numbers of a stage's code: ``code`` (SHA-256 of its modules' normalised
    source), ``libraries`` ({distribution: version}) and ``modules`` (the modules hashed)."""

    code: str
    libraries: dict
    modules: tuple

    @property
    def digest(self) -> str:
        """SHA-256 of the code hash and the library versions: what enters the stage's fingerprint."""
        return hashlib.sha256(json.dumps([self.code, self.libraries], sort_keys=True).encode()).hexdigest()


_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _dump(node) -> str:
    """``ast.dump`` without line numbers and without the docstrings of modules, classes and
    functions (the tree is not modified)."""
    if isinstance(node, ast.AST):
        fields = []
        for name, value in ast.iter_fields(node):
            if name == "body" and isinstance(node, _WITH_DOCSTRING) and value and _is_docstring(value[0]):
                value = value[1:]
            fields.append(f"{name}={_dump(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(v) for v in node) + "]"
    return repr(node)


def normalised_source(path: Path) -> str:
    """The file's syntax tree without docstrings, as text: equal for two files that differ only in
    comments, docstrings, blank lines or layout."""
    return _dump(parse(path))


def stage_modules(stages: tuple[str, ...], src: Path | None = None) -> list[str]:
    """The modules whose source decides the numbers of ``stages`` (reptopo stage names): the
    union of their closures, less :data:`BOOKKEEPING`."""
    modules, edges, _ = graph(src or package_src())
    roots = [f"reptopo.stages.{s}" for s in stages]
    missing = [r for r in roots if r not in modules]
    if missing:
        raise ValueError(f"no stage module {missing} under {src or package_src()}")
    return sorted(m for m in closure(roots, edges, launches=False) if m not in BOOKKEEPING)


@lru_cache(maxsize=None)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions(top_level_modules: set[str]) -> dict[str, str]:
    """{distribution: version} of the installed distributions that provide ``top_level_modules``,
    less :data:`NOT_NUMERIC`, plus what :data:`UNDERNEATH` names under them. A module that is not
    installed (an optional import) is left out: it cannot have computed anything."""
    dists = {d for m in top_level_modules for d in _distributions().get(m, [])}
    dists |= {u for d in list(dists) for u in UNDERNEATH.get(d, ())}
    versions = {d: _version(d) for d in dists if d not in NOT_NUMERIC}
    return {d: v for d, v in sorted(versions.items(), key=lambda kv: kv[0].lower()) if v is not None}


@lru_cache(maxsize=None)
def code_fingerprint(stages: tuple[str, ...], src: Path | None = None) -> CodeFingerprint:
    """The :class:`CodeFingerprint` of ``stages`` (a stage and the stages whose outputs it reads),
    from the package under ``src`` (default: the imported one). Cached per process."""
    src = src or package_src()
    files, _, _ = graph(src)
    names = stage_modules(stages, src)
    h = hashlib.sha256()
    for m in names:
        h.update(f"{m}\n{normalised_source(files[m])}\n".encode())
    imported = set().union(*(third_party_imports(m, files[m]) for m in names))
    return CodeFingerprint(h.hexdigest(), library_versions(imported), tuple(names))


def python_version() -> str:
    """``3.11.7 (CPython)``: recorded with outputs, not hashed (a patch release moves no numbers)."""
    return f"{platform.python_version()} ({platform.python_implementation()})"
