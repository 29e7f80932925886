"""Where the apps find conf/, how config paths resolve, and whether Hydra is running us."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

_PACKAGE_CONF = Path(__file__).resolve().parents[3] / "conf"


def config_dir() -> str:
    """The conf/ directory the apps read: $REPTOPO_CONF, else ./conf, else the source tree's.

    Preferring ./conf makes a copy of the project (e.g. a DVC pipeline in another checkout)
    use its own configs even when the package is installed from elsewhere.
    """
    env = os.environ.get("REPTOPO_CONF")
    if env:
        return str(Path(env).resolve())
    local = Path.cwd() / "conf"
    if (local / "config.yaml").is_file():
        return str(local)
    return str(_PACKAGE_CONF)


def abspath(path: str | os.PathLike) -> Path:
    """Absolute path of a config path (relative ones resolve against the working directory)."""
    return Path(os.path.expanduser(str(path))).resolve()


def config_to_dict(cfg: DictConfig) -> dict:
    """Resolved plain-dict copy of a config (for saving and tracking)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def hydra_config():
    """The running Hydra app's config (``HydraConfig.get()``), or None under the compose API,
    in a notebook or without Hydra: the one place that asks "are we under Hydra?"."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def in_multirun() -> bool:
    """Whether this process is a job of a Hydra multirun (``-m``)."""
    from hydra.types import RunMode

    hc = hydra_config()
    return hc is not None and hc.mode == RunMode.MULTIRUN


def paper_experiments(conf: str | os.PathLike | None = None) -> dict[str, str]:
    """The paper experiments, derived from conf/experiment/: every ``<name>_quick.yaml`` (its
    ``_paper`` twin runs the same experiment at the paper's scale) but the shared ``scale_quick``.
    Returns {name: title} in name order; the title is the file's ``title:`` key."""
    folder = Path(conf or config_dir()) / "experiment"
    names = sorted(p.name[: -len("_quick.yaml")] for p in folder.glob("*_quick.yaml") if p.name != "scale_quick.yaml")
    return {name: str(OmegaConf.load(folder / f"{name}_quick.yaml").get("title") or name) for name in names}


def compose_config(overrides: list[str]) -> DictConfig:
    """The stages' config composed from :func:`config_dir` with ``overrides`` (Hydra's compose API;
    inside a running app as well as outside one). The schema node must be registered
    (:func:`reptopo.runtime.schema.register_config_store`, as every stage app does on import)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose("config", overrides=overrides)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=overrides)
