"""What every Monte Carlo entry point shares: validated sweeps, task tables, results.

A *sweep* is the broadcast grid of a simulation's parameters. Its *data cells* are the distinct
(n, p, λ, σ1, σ2): one data cell draws one training set per trial, and a Model B sweep fits every
requested width to that same training set (common random numbers along the width axis). Each data
cell's key is fold_in(key, cell_id) with cell_id a hash of its own parameters (keys.py), so a
cell's numbers never depend on what else is in the sweep.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from strongcollapse.vocabulary.problem import synthetic_count
from strongcollapse.simulate.engine import Plan
from strongcollapse.simulate.keys import as_key, cell_ids
from strongcollapse.vocabulary.validation import (
    ParameterError,
    broadcast_named,
    check_count,
    check_eigenvalues,
    check_in_range,
    check_nonnegative,
    check_vector,
    require_x64,
)

__all__ = ["SimulationResult", "Sweep", "prepare_sweep", "cholesky_solve", "risk", "DTYPES", "METHODS"]

DTYPES = ("float64", "float32")
METHODS = ("auto", "direct", "sufficient")


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """Monte Carlo test error per grid cell; arrays have the broadcast shape of the parameters.

    ``errors`` holds every trial (shape + (trials,)); ``mean`` and ``sem`` (standard error of the
    mean, ddof = 1) summarise them.
    """

    mean: np.ndarray
    sem: np.ndarray
    errors: np.ndarray
    trials: int
    method: np.ndarray  # "direct" or "sufficient" per cell
    dtype: str
    plans: tuple[Plan, ...]
    seconds: float

    def zscore(self, theory: Any) -> np.ndarray:
        """(mean − theory)/sem per cell."""
        return (self.mean - np.asarray(theory)) / self.sem


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated, flattened parameter grid (one row per grid cell)."""

    key: jax.Array
    eigs: np.ndarray
    w1: np.ndarray
    delta: np.ndarray
    shape: tuple[int, ...]
    columns: dict[str, np.ndarray]  # n, p, lam, sigma1, sigma2 (and m for Model B), flattened
    ids: np.ndarray  # data-cell id per row (hash of n, p, lam, sigma1, sigma2)
    counts: np.ndarray  # synthetic rows per row: rint(p·n)
    trials: int
    dtype: str

    @property
    def d(self) -> int:
        return int(self.eigs.shape[0])

    @property
    def rows(self) -> int:
        return int(self.ids.size)

    def tag(self, label: str) -> bytes:
        """Bytes fixing everything a chunk's numbers depend on besides its tasks (store key)."""
        key_bytes = np.asarray(jax.random.key_data(self.key)).tobytes()
        return (
            f"{label}/{self.dtype}/".encode()
            + key_bytes
            + self.eigs.tobytes()
            + self.w1.tobytes()
            + self.delta.tobytes()
        )

    def tasks(self, rows: np.ndarray, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """One task per (row, trial), rows in the given order, trials innermost."""
        repeat = np.repeat(rows, self.trials)
        c = self.columns
        table = {
            "cell": self.ids[repeat],
            "trial": np.tile(np.arange(self.trials, dtype=np.uint32), rows.size),
            "n": c["n"][repeat].astype(np.float64),
            "count": self.counts[repeat],
            "lam": c["lam"][repeat],
            "sigma1": c["sigma1"][repeat],
            "sigma2": c["sigma2"][repeat],
        }
        table.update({k: np.repeat(v, self.trials) for k, v in extra.items()})
        return table

    def result(
        self, errors: np.ndarray, method: np.ndarray, plans: list[Plan], seconds: float
    ) -> SimulationResult:
        """Checks finiteness and summarises (rows, trials) errors into a :class:`SimulationResult`."""
        if not np.isfinite(errors).all():
            bad = np.flatnonzero(~np.isfinite(errors).all(axis=1))[0]
            where = ", ".join(f"{k}={v[bad]:g}" for k, v in self.columns.items())
            raise FloatingPointError(f"non-finite test error in cell {where} (a singular ridgeless system?)")
        mean = errors.mean(axis=1)
        sem = (
            errors.std(axis=1, ddof=1) / np.sqrt(self.trials)
            if self.trials > 1
            else np.full(self.rows, np.nan)
        )
        return SimulationResult(
            mean=mean.reshape(self.shape),
            sem=sem.reshape(self.shape),
            errors=errors.reshape(self.shape + (self.trials,)),
            trials=self.trials,
            method=method.reshape(self.shape),
            dtype=self.dtype,
            plans=tuple(plans),
            seconds=seconds,
        )


def prepare_sweep(
    key: Any,
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    trials: Any,
    dtype: str,
    method: str,
    **parameters: Any,
) -> Sweep:
    """Validates a simulation's inputs and flattens the broadcast grid of ``parameters``.

    ``parameters`` holds n, p, lam, sigma1, sigma2 and optionally m (model width), in that order of
    broadcasting. Raises ValueError naming the offending parameter and its allowed range.
    """
    if dtype not in DTYPES:
        raise ParameterError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "float64":
        require_x64()
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    base_key = as_key(key)
    eigs = check_eigenvalues("eigs", eigs)
    d = eigs.shape[0]
    w1 = check_vector("w1", w1, d)
    delta = check_vector("delta", delta, d)
    checks = {
        "n": lambda v: check_count("n", v, minimum=1),
        "m": lambda v: check_count("m", v, minimum=1),
        "p": lambda v: check_in_range("p", v, 0.0, 1.0),
        "lam": lambda v: check_nonnegative("lam", v),
        "sigma1": lambda v: check_nonnegative("sigma1", v),
        "sigma2": lambda v: check_nonnegative("sigma2", v),
    }
    checked = {name: checks[name](value) for name, value in parameters.items()}
    trials = int(check_count("trials", trials, minimum=1))
    grid = broadcast_named(**checked)
    columns = {name: np.ravel(a) for name, a in zip(checked, grid)}
    data = [columns[k] for k in ("n", "p", "lam", "sigma1", "sigma2")]
    return Sweep(
        key=base_key,
        eigs=eigs,
        w1=w1,
        delta=delta,
        shape=grid[0].shape,
        columns=columns,
        ids=cell_ids(*data),
        counts=synthetic_count(columns["n"], columns["p"]),
        trials=trials,
        dtype=dtype,
    )


def cholesky_solve(matrix: Array, rhs: Array) -> Array:
    """matrix⁻¹ rhs for symmetric positive definite ``matrix`` (rhs a vector or a matrix).

    The factorisation reads only the lower triangle, so the input is not re-symmetrised (jnp's
    default adds a transposed copy, a measurable cost at d = 128; our matrices are symmetric by
    construction up to rounding).
    """
    factor = jax.lax.linalg.cholesky(matrix, symmetrize_input=False)
    columns = rhs[:, None] if rhs.ndim == 1 else rhs
    z = jax.lax.linalg.triangular_solve(factor, columns, left_side=True, lower=True)
    x = jax.lax.linalg.triangular_solve(factor, z, left_side=True, lower=True, transpose_a=True)
    return x[:, 0] if rhs.ndim == 1 else x


def risk(eigs: Array, error: Array) -> Array:
    """Exact population risk ‖ŵ − w1‖²_Σ = Σ_k e_k (ŵ − w1)_k² of an error vector (or columns)."""
    if error.ndim == 1:
        return jnp.sum(eigs * error**2)
    return jnp.sum(eigs[:, None] * error**2, axis=0)
