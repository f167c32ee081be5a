"""Run outputs: a folder per run with a tidy CSV, ``meta.json``, figures and a chunk store.

Layout of ``<out>/``::

    results.csv     one row per grid cell (parameters, theory, simulation mean, s.e., trials, z)
    meta.json       resolved config and its hash, seed, versions, x64, backend and devices,
                    timings, solver convergence, agreement summary
    <name>.png/.pdf the figure
    chunks/         finished Monte Carlo chunks (``.npy``, written atomically); a rerun with the
                    same config finds them and recomputes nothing

Nothing is pickled: chunks are plain float64 ``.npy`` files read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import platform
import sys
import tempfile
from typing import Any, Iterable, Mapping

import jax
import jaxlib
import numpy as np
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["ChunkStore", "atomic_write_text", "write_csv", "write_json", "environment", "to_jsonable"]


def atomic_write_text(path: pathlib.Path, text: str) -> None:
    """Writes a file so that readers never see a partial one (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


class ChunkStore:
    """Content-addressed store of finished Monte Carlo chunks (see simulate.engine.run_tasks)."""

    def __init__(self, folder: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.folder = pathlib.Path(folder)
        if not read_only:  # a non-writing process of a multi-process run creates nothing
            self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.writes = 0

    def _path(self, key: str) -> pathlib.Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The stored chunk, or None if absent (or unreadable, e.g. from a killed writer)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        self.hits += 1
        return values

    def put(self, key: str, values: np.ndarray) -> None:
        """Saves a chunk atomically."""
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.asarray(values, dtype=np.float64), allow_pickle=False)
            os.replace(tmp, self._path(key))
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        self.writes += 1


def to_jsonable(value: Any) -> Any:
    """Converts NumPy/JAX scalars and arrays (recursively) to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(value).tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def write_csv(path: pathlib.Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Writes tidy rows (all with the same keys) atomically; returns the number of rows."""
    rows = list(rows)
    if not rows:
        raise ParameterError("no rows to write")
    fields = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # repr(float(v)): full precision, and a NumPy scalar written as 0.1, not "np.float64(0.1)".
        writer.writerow(
            {k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}
        )
    atomic_write_text(path, buffer.getvalue())
    return len(rows)


def environment() -> dict[str, Any]:
    """Versions, precision and devices, for meta.json."""
    import matplotlib

    import strongcollapse

    return {
        "strongcollapse": strongcollapse.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "x64": bool(jax.config.read("jax_enable_x64")),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    """Writes JSON atomically, converting arrays and non-finite floats."""
    atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
