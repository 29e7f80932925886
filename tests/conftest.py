"""Shared fixtures: Hydra configs composed against a temp project root, tiny real runs."""
from __future__ import annotations

import os
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

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"paths.root={root}", *(overrides or [])])


TINY = ["experiment=tiny", "data=digits"]


@pytest.fixture
def cfg_factory(tmp_path):
    def make(*overrides: str, root: Path | None = None):
        return compose_cfg(root or tmp_path, [*TINY, *overrides])

    return make


def run_cli(module: str, *overrides: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m reptopo.<module> overrides...`` as a user would, capturing output."""
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", f"reptopo.{module}", *overrides],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600,
    )


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """A real tiny run (digits, resnet_small, 1 epoch) through train and activations, tracked in SQLite."""
    from reptopo import activations, train

    root = tmp_path_factory.mktemp("digits_run")
    cfg = compose_cfg(root, TINY)
    metrics = train.run(cfg)
    meta = activations.run(cfg)
    return root, cfg, metrics, meta
