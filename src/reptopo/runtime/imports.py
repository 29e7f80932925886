"""reptopo's import graph, read statically from the source (``ast``; no module is imported).

A module's edges are every reptopo import at any nesting level (module level, inside functions,
under ``if``/``try``), relative ones resolved; constant ``importlib.import_module`` calls; and
``[..., "-m", "reptopo", "<stage>", ...]`` argument lists (subprocess launches). Running a module
also runs the ``__init__`` of every package above it and above each module it imports.

Used by the code fingerprints (:mod:`reptopo.runtime.codehash`: which source decides a stage's
numbers) and by ``tests/test_layout.py`` (DVC deps, import cycles, layering).
"""
from __future__ import annotations

import ast
import sys
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PKG = "reptopo"


@dataclass(frozen=True)
class Edge:
    target: str  # the reptopo module the statement names (a package means its __init__)
    line: int
    launch: bool = False  # a ``python -m reptopo <stage>`` subprocess, not an import


def package_src() -> Path:
    """The folder that holds the imported ``reptopo`` package (``src`` in a checkout)."""
    return Path(__file__).resolve().parents[2]


def module_files(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``src``/reptopo (packages: their __init__.py)."""
    out = {}
    for path in sorted((src / PKG).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def parents(module: str) -> list[str]:
    """The packages Python initialises before ``module``: a.b.c -> [a, a.b]."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def ours(name: str | None) -> bool:
    return bool(name) and (name == PKG or name.startswith(PKG + "."))


def _launch_target(elts: list, modules: dict) -> str | None:
    """``[..., "-m", "reptopo", "<stage>", ...]`` (or ``"-m", "reptopo.<module>"``) -> the module run."""
    strs = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str) else None for e in elts]
    for i, s in enumerate(strs[:-1]):
        if s != "-m" or not ours(strs[i + 1]):
            continue
        if strs[i + 1] == PKG and i + 2 < len(strs) and strs[i + 2] and f"{PKG}.stages.{strs[i + 2]}" in modules:
            return f"{PKG}.stages.{strs[i + 2]}"
        return strs[i + 1]
    return None


def _imported_names(tree: ast.AST, package: str) -> list[tuple[str, list[str], int]]:
    """(base module, names imported from it ([] for ``import x``), line) of every import statement
    and constant ``import_module`` call, relative imports resolved against ``package``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.append((base, [alias.name for alias in node.names], node.lineno))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            out.append((node.args[0].value, [], node.lineno))
    return out


def parse(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per version of the file (callers must not modify it)."""
    st = path.stat()
    return _parse(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=None)
def _parse(path: Path, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def parse_edges(module: str, path: Path, modules: dict) -> tuple[list[Edge], list[tuple[str, int]]]:
    """(edges, dangling) of one module; ``from P import n`` names the submodule P.n when it is one
    and P's __init__ otherwise. ``dangling``: reptopo modules imported that do not exist."""
    tree = parse(path)
    package = module if is_package(path) else module.rpartition(".")[0]
    named: list[tuple[str, int]] = []
    for base, names, line in _imported_names(tree, package):
        if not names:
            named.append((base, line))
        elif ours(base):
            named += [(f"{base}.{n}" if f"{base}.{n}" in modules else base, line) for n in names]
    edges: list[Edge] = []
    dangling: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)):
            target = _launch_target(node.elts, modules)
            if target is not None:
                if target in modules:
                    edges.append(Edge(f"{PKG}.__main__", node.lineno, launch=True))
                    edges.append(Edge(target, node.lineno, launch=True))
                else:
                    dangling.append((target, node.lineno))
    for name, line in named:
        if not ours(name):
            continue
        if name in modules:
            edges.append(Edge(name, line))
        else:
            dangling.append((name, line))
    # ``__main__`` dispatches with ``import_module(f"reptopo.stages.{stage}")``: not constant, so not
    # an edge; a stage's closure starts from its own stage module instead.
    return edges, dangling


def third_party_imports(module: str, path: Path) -> set[str]:
    """Top-level names of the non-reptopo, non-standard-library modules a module imports, lazily
    included (``import sklearn.neighbors`` -> ``sklearn``), and of the packages whose files it
    locates with a constant ``find_spec("name")`` (data shipped in a wheel)."""
    tree = parse(path)
    package = module if is_package(path) else module.rpartition(".")[0]
    tops = {base.split(".")[0] for base, _, _ in _imported_names(tree, package) if base}
    tops |= {node.args[0].value.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
             and isinstance(node.args[0].value, str)
             and getattr(node.func, "attr", getattr(node.func, "id", None)) == "find_spec"}
    return {t for t in tops if t != PKG and t not in sys.stdlib_module_names and t != "__future__"}


@lru_cache(maxsize=None)
def graph(src: Path) -> tuple[dict[str, Path], dict[str, list[Edge]], dict[str, list]]:
    """(modules, edges, dangling) of the package under ``src``."""
    modules = module_files(src)
    edges, dangling = {}, {}
    for name, path in modules.items():
        edges[name], dangling[name] = parse_edges(name, path, modules)
    return modules, edges, dangling


def loaded_by(module: str, edges: dict[str, list[Edge]], launches: bool = True) -> list[tuple[str, str]]:
    """(module, why) pairs that executing ``module`` executes next: each module it imports, and the
    parent packages of it and of each of those (Python runs a package's __init__ first)."""
    out = [(p, f"parent package of {module}") for p in parents(module)]
    for e in edges.get(module, []):
        if e.launch and not launches:
            continue
        how = "launches" if e.launch else "imports"
        out += [(p, f"{module} line {e.line} {how} {e.target}") for p in parents(e.target)]
        out.append((e.target, f"{module} line {e.line} {how} {e.target}"))
    return out


def closure(roots: list[str], edges: dict[str, list[Edge]], launches: bool = True,
            why: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Every reptopo module that running ``roots`` executes -> the chain that reaches it."""
    chain: dict[str, list[str]] = {r: [f"{r} ({why[r]})" if why and r in why else r] for r in roots}
    todo = deque(roots)
    while todo:
        m = todo.popleft()
        for nxt, reason in loaded_by(m, edges, launches):
            if nxt not in chain:
                chain[nxt] = [*chain[m], f"{nxt} ({reason})"]
                todo.append(nxt)
    return chain
