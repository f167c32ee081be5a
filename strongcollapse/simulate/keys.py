"""Deterministic random keys per grid cell and trial (DESIGN.md §4).

Every Monte Carlo trial draws from ``fold_in(fold_in(key, cell_id), trial)``, where ``cell_id`` is
a hash of the cell's own parameters, not its position in the sweep. A cell therefore gets the same
numbers whatever else is in the sweep, in whatever order, chunk size or device count. Split chains
are never used: they would tie a cell's numbers to the order of the loop.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["as_key", "cell_ids", "trial_key"]


def as_key(key: Any) -> jax.Array:
    """Accepts an int seed, a new-style typed key or a legacy uint32[2] key; returns a typed key."""
    if isinstance(key, (int, np.integer)):
        if key < 0:
            raise ParameterError(f"seed must be an integer >= 0, got {key}")
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    try:
        return jax.random.wrap_key_data(np.asarray(key, dtype=np.uint32))
    except Exception:  # noqa: BLE001 - any failure means the argument is not a key
        raise ParameterError(f"key must be an int seed or a jax.random key, got {key!r}") from None


def cell_ids(*columns: np.ndarray) -> np.ndarray:
    """uint32 hash of each row of float64 parameter columns (all of the same length)."""
    table = np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1))
    ids = [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=4).digest(), "little") for row in table]
    return np.asarray(ids, dtype=np.uint32)


def trial_key(key: jax.Array, cell_id: jax.Array, trial: jax.Array) -> jax.Array:
    """The key of one trial of one cell: fold_in(fold_in(key, cell_id), trial)."""
    return jax.random.fold_in(jax.random.fold_in(key, cell_id), trial)
