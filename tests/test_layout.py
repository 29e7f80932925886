"""The package layout, checked statically (``ast``, no imports run, no pipeline):

- every DVC stage's ``deps`` cover the files its command imports (so an edit reruns it);
- reptopo has no import cycles, lazy (function-level) imports included;
- the layering: the science folders never reach the stages or MLflow tracking, and the topology
  engine depends on nothing else in reptopo.

Modules are discovered from src/reptopo, never listed here: a new module is checked as soon as it
exists.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
import re
from pathlib import Path

import pytest
import yaml

from reptopo.runtime import imports
from reptopo.runtime.imports import PKG, Edge, closure, parents

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SCIENCE = ("topology", "similarity", "datasets", "nets", "probing", "analysis", "paper")
# What the science folders must never import, directly or through anything they import.
FORBIDDEN_FOR_SCIENCE = (f"{PKG}.stages", f"{PKG}.runtime.tracking", f"{PKG}.runtime.callbacks")


# ---------------------------------------------------------------- the module graph
# (reptopo.runtime.imports reads it; the code fingerprints hash the same closures)


def graph(src: Path = SRC):
    return imports.graph(src)


def cycle_graph(modules: dict, edges: dict[str, list[Edge]]) -> dict[str, dict[str, int]]:
    """module -> {module it depends on: line}, for finding import cycles.

    The rule: ``import a.b.c`` (or ``from a.b import c``, or ``from a.b.c import x``) in module M
    is an edge M -> a.b.c and an edge M -> the __init__ of each parent package (a, a.b), lazy
    imports inside functions included, EXCEPT an edge to a parent package of M itself (a package
    that contains M) when that package is only an implicit parent of the target. Python has
    already started that package's __init__ before M runs (M is loaded as its submodule), so
    importing through it re-enters nothing: ``reptopo.nets.build`` doing
    ``from reptopo.nets.vision import X`` while ``reptopo/nets/__init__`` re-exports from
    ``build`` is not a cycle. An explicit ``from reptopo.nets import build_model`` in a
    submodule of reptopo.nets names the package's __init__ itself, and does count. Subprocess
    launches (``-m reptopo <stage>``) are no imports and are not edges; self-edges are dropped.
    """
    out: dict[str, dict[str, int]] = {m: {} for m in modules}
    for m, es in edges.items():
        mine = set(parents(m))
        for e in es:
            if e.launch:
                continue
            for p in parents(e.target):
                if p not in mine and p != m:
                    out[m].setdefault(p, e.line)
            if e.target != m:
                out[m].setdefault(e.target, e.line)
    return out


def find_cycle(g: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of ``g`` as [m0, m1, ..., m0], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(g, WHITE)
    for start in sorted(g):
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(sorted(g[start])))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour.get(nxt, BLACK) == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                stack.append((nxt, iter(sorted(g[nxt]))))
                path.append(nxt)
    return None


def format_cycle(cycle: list[str], g: dict[str, dict[str, int]]) -> str:
    return "\n  ".join(f"{a} (line {g[a][b]}) imports {b}" for a, b in zip(cycle, cycle[1:]))


# ---------------------------------------------------------------- dvc.yaml


def _lookup(ctx: dict, key: str):
    value = ctx
    for part in key.split("."):
        value = value[part]
    return value


def interpolate(value, ctx: dict):
    """DVC's ``${a.b}`` templating, enough for dvc.yaml: a whole-string reference keeps its type."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\{([\w.]+)\}", value)
    if whole:
        return _lookup(ctx, whole.group(1))
    return re.sub(r"\$\{([\w.]+)\}", lambda m: str(_lookup(ctx, m.group(1))), value)


@dataclass
class Stage:
    name: str  # stage name, with @<item> for matrix stages
    cmd: str
    deps: list[str]


def dvc_stages(repo: Path = REPO) -> dict[str, list[Stage]]:
    """dvc.yaml stage -> its expanded instances (one per matrix item)."""
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    ctx: dict = {}
    for entry in dvc.get("vars", []):
        if isinstance(entry, str):
            ctx.update(yaml.safe_load((repo / entry).read_text()) or {})
        else:
            ctx.update(entry)
    out = {}
    for name, spec in dvc["stages"].items():
        matrix = {k: interpolate(v, ctx) for k, v in (spec.get("matrix") or {}).items()}
        items = [dict(zip(matrix, combo)) for combo in itertools.product(*matrix.values())] if matrix else [None]
        out[name] = []
        for item in items:
            c = {**ctx, "item": item} if item else ctx
            cmd = spec["cmd"] if isinstance(spec["cmd"], str) else " && ".join(spec["cmd"])
            label = name + ("@" + "-".join(map(str, item.values())) if item else "")
            out[name].append(Stage(label, interpolate(cmd, c), [interpolate(d, c) for d in spec.get("deps", [])]))
    return out


def stage_module(cmd: str) -> str | None:
    """``python -m reptopo <stage> ...`` -> reptopo.stages.<stage> (``-m reptopo.x`` -> reptopo.x)."""
    m = re.search(r"python\s+-m\s+(reptopo(?:\.[\w.]+)?)(?:\s+([A-Za-z_]\w*))?(?=\s|$)", cmd)
    if not m:
        return None
    if m.group(1) == PKG:
        return f"{PKG}.stages.{m.group(2)}" if m.group(2) else f"{PKG}.__main__"
    return m.group(1)


def hydra_targets(stage: Stage, modules: dict, repo: Path = REPO) -> list[str]:
    """reptopo modules a stage's Hydra configs instantiate (``_target_: reptopo.x.y.Name``, e.g. the
    sweep callback): the primary conf/config.yaml and every conf file or folder in its deps."""
    files = {repo / "conf" / "config.yaml"}
    for dep in stage.deps:
        p = repo / dep
        if dep.split("/")[0] == "conf":
            files |= set(p.rglob("*.yaml")) if p.is_dir() else {p}
    found = set()
    for f in sorted(files):
        if f.is_file():
            for target in re.findall(r"_target_:\s*[\"']?(reptopo(?:\.\w+)+)", f.read_text()):
                parts = target.split(".")  # module.Class (or module.function): the longest module
                found |= {next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                                if ".".join(parts[:i]) in modules), target)}
    return sorted(found)


def covers(dep: str, rel: str) -> bool:
    dep = dep.rstrip("/")
    return rel == dep or rel.startswith(dep + "/")


STAGES = dvc_stages()
REPTOPO_STAGES = sorted(n for n, inst in STAGES.items() if stage_module(inst[0].cmd))


def test_every_stage_runs_through_the_stage_dispatcher():
    # A sanity check on the parsing below: the pipeline's commands are all `python -m reptopo ...`.
    assert REPTOPO_STAGES == sorted(STAGES)


@pytest.mark.parametrize("name", REPTOPO_STAGES)
def test_dvc_deps_cover_the_stage_import_closure(name):
    """Each stage's src deps cover every file its command executes: reptopo/__init__, __main__,
    stages/__init__, the stage module and everything they import (lazily too), with the
    __init__ of every package on the way, plus what its Hydra config instantiates (``_target_``)
    and the stages it launches (``-m reptopo <stage>``). And no src dep is stale or unused."""
    modules, edges, _ = graph()
    problems, missing = [], None
    same_src = len({tuple(d for d in st.deps if d.startswith("src")) for st in STAGES[name]}) == 1
    for stage in STAGES[name]:
        label = name if same_src else stage.name  # src deps have no templates: one report a stage
        mod = stage_module(stage.cmd)
        targets = hydra_targets(stage, modules)
        roots = [f"{PKG}.__main__", f"{PKG}.stages", mod, *targets]
        problems += [f"{label}: its command runs {r}, which does not exist" for r in roots[3:] if r not in modules]
        if mod not in modules:  # e.g. a stage whose module is still to be written: check the rest
            missing = mod
        chain = closure([r for r in roots if r in modules], edges,
                        why={t: "a _target_ of the stage's Hydra config" for t in targets})
        src_deps = [d for d in stage.deps if d == "src" or d.startswith("src/")]
        for m in sorted(chain):
            rel = modules[m].relative_to(REPO).as_posix()
            if not any(covers(d, rel) for d in src_deps):
                problems.append(f"{label}: {rel} is not in deps; reached by " + " <- ".join(reversed(chain[m])))
        rels = {modules[m].relative_to(REPO).as_posix() for m in chain}
        for d in src_deps:
            if not (REPO / d).exists():
                if not (missing and d == module_path(missing)):
                    problems.append(f"{label}: dep {d} does not exist")
            elif not missing and not any(covers(d, r) for r in rels):
                problems.append(f"{label}: dep {d} holds nothing the stage runs (it would rerun for nothing)")
    assert not problems, "dvc.yaml deps of stage %r:\n  %s" % (name, "\n  ".join(dict.fromkeys(problems)))
    if missing:
        pytest.skip(f"dvc stage {name!r} runs {missing}, but {module_path(missing)} does not exist yet; "
                    "the rest of its closure (reptopo/__init__, __main__, stages/__init__, Hydra targets) is covered")


def module_path(module: str) -> str:
    return f"src/{module.replace('.', '/')}.py"


def test_every_reptopo_import_names_an_existing_module():
    _, _, dangling = graph()
    bad = [f"{m} line {line}: {target}" for m, ds in sorted(dangling.items()) for target, line in ds]
    assert not bad, "imports of reptopo modules that do not exist:\n  " + "\n  ".join(bad)


def test_no_import_cycles_lazy_imports_included():
    modules, edges, _ = graph()
    g = cycle_graph(modules, edges)
    cycle = find_cycle(g)
    assert cycle is None, "import cycle:\n  " + format_cycle(cycle, g)


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_science_folders_never_reach_the_stages_or_tracking():
    modules, edges, _ = graph()
    bad = []
    for m in sorted(modules):
        if not any(_under(m, f"{PKG}.{s}") for s in SCIENCE):
            continue
        chain = closure([m], edges)
        for reached in sorted(chain):
            if any(_under(reached, f) for f in FORBIDDEN_FOR_SCIENCE):
                bad.append(" <- ".join(reversed(chain[reached])))
    assert not bad, "science modules reaching stages/tracking/callbacks:\n  " + "\n  ".join(bad)


def test_topology_imports_nothing_else_from_reptopo():
    modules, edges, _ = graph()
    top = f"{PKG}.topology"
    bad = []
    for m in sorted(x for x in modules if _under(x, top)):
        chain = closure([m], edges)
        # Its own parent packages (reptopo/__init__) run whatever happens; they are not imports.
        bad += [" <- ".join(reversed(chain[r])) for r in sorted(chain) if not _under(r, top) and r not in parents(top)]
    assert not bad, "reptopo.topology reaching the rest of reptopo:\n  " + "\n  ".join(bad)


def test_similarity_reaches_only_the_topology_engine():
    modules, edges, _ = graph()
    sim, top = f"{PKG}.similarity", f"{PKG}.topology"
    bad = []
    for m in sorted(x for x in modules if _under(x, sim)):
        chain = closure([m], edges)
        bad += [" <- ".join(reversed(chain[r])) for r in sorted(chain)
                if not (_under(r, sim) or _under(r, top)) and r not in parents(sim)]
    assert not bad, "reptopo.similarity reaching more than reptopo.topology:\n  " + "\n  ".join(bad)


def test_giotto_tda_is_imported_by_one_adapter_module():
    # giotto-tda 0.6.2 is installed without its dependencies (its metadata pins scikit-learn 1.3.2,
    # so numpy < 2): one adapter module may import it.
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                       if re.search(r"^\s*(import gtda|from gtda)", p.read_text(), re.M))
    assert importers == ["reptopo/similarity/diagrams.py"]


# ---------------------------------------------------------------- the checks check


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_the_graph_sees_lazy_relative_and_submodule_imports_and_reports_cycles(tmp_path):
    _write(tmp_path, "reptopo/__init__.py", "")
    _write(tmp_path, "reptopo/pkg/__init__.py", "from reptopo.pkg.a import f\n")  # re-export: no cycle
    _write(tmp_path, "reptopo/pkg/a.py", "from reptopo.pkg.b import g\ndef f():\n    from . import c\n")
    _write(tmp_path, "reptopo/pkg/b.py", "from reptopo import other\ng = 1\n")
    _write(tmp_path, "reptopo/pkg/c.py", "def h():\n    if True:\n        from ..other import x\n")
    _write(tmp_path, "reptopo/other.py", "import json\nx = 1\n")
    modules, edges, dangling = imports.graph.__wrapped__(tmp_path)
    assert {e.target for e in edges["reptopo.pkg.a"]} == {"reptopo.pkg.b", "reptopo.pkg.c"}
    assert {e.target for e in edges["reptopo.pkg.c"]} == {"reptopo.other"}
    assert {e.target for e in edges["reptopo.pkg.b"]} == {"reptopo.other"}
    assert set(closure(["reptopo.pkg.c"], edges)) == set(modules)  # via its package's __init__
    assert not any(dangling.values())
    assert find_cycle(cycle_graph(modules, edges)) is None
    # A lazy import back into its importer is a cycle.
    _write(tmp_path, "reptopo/other.py", "x = 1\ndef late():\n    from reptopo.pkg.b import g\n")
    modules, edges, _ = imports.graph.__wrapped__(tmp_path)
    cycle = find_cycle(cycle_graph(modules, edges))
    assert cycle is not None and {"reptopo.other", "reptopo.pkg.b"} <= set(cycle)
    # And so is a submodule importing a name from its own package's __init__ that imports it.
    _write(tmp_path, "reptopo/other.py", "x = 1\n")
    _write(tmp_path, "reptopo/pkg/b.py", "from reptopo.pkg import f\n")
    modules, edges, _ = imports.graph.__wrapped__(tmp_path)
    cycle = find_cycle(cycle_graph(modules, edges))
    assert cycle is not None and {"reptopo.pkg", "reptopo.pkg.a", "reptopo.pkg.b"} <= set(cycle)


def test_stage_commands_and_templates_parse():
    assert stage_module("python -m reptopo train experiment=x model=y") == "reptopo.stages.train"
    assert stage_module("python -m reptopo reproduction scale=quick") == "reptopo.stages.reproduction"
    assert stage_module("python -m reptopo.stages.train a=b") == "reptopo.stages.train"
    ctx = {"models": ["m1", "m2"], "paper": {"scale": "quick"}, "item": {"model": "m1"}}
    assert interpolate("${models}", ctx) == ["m1", "m2"]
    assert interpolate("conf/model/${item.model}.yaml", ctx) == "conf/model/m1.yaml"
    assert interpolate("reports/${paper.scale}/e1", ctx) == "reports/quick/e1"
    assert covers("src/reptopo/nets", "src/reptopo/nets/build.py")
    assert not covers("src/reptopo/net", "src/reptopo/nets/build.py")
    assert covers("src/reptopo/__main__.py", "src/reptopo/__main__.py")


# ---------------------------------------------------------------- config deps of the per-run stages


# A stage that depends on its upstream stage's output folder inherits that stage's config deps.
UPSTREAM = {"activations": ("train", "data/train/"), "homology": ("activations", "data/activations/")}


@pytest.mark.parametrize("name", ["train", "activations", "homology"])
def test_dvc_deps_cover_the_config_groups_that_decide_the_stage(name):
    """Every config group in the stage's fingerprint (STAGE_INPUTS) is a dep: the chosen option
    file (model, data) or the whole group folder, directly or through the upstream stage's output,
    so editing it reruns the stage under dvc repro."""
    from reptopo.runtime.confighash import STAGE_INPUTS

    for inst in STAGES[name]:
        groups = [g for g in STAGE_INPUTS[name] if (REPO / "conf" / g).is_dir()]
        if name in UPSTREAM and any(d.startswith(UPSTREAM[name][1]) for d in inst.deps):
            groups = [g for g in groups if g not in STAGE_INPUTS[UPSTREAM[name][0]]]
        assert name == "train" or groups, "the upstream stage would cover everything: the test tests nothing"
        missing = [g for g in groups if not any(covers(d, f"conf/{g}/x.yaml") or d.startswith(f"conf/{g}/")
                                                 for d in inst.deps)]
        assert not missing, f"{inst.name}: dvc.yaml lacks deps on conf/{missing} (they decide its output)"


@pytest.mark.parametrize("name", ["train", "activations", "homology"])
def test_per_run_stages_write_their_outs_for_every_model_file(name, tmp_path):
    """params.yaml may list any conf/model/<file>: the stage's output folder, composed from the
    dvc.yaml command, is the out DVC expects (model.name can differ from the file name)."""
    import shlex

    from conftest import compose_cfg
    from reptopo.runtime.schema import validate_config

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]
    key = {"train": "train_dir", "activations": "activations_dir", "homology": "homology_dir"}[name]
    for model in sorted(p.stem for p in (REPO / "conf/model").glob("*.yaml")):
        ctx = {"experiment": "default", "item": {"model": model, "data": "fashion_mnist"}}
        overrides = shlex.split(interpolate(dvc["cmd"], ctx))[4:]
        out = interpolate(dvc["outs"][0], ctx)
        cfg = validate_config(compose_cfg(tmp_path, overrides))
        assert Path(cfg.paths[key]) == tmp_path / out, f"{model}: writes {cfg.paths[key]}, dvc expects {out}"


def test_the_compare_stage_writes_the_out_dvc_expects(tmp_path):
    """The default pipeline's compare: the folder composed from its command is its dvc.yaml out."""
    import shlex

    from conftest import compose_cfg
    from reptopo.runtime.schema import validate_config

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["compare"]
    ctx = {"experiment": "default", "compare_pair": {"a": "vgg_small", "b": "resnet_small"},
           "item": {"data": "fashion_mnist"}}
    cfg = validate_config(compose_cfg(tmp_path, shlex.split(interpolate(dvc["cmd"], ctx))[4:]))
    assert Path(cfg.paths.compare_dir) == tmp_path / interpolate(dvc["outs"][0], ctx)
    assert cfg.compare.run_a == "vgg_small-fashion_mnist" and cfg.compare.run_b == "resnet_small-fashion_mnist"
