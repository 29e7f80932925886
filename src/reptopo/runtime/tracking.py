"""MLflow tracking for the stages: one run per stage invocation, tagged and comparable.

The default store is an embedded SQLite file with an explicit artifact folder, both absolute
(MLflow's own defaults depend on the working directory). Curves go through ``log_batch``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from omegaconf import DictConfig, OmegaConf

from reptopo.runtime.config import hydra_config
from reptopo.runtime.errors import ReptopoError

log = logging.getLogger("reptopo.tracking")

_BATCH = 1000  # MLflow's log_batch limit on metrics per request


def tracking_uri(cfg: DictConfig) -> str:
    """The tracking URI: ``tracking.uri`` if set, else ``sqlite:///<abs tracking.db_path>``."""
    if cfg.tracking.get("uri"):
        return str(cfg.tracking.uri)
    return "sqlite:///" + str(Path(cfg.tracking.db_path).expanduser().resolve())


def git_commit(root: str | Path = ".") -> str:
    """The checked-out git commit (suffix ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _retry(fn, *args, attempts: int = 8, **kwargs):
    """Call ``fn``, retrying with backoff while SQLite reports a lock (concurrent writers)."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # MlflowException wraps sqlalchemy's OperationalError
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = str(d)[:6000]
    return out


class RunLogger:
    """Logs to one MLflow run through a client (no global active-run state)."""

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        self._batch(metrics=items)

    def log_series(self, key: str, values: Sequence[float], steps: Sequence[int] | None = None) -> None:
        """One metric as a curve: value i at step ``steps[i]`` (default i)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        steps = range(len(values)) if steps is None else steps
        self._batch(metrics=[Metric(key, float(v), now, int(s)) for v, s in zip(values, steps)])

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = _flatten(params)
        items = [Param(k, v) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            _retry(self.client.log_batch, self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        _retry(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_dict(self, obj: Any, name: str) -> None:
        _retry(self.client.log_dict, self.run_id, obj, name)

    def _batch(self, metrics: list) -> None:
        for i in range(0, len(metrics), _BATCH):
            _retry(self.client.log_batch, self.run_id, metrics=metrics[i : i + _BATCH])


class NullRunLogger(RunLogger):
    """Stand-in when tracking is disabled: every call does nothing."""

    def __init__(self) -> None:
        super().__init__(None, "")

    def log_metrics(self, *a, **k) -> None: ...
    def log_series(self, *a, **k) -> None: ...
    def log_params(self, *a, **k) -> None: ...
    def set_tags(self, *a, **k) -> None: ...
    def log_artifact(self, *a, **k) -> None: ...
    def log_dict(self, *a, **k) -> None: ...


# MLflow 3 opens an experiment without this tag in its GenAI view (traces, token usage, cost),
# where the runs and their PHdim charts hide behind "Model training".
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

# Stages whose one run covers many (model, data) runs: named after the experiment, not a run.
CROSS_RUN_STAGES = ("aggregate",)


def get_or_create_experiment(client, name: str, artifact_root: str | None) -> str:
    """Experiment id for ``name``, creating it (with an explicit artifact location and
    ``EXPERIMENT_TAGS``) if needed; an existing experiment without the tags gets them."""
    exp = _retry(client.get_experiment_by_name, name)
    if exp is not None:
        for key, value in EXPERIMENT_TAGS.items():
            if exp.tags.get(key) is None:
                _retry(client.set_experiment_tag, exp.experiment_id, key, value)
        return exp.experiment_id
    location = None
    if artifact_root:
        location = (Path(artifact_root).expanduser().resolve()).as_uri()
    try:
        return _retry(client.create_experiment, name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except Exception as exc:  # another process created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise exc
        return exp.experiment_id


def _hydra_overrides() -> str | None:
    """This app's command-line overrides (None under the compose API or without Hydra)."""
    hc = hydra_config()
    return " ".join(hc.overrides.task) if hc is not None else None


PARENT_ENV = "REPTOPO_MLFLOW_PARENT_RUN_ID"


def run_tags(cfg: DictConfig, stage: str) -> dict[str, str]:
    """Tags of every run: what was run (model, dataset, seed, activation, stage), from which
    commit and overrides, and its place in a sweep (parent run) or a DVC experiment."""
    tags = {
        "stage": stage,
        "model": cfg.model.name,
        "dataset": cfg.data.name,
        "run_name": cfg.run_name,
        "experiment": cfg.experiment_name,
        "seed": str(cfg.seed),
        "activation": str(cfg.model.get("activation") or "default"),
        "git_commit": git_commit(cfg.paths.root),
    }
    overrides = _hydra_overrides()
    if overrides is not None:
        tags["hydra_overrides"] = overrides
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    return tags


def open_client(cfg: DictConfig):
    """(MlflowClient, experiment id) for ``cfg.tracking``; creates the store and experiment."""
    from mlflow.tracking import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri(cfg)
    try:
        client = MlflowClient(tracking_uri=uri)
        return client, get_or_create_experiment(client, cfg.tracking.experiment, cfg.tracking.get("artifact_root"))
    except Exception as exc:  # MlflowException, sqlalchemy or requests errors: one message
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ReptopoError(
            f"MLflow tracking store {uri} cannot be opened (tracking.uri / tracking.db_path): "
            f"{first[:300]}; fix the path or server, or run with tracking=none"
        ) from None


def find_finished_run(cfg: DictConfig, stage: str, fp: str) -> str | None:
    """Id of a FINISHED run of ``stage`` for ``cfg.run_name`` with fingerprint ``fp``, if any."""
    client, exp_id = open_client(cfg)
    runs = _retry(client.search_runs, [exp_id],
                  f"tags.stage = '{stage}' and tags.run_name = '{cfg.run_name}' and tags.fingerprint = '{fp}' "
                  "and attributes.status = 'FINISHED'", max_results=1)
    return runs[0].info.run_id if runs else None


@contextlib.contextmanager
def start_run(cfg: DictConfig, stage: str, extra_tags: dict[str, str] | None = None,
              name: str | None = None) -> Iterator[RunLogger]:
    """Open an MLflow run for ``stage`` of ``cfg.run_name`` (``<run_name>/<stage>``; the aggregate
    run: ``<experiment_name>/aggregate``; ``name`` for a run over several runs, such as a
    comparison); marks it FAILED if the body raises.

    The resolved config is logged as flattened params and as ``config.yaml``.
    """
    if not cfg.tracking.get("enabled", True):
        yield NullRunLogger()
        return
    client, exp_id = open_client(cfg)
    tags = run_tags(cfg, stage) | (extra_tags or {})
    if stage in CROSS_RUN_STAGES or name is not None:  # not one (model, data) run's: its tags would mislead
        name = name or cfg.experiment_name
        tags.update(run_name=name, model="(all)", dataset="(all)")
    name = name or cfg.run_name
    run = _retry(client.create_run, exp_id, run_name=f"{name}/{stage}", tags=tags)
    logger = RunLogger(client, run.info.run_id)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    logger.log_params(resolved)
    logger.log_dict(resolved, "config.yaml")
    try:
        yield logger
    except BaseException as exc:
        with contextlib.suppress(Exception):
            logger.set_tags({"error": f"{type(exc).__name__}: {exc}"[:5000]})
            _retry(client.set_terminated, run.info.run_id, "FAILED")
        raise
    _retry(client.set_terminated, run.info.run_id, "FINISHED")


@contextlib.contextmanager
def stage_run(cfg: DictConfig, stage: str, tracker: RunLogger | None = None) -> Iterator[RunLogger]:
    """Log into ``tracker`` when given (a pipeline job's run), else into a new run for ``stage``."""
    if tracker is not None:
        yield tracker
        return
    with start_run(cfg, stage) as new:
        yield new




def load_layer_metrics(uri: str, experiment: str, stages: Sequence[str] = ("homology", "pipeline")):
    """Every finished run of ``experiment`` with per-layer results, as one long DataFrame.

    One row per (run, layer): run_id, run_name, model, dataset, seed, activation, stage, layer
    (name), probe (index), depth, and the per-layer series (phdim, L0/L1 local/global, TwoNN, MLE)
    read from the full metric histories (``search_runs`` alone only has the last values).
    """
    import json

    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} at {uri}")
    runs = [r for stage in stages for r in client.search_runs(
        [exp.experiment_id], f"tags.stage = '{stage}' and attributes.status = 'FINISHED'")]
    rows = []
    for run in runs:
        tags = run.data.tags
        series = {}
        # The homology stage names the series it logged (tag layer_series); phdim at least.
        for key in json.loads(tags.get("layer_series", '["phdim"]')):
            if key in run.data.metrics:
                series[key] = dict(sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)))
        if "phdim" not in series:
            continue
        names = json.loads(tags.get("probe_layers", "[]"))
        n_probes = len(series["phdim"])
        for step in series["phdim"]:
            rows.append({
                "run_id": run.info.run_id, "run_name": tags.get("run_name"), "model": tags.get("model"),
                "dataset": tags.get("dataset"), "seed": tags.get("seed"), "activation": tags.get("activation"),
                "stage": tags.get("stage"), "probe": step,
                "layer": names[step] if step < len(names) else f"probe_{step}",
                "depth": (step + 1) / n_probes,
                **{k: v.get(step) for k, v in series.items()},
            })
    return pd.DataFrame(rows).sort_values(["run_name", "probe"]).reset_index(drop=True) if rows else pd.DataFrame(rows)


def load_betti_curves(uri: str, run_id: str):
    """Full Betti curves of one run as a long DataFrame: layer, dim, step, filtration, betti."""
    import json

    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    grid = json.loads(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/betti_grid.json"))["values"]
    rows = []
    for key in run.data.metrics:
        if key.startswith("betti") and "/" in key:
            dim, layer = int(key[5 : key.index("/")]), key.split("/", 1)[1]
            for m in client.get_metric_history(run_id, key):
                rows.append({"layer": layer, "dim": dim, "step": m.step, "filtration": grid[m.step], "betti": m.value})
    return pd.DataFrame(rows).sort_values(["layer", "dim", "step"]).reset_index(drop=True)


def load_comparisons(uri: str, experiment: str) -> dict[str, dict]:
    """Every finished compare run of ``experiment``: run name -> {"run_id", "run_a", "run_b",
    "cka": layer x layer DataFrame (rows: A's layers), "diagonal": the same-relative-depth table
    (with ``rtd`` where measured), "summary": the logged scalars}, read from its artifacts."""
    import io

    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} at {uri}")
    out = {}
    for run in client.search_runs([exp.experiment_id], "tags.stage = 'compare' and attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time ASC"]):
        read = lambda name: pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{name}")))  # noqa: E731
        out[run.info.run_name] = {"run_id": run.info.run_id, "run_a": run.data.tags.get("run_a"),
                                  "run_b": run.data.tags.get("run_b"), "cka": read("cka.csv").set_index("layer_a"),
                                  "diagonal": read("diagonal.csv"), "summary": dict(run.data.metrics)}
    return out
