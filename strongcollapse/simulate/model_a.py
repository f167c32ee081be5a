"""Model A Monte Carlo: ridge / min-norm regression on exactly rint(p·n) synthetic rows.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 3 set-up; THEORY.md §0, §6. One trial:

    x_i ~ N(0, Σ);  y_i = ⟨x_i, w1⟩ + ε_i (real, ε ~ N(0, σ1²))  or  ⟨x_i, w2⟩ + ε_i (synthetic, σ2²)
    ŵ = argmin (1/n)‖y − Xw‖² + λ‖w‖²   (λ = 0: OLS if n >= d, min-norm interpolator if n < d)
    E = (ŵ − w1)ᵀ Σ (ŵ − w1)            (exact population risk, no test set)

Two samplers give the same distribution (tested):

* ``direct``: draws X (n×d) and y. Ridge is solved by Cholesky in the smaller of the primal (d×d,
  n >= d) and the dual (n×n, n < d) form, so ridgeless is exact on both sides of n = d.
  Cost O(n d min(n, d)) per fit; the shape depends on n, so cells are bucketed by n.
* ``sufficient``: draws only the sufficient statistics XᵀX and Xᵀy of each group (real,
  synthetic) through the Bartlett decomposition (:mod:`strongcollapse.simulate.wishart`).
  Cost O(d³) per fit whatever n is, and n enters as a dynamic scalar, so all dataset sizes of a
  sweep share one compiled, vmapped function. Needs a solvable primal system: n >= d or λ > 0.

``method="auto"`` uses ``sufficient`` wherever n >= 2d (measured faster there; README, Benchmark)
and ``direct`` below, one shape bucket per distinct n.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from strongcollapse.problem import synthetic_count
from strongcollapse.simulate.engine import ChunkStoreLike, Plan, plan_chunks, run_tasks
from strongcollapse.simulate.keys import as_key, cell_ids, trial_key
from strongcollapse.simulate.wishart import bartlett_pair
from strongcollapse.validation import (
    broadcast_named,
    check_count,
    check_eigenvalues,
    check_in_range,
    check_nonnegative,
    check_vector,
    require_x64,
)

__all__ = ["SimulationResult", "linear", "METHODS"]

METHODS = ("auto", "direct", "sufficient")
# "auto" switches to sufficient statistics at n >= 2d: below, drawing X is cheaper (at n = d the
# direct path took 54 ms against 100 ms for 64 fits at d = 128; README, Benchmark).
SUFFICIENT_FROM = 2
DTYPES = ("float64", "float32")


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


# ---------------------------------------------------------------------------------------------
# One trial


def _cholesky_solve(matrix: Array, rhs: Array) -> Array:
    factor = jax.scipy.linalg.cho_factor(matrix, lower=True)
    return jax.scipy.linalg.cho_solve(factor, rhs[:, None])[:, 0]


def _risk(eigs: Array, w: Array, w1: Array) -> Array:
    return jnp.sum(eigs * (w - w1) ** 2)


def _direct_trial(key, eigs, w1, delta, task, *, n: int) -> Array:
    d = eigs.shape[0]
    dtype = eigs.dtype
    k_x, k_eps = jax.random.split(trial_key(key, task["cell"], task["trial"]))
    # Drawn once (barrier): x feeds several products and fusion would otherwise regenerate it.
    x = jax.lax.optimization_barrier(jax.random.normal(k_x, (n, d), dtype) * jnp.sqrt(eigs))
    synthetic = jnp.arange(n) < task["count"]
    y = x @ w1 + jnp.where(synthetic, x @ delta, 0.0)
    y = y + jax.random.normal(k_eps, (n,), dtype) * jnp.where(synthetic, task["sigma2"], task["sigma1"])
    ridge = n * task["lam"]
    if n >= d:  # primal: (XᵀX + nλ I) w = Xᵀy
        w = _cholesky_solve(x.T @ x + ridge * jnp.eye(d, dtype=dtype), x.T @ y)
    else:  # dual: w = Xᵀ(XXᵀ + nλ I)^-1 y, the min-norm interpolator at λ = 0
        w = x.T @ _cholesky_solve(x @ x.T + ridge * jnp.eye(n, dtype=dtype), y)
    return _risk(eigs, w, w1)


def _sufficient_trial(key, eigs, w1, delta, task) -> Array:
    d = eigs.shape[0]
    dtype = eigs.dtype
    (a1, u1), (a2, u2) = bartlett_pair(
        trial_key(key, task["cell"], task["trial"]), d, task["n"] - task["count"], task["count"], dtype
    )
    root = jnp.sqrt(eigs)
    # Whitened coordinates: X_g = Z_g Σ^1/2, so X_gᵀX_g = Σ^1/2 A_g A_gᵀ Σ^1/2 and
    # X_gᵀy_g = Σ^1/2 A_g (A_gᵀ Σ^1/2 w_g + σ_g u_g).
    rhs = a1 @ (a1.T @ (root * w1) + task["sigma1"] * u1)
    rhs = rhs + a2 @ (a2.T @ (root * (w1 + delta)) + task["sigma2"] * u2)
    gram = a1 @ a1.T + a2 @ a2.T
    system = root[:, None] * gram * root[None, :] + task["n"] * task["lam"] * jnp.eye(d, dtype=dtype)
    return _risk(eigs, _cholesky_solve(system, root * rhs), w1)


def _cast(arrays: tuple, tasks: dict, dtype: str) -> tuple[tuple, dict]:
    floats = tuple(jnp.asarray(a, dtype=dtype) for a in arrays)
    cast = {k: (v if k in ("cell", "trial") else v.astype(dtype)) for k, v in tasks.items()}
    return floats, cast


@partial(jax.jit, static_argnames=("n", "dtype"))
def _direct_batch(key, eigs, w1, delta, tasks, *, n: int, dtype: str) -> Array:
    (eigs, w1, delta), tasks = _cast((eigs, w1, delta), tasks, dtype)
    return jax.vmap(lambda t: _direct_trial(key, eigs, w1, delta, t, n=n))(tasks)


@partial(jax.jit, static_argnames=("dtype",))
def _sufficient_batch(key, eigs, w1, delta, tasks, *, dtype: str) -> Array:
    (eigs, w1, delta), tasks = _cast((eigs, w1, delta), tasks, dtype)
    return jax.vmap(lambda t: _sufficient_trial(key, eigs, w1, delta, t))(tasks)


def _bytes_per_trial(method: str, n: int, d: int, dtype: str) -> int:
    """Working-memory estimate of one trial (the arrays alive at its peak, with a factor 2 slack)."""
    item = np.dtype(dtype).itemsize
    if method == "sufficient":
        return 2 * item * (8 * d * d + 8 * d)
    small = min(n, d)
    return 2 * item * (2 * n * d + 2 * small * small + 4 * d + 2 * n)


# ---------------------------------------------------------------------------------------------
# Public entry point


def linear(
    key: Any,
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    trials: int = 100,
    method: str = "auto",
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    store: ChunkStoreLike | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    dtype: str = "float64",
) -> SimulationResult:
    """Monte Carlo estimate of the Model A test error on real data, per grid cell.

    Args:
        key: int seed or ``jax.random`` key. Trial t of a cell uses
            fold_in(fold_in(key, cell_id), t) with cell_id a hash of the cell's
            (n, p, lam, sigma1, sigma2): numbers do not depend on sweep order or chunking.
        eigs: (d,) eigenvalues of Σ, descending, positive.
        w1, delta: (d,) real teacher and synthetic shift, in Σ's eigenbasis.
        n: integer sample size(s) >= 1.
        p: synthetic fraction(s) in [0, 1]; exactly rint(p·n) rows are synthetic.
        lam: ridge λ >= 0 (0 = exact ridgeless).
        sigma1, sigma2: label-noise standard deviations >= 0.
        trials: independent trials per cell (>= 2 for a standard error).
        method: "auto", "direct" or "sufficient" (see the module docstring).
        chunk_size: trials per compiled batch; default from ``memory_budget`` (1 GiB).
        store: optional chunk store; finished chunks are saved and reused on a rerun.
        progress: optional callback progress(done, total, seconds).
        dtype: "float64" (default; needs x64 enabled) or "float32" (a deliberate choice).

    Returns:
        :class:`SimulationResult` with ``mean`` and ``sem`` of the broadcast shape of
        (n, p, lam, sigma1, sigma2).

    Raises:
        ValueError: malformed or out-of-range input, naming the parameter.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "float64":
        require_x64()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    base_key = as_key(key)
    eigs = check_eigenvalues("eigs", eigs)
    d = eigs.shape[0]
    w1 = check_vector("w1", w1, d)
    delta = check_vector("delta", delta, d)
    n = check_count("n", n, minimum=1)
    p = check_in_range("p", p, 0.0, 1.0)
    lam = check_nonnegative("lam", lam)
    sigma1 = check_nonnegative("sigma1", sigma1)
    sigma2 = check_nonnegative("sigma2", sigma2)
    trials = int(check_count("trials", trials, minimum=1))
    if chunk_size is not None:
        chunk_size = int(check_count("chunk_size", chunk_size, minimum=1))
    grid = broadcast_named(n=n, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    shape = grid[0].shape
    n_c, p_c, lam_c, s1_c, s2_c = (np.ravel(a) for a in grid)
    cells = n_c.size

    if method == "auto":
        use_sufficient = n_c >= SUFFICIENT_FROM * d
    elif method == "sufficient":
        bad = (n_c < d) & (lam_c == 0)
        if bad.any():
            raise ValueError(
                f"method='sufficient' needs n >= d = {d} or lam > 0 (a solvable primal system), "
                f"got n = {int(n_c[bad][0])} with lam = 0; use method='direct' or 'auto'"
            )
        use_sufficient = np.ones(cells, dtype=bool)
    else:
        use_sufficient = np.zeros(cells, dtype=bool)

    ids = cell_ids(n_c, p_c, lam_c, s1_c, s2_c)
    counts = synthetic_count(n_c, p_c)
    errors = np.empty((cells, trials), dtype=np.float64)
    key_bytes = np.asarray(jax.random.key_data(base_key)).tobytes()
    problem_bytes = eigs.tobytes() + w1.tobytes() + delta.tobytes()
    plans: list[Plan] = []
    started = time.perf_counter()

    def tasks_for(selected: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.repeat(selected, trials)
        return {
            "cell": ids[rows],
            "trial": np.tile(np.arange(trials, dtype=np.uint32), selected.size),
            "n": n_c[rows].astype(np.float64),
            "count": counts[rows],
            "lam": lam_c[rows],
            "sigma1": s1_c[rows],
            "sigma2": s2_c[rows],
        }

    groups: list[tuple[str, int, np.ndarray]] = []
    if use_sufficient.any():
        groups.append(("sufficient", 0, np.flatnonzero(use_sufficient)))
    for size in np.unique(n_c[~use_sufficient]):
        groups.append(("direct", int(size), np.flatnonzero(~use_sufficient & (n_c == size))))

    for kind, size, selected in groups:
        tasks = tasks_for(selected)
        plan = plan_chunks(
            selected.size * trials,
            _bytes_per_trial(kind, size, d, dtype),
            chunk_size=chunk_size,
            memory_budget=memory_budget,
        )
        plans.append(plan)
        if kind == "sufficient":
            batch = partial(_sufficient_batch, base_key, eigs, w1, delta, dtype=dtype)
        else:
            batch = partial(_direct_batch, base_key, eigs, w1, delta, n=size, dtype=dtype)
        tag = f"linear/{kind}/{size}/{dtype}/".encode() + key_bytes + problem_bytes
        values = run_tasks(batch, tasks, plan, tag=tag, store=store, progress=progress)
        errors[selected] = values.reshape(selected.size, trials)

    if not np.isfinite(errors).all():
        bad = np.flatnonzero(~np.isfinite(errors).all(axis=1))[0]
        raise FloatingPointError(
            f"non-finite test error in cell n={n_c[bad]:g}, p={p_c[bad]:g}, lam={lam_c[bad]:g} "
            "(singular system: ridgeless exactly at n = d?)"
        )
    mean = errors.mean(axis=1)
    sem = errors.std(axis=1, ddof=1) / np.sqrt(trials) if trials > 1 else np.full(cells, np.nan)
    return SimulationResult(
        mean=mean.reshape(shape),
        sem=sem.reshape(shape),
        errors=errors.reshape(shape + (trials,)),
        trials=trials,
        method=np.where(use_sufficient, "sufficient", "direct").reshape(shape),
        dtype=dtype,
        plans=tuple(plans),
        seconds=time.perf_counter() - started,
    )
