"""File helpers shared by the stages: atomic output folders and files, JSON and tables read with
one clear error.

Every stage writes its outputs into a temporary sibling directory and renames it into place
only when everything succeeded, so a crash (or SIGKILL) never leaves a half-written output
that DVC or the next stage could take as complete.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``final`` atomically on success.

    On an exception the temporary directory is removed and ``final`` is left untouched
    (an existing older output stays as it was).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_entries(parent: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder for several outputs of ``parent`` (folders and files) written together.

    Once the block succeeds, each entry written in the staging folder replaces the same-named
    entry of ``parent``, by renames done back to back after everything is written; on an
    exception nothing in ``parent`` changes. (A group of renames is not one atomic step, but no
    computation can fail between them, so the outputs never mix two runs.)
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent / "staging")
    staging = parent / f".staging.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for entry in sorted(staging.iterdir()):
        final = parent / entry.name
        old = None
        if final.exists():
            old = parent / f".{entry.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(entry, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    staging.rmdir()


@contextlib.contextmanager
def output_lock(final: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on output ``final`` for the block (``fcntl.flock`` on the file
    ``.<name>.lock`` beside it; released when the holder exits, however it exits).

    Parallel jobs that need the same output (E5's attack strengths, one checkpoint per seed) take
    turns: the second finds it complete instead of computing it again. The lock file stays: removing
    it would let a third job lock a new file while the second still holds the old one."""
    import fcntl

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temps(final: Path) -> None:
    """Delete temp folders or files next to ``final`` left by a writer that was killed (SIGKILL)."""
    for p in final.parent.glob(f".{final.name}.*-*"):
        kind, _, rest = p.name[len(final.name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind == "old" or (kind == "tmp" and pid.isdigit() and not _pid_alive(int(pid))):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (numpy scalars and arrays converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serializable: {type(o).__name__}")

    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False, default=default) + "\n")


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` that replaces it (rename) once the block succeeds;
    on an exception the temporary file is removed and ``final`` is left untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write a small JSON file atomically (temp file in the same folder, then rename)."""
    with atomic_file(path) as tmp:
        write_json(tmp, obj)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file (a report) atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path: str | os.PathLike, df) -> None:
    """Write a DataFrame as CSV (no index) atomically."""
    with atomic_file(path) as tmp:
        df.to_csv(tmp, index=False)


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read JSON, turning a missing or corrupt file into one clear error."""
    from reptopo.runtime.errors import ReptopoError

    path = Path(path)
    if not path.is_file():
        raise ReptopoError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReptopoError(f"{what} {path} is not valid JSON ({exc})") from None


def read_table(path: str | os.PathLike, what: str = "table", *, columns: tuple[str, ...] = (),
               header: bool = True, hint: str = ""):
    """Read a CSV (``.csv[.gz|.bz2]``) or ``.parquet`` table as a DataFrame, turning a missing or
    unreadable file, or missing ``columns``, into one clear error naming the file. ``header=False``:
    the CSV has no header row (columns are numbered)."""
    import pandas as pd

    from reptopo.runtime.errors import ReptopoError

    path = Path(path)
    if not path.is_file():
        raise ReptopoError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    parquet = path.suffix == ".parquet"
    try:
        df = pd.read_parquet(path) if parquet else pd.read_csv(path, header="infer" if header else None)
    except Exception as exc:  # pandas, pyarrow, gzip/bz2 and OS errors alike: the file is unreadable
        detail = (str(exc).splitlines() or [""])[0]
        raise ReptopoError(f"{what}: {path} is not a readable {'parquet' if parquet else 'CSV'} file "
                           f"({type(exc).__name__}: {detail})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ReptopoError(f"{what}: {path} lacks column(s) {missing}; expected {list(columns)}, "
                           f"found {list(df.columns)}")
    return df


def require_dir(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Return ``path`` if it is a directory, else raise a ReptopoError with ``hint``."""
    from reptopo.runtime.errors import ReptopoError

    path = Path(path)
    if not path.is_dir():
        raise ReptopoError(f"{what} not found: {path} ({hint})")
    return path


def load_layer(act_dir, layer: dict, n_expected: int) -> np.ndarray:
    """One probed layer's activations ``act_dir/<layer["file"]>``, (n_expected, features), as stored;
    a missing, truncated or mis-shaped file is one clear error."""
    from reptopo.runtime.errors import ReptopoError

    path = Path(act_dir) / layer["file"]
    if not path.is_file():
        raise ReptopoError(f"activation file missing: {path} (layer {layer['name']!r}); rerun the activations stage")
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ReptopoError(f"activation file {path} (layer {layer['name']!r}) is truncated or corrupt: {exc}") from None
    if X.ndim != 2 or X.shape[0] != n_expected:
        raise ReptopoError(
            f"activation file {path} (layer {layer['name']!r}) has shape {X.shape}; expected ({n_expected}, features)"
        )
    return X
