"""Shared fixtures: Hydra configs composed against a temp project root, tiny real runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
FMNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

# Keep torch and BLAS to the cores CI has; stages read OMP_NUM_THREADS.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")


def compose_cfg(root: Path, overrides: list[str] | None = None):
    """The stages' config, composed like the CLI does, with every path under ``root``."""
    from hydra import compose, initialize_config_dir

    from reptopo.runtime.schema import register_config_store

    register_config_store()  # what the stage apps do on import
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"paths.root={root}", *(overrides or [])])


TINY = ["experiment=tiny", "data=digits"]


@pytest.fixture
def cfg_factory(tmp_path):
    def make(*overrides: str, root: Path | None = None):
        return compose_cfg(root or tmp_path, [*TINY, *overrides])

    return make


def run_cli(module: str, *overrides: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m reptopo <module> overrides...`` as a user would, capturing output."""
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reptopo", module, *overrides],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600,
    )


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """A real tiny run (digits, resnet_small, 1 epoch) through train and activations, tracked in SQLite."""
    from reptopo.stages import activations, train

    root = tmp_path_factory.mktemp("digits_run")
    cfg = compose_cfg(root, TINY)
    metrics = train.run(cfg)
    meta = activations.run(cfg)
    return root, cfg, metrics, meta


# ---------------------------------------------------------------- the real DVC pipeline

PROJECT_FILES = ["conf", "src", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore", "pyproject.toml"]
# `make repro` = `dvc repro aggregate compare`: train -> activations -> homology -> aggregate, and compare
DEFAULT_PIPELINE = ["aggregate", "compare"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sh(args, cwd, env, check=True):
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 200
        # A real figure has ink: not a single flat colour.
        assert len(set(im.convert("L").getdata())) > 10


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory):
    if not FMNIST_ROOT.is_dir():
        pytest.skip("Debian dataset-fashion-mnist not installed (make setup installs it)")
    repo = tmp_path_factory.mktemp("pipeline") / "proj"
    repo.mkdir()
    for rel in PROJECT_FILES:
        src = REPO / rel
        dst = repo / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    (repo / "params.yaml").write_text(
        "experiment: tiny\nmodels: [resnet_small, vgg_small]\ndatasets: [fashion_mnist]\n"
        "compare_pair:\n  a: vgg_small\n  b: resnet_small\npaper:\n  scale: quick\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    _sh(["git", "init", "-q"], repo, env)
    _sh(["git", "add", "-A"], repo, env)
    _sh(["git", "commit", "-qm", "pipeline under test"], repo, env)
    dvc = str(Path(sys.executable).parent / "dvc")
    # The default pipeline (make repro); the paper stages have their own tests.
    first = _sh([dvc, "repro", *DEFAULT_PIPELINE], repo, env)
    second = _sh([dvc, "repro", *DEFAULT_PIPELINE], repo, env)
    return repo, env, dvc, first, second
