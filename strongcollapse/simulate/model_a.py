"""Model A Monte Carlo: ridge / min-norm regression on exactly rint(p·n) synthetic rows.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 3 set-up; THEORY.md §0, §6. One trial:

    x_i ~ N(0, Σ);  y_i = ⟨x_i, w1⟩ + ε_i (real, ε ~ N(0, σ1²))  or  ⟨x_i, w2⟩ + ε_i (synthetic, σ2²)
    ŵ = argmin (1/n)‖y − Xw‖² + λ‖w‖²   (λ = 0: OLS if n >= d, min-norm interpolator if n < d)
    E = (ŵ − w1)ᵀ Σ (ŵ − w1)            (exact population risk, no test set)

Two samplers give the same distribution (tested):

* ``direct``: draws X (n×d) and y. Ridge is solved by Cholesky in the smaller of the primal (d×d,
  n >= d) and the dual (n×n, n < d) form, so ridgeless is exact on both sides of n = d.
  Cost O(n d min(n, d)) per fit; the shape depends on n, so cells are bucketed by n.
* ``sufficient``: draws only the sufficient statistics XᵀX and Xᵀ(y − X w1), exactly, through one
  Bartlett factor and a rank-2 correction (:mod:`strongcollapse.simulate.wishart`). Cost O(d³)
  per fit whatever n is, and n enters as a dynamic scalar, so all dataset sizes of a sweep share
  one compiled, vmapped function. Needs a solvable primal system (n >= d or λ > 0) and n >= 2.

``method="auto"`` uses ``sufficient`` wherever n >= d (from n = d on it is the faster one; README,
Benchmark) and ``direct`` below, one shape bucket per distinct n.

Covariate shift (``eigs2=``, THEORY_SHIFT_GENERATIONS.md §1.1): synthetic rows from N(0, Σ2) instead,
through the samplers of :mod:`strongcollapse.simulate.shift`; without it nothing here changes.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from strongcollapse.simulate import shift
from strongcollapse.simulate.devices import device_mesh
from strongcollapse.simulate.engine import ChunkStoreLike, plan_chunks, run_tasks
from strongcollapse.simulate.keys import trial_key
from strongcollapse.simulate.samplers import Frame, draw_data, draw_statistics
from strongcollapse.simulate.sweep import SimulationResult, cholesky_solve, prepare_sweep, risk
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["SimulationResult", "linear", "use_sufficient"]

# "auto" switches to sufficient statistics at n >= d: it draws d²/2 normals against the direct
# path's n·d, and its d³ work is the direct path's n·d² at n = d (README, Benchmark).
SUFFICIENT_FROM = 1


# ---------------------------------------------------------------------------------------------
# One trial


def _direct_trial(key, eigs, w1, delta, task, *, n: int) -> Array:
    d = eigs.shape[0]
    x, y = draw_data(trial_key(key, task["cell"], task["trial"]), eigs, w1, delta, task, n)
    ridge = n * task["lam"]
    if n >= d:  # primal: (XᵀX + nλ I) w = Xᵀy
        w = cholesky_solve(x.T @ x + ridge * jnp.eye(d, dtype=eigs.dtype), x.T @ y)
    else:  # dual: w = Xᵀ(XXᵀ + nλ I)^-1 y, the min-norm interpolator at λ = 0
        w = x.T @ cholesky_solve(x @ x.T + ridge * jnp.eye(n, dtype=eigs.dtype), y)
    return risk(eigs, w - w1)


def _sufficient_trial(key, eigs, w1, delta, task, *, frame: Frame, penalty: Array) -> Array:
    gram, score = draw_statistics(trial_key(key, task["cell"], task["trial"]), task, frame)
    ridge = task["n"] * task["lam"]
    # (G' + nλ HΣ⁻¹H) f = s' − nλ HΣ^-1/2 w1 with ŵ − w1 = Σ^-1/2 H f, so the risk is ‖f‖² (Frame).
    f = cholesky_solve(gram + ridge * penalty, score - ridge * frame.dual(w1))
    return jnp.sum(f * f)


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
    frame = Frame.of(eigs, delta)
    penalty = frame.penalty()
    return jax.vmap(lambda t: _sufficient_trial(key, eigs, w1, delta, t, frame=frame, penalty=penalty))(tasks)


def _bytes_per_trial(method: str, n: int, d: int, dtype: str) -> int:
    """Working-memory estimate of one trial: the arrays alive at its peak.

    Calibrated against XLA's own accounting (``compiled.memory_analysis()``: temporaries, arguments
    and outputs of a batch) to within a factor 1.5 (tests/test_devices.py).
    """
    item = np.dtype(dtype).itemsize
    if method == "sufficient":
        return item * (3 * d * d + 16 * d)  # Bartlett block and Gram, system, Cholesky factor
    small = min(n, d)
    return item * (3 * n * d + 3 * small * small + 8 * d + 4 * n)  # X (twice: scaled), Gram, factor


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
    devices: int | None = None,
    eigs2: Any = None,
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
        chunk_size: trials per compiled batch; default from ``memory_budget``.
        memory_budget: bytes one chunk may use per device (default 2 GiB on CPU, 80% of free
            accelerator memory); a sweep that cannot fit raises before running.
        store: optional chunk store; finished chunks are saved and reused on a rerun.
        progress: optional callback progress(done, total, seconds) (with an optional ``plan``).
        dtype: "float64" (default; needs x64 enabled) or "float32" (a deliberate choice).
        devices: split every chunk over this many devices (default: all devices JAX sees).
        eigs2: covariate shift (THEORY_SHIFT_GENERATIONS.md §1.1): the synthetic rows are drawn from
            N(0, Σ2) with Σ2 given in Σ's eigenbasis, a (d,) positive vector (commuting) or a (d, d)
            symmetric positive definite matrix; the risk stays (ŵ − w1)ᵀΣ(ŵ − w1) on the real
            distribution. None (default): Σ2 = Σ, the unchanged same-covariance path. Samplers:
            :mod:`strongcollapse.simulate.shift`.

    Returns:
        :class:`SimulationResult` with ``mean`` and ``sem`` of the broadcast shape of
        (n, p, lam, sigma1, sigma2).

    Raises:
        ValueError: malformed or out-of-range input, naming the parameter.
    """
    sweep = prepare_sweep(
        key,
        eigs,
        w1,
        delta,
        trials=trials,
        dtype=dtype,
        method=method,
        n=n,
        p=p,
        lam=lam,
        sigma1=sigma1,
        sigma2=sigma2,
    )
    shifted = None if eigs2 is None else shift.ShiftedProblem.of(sweep, eigs2)
    sufficient = use_sufficient(method, sweep.d, sweep.columns["n"], sweep.columns["lam"])
    bytes_per_trial = _bytes_per_trial if shifted is None else shift.bytes_per_trial
    errors = np.empty((sweep.rows, sweep.trials), dtype=np.float64)
    started = time.perf_counter()
    groups: list[tuple[str, int, np.ndarray]] = []
    if sufficient.any():
        groups.append(("sufficient", 0, np.flatnonzero(sufficient)))
    n_c = sweep.columns["n"]
    for size in np.unique(n_c[~sufficient]):
        groups.append(("direct", int(size), np.flatnonzero(~sufficient & (n_c == size))))

    mesh = device_mesh(devices)
    # Every group is planned before anything runs: a sweep that cannot fit fails at once.
    plans = [
        plan_chunks(
            selected.size * sweep.trials,
            bytes_per_trial(kind, size, sweep.d, dtype),
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            devices=mesh.size,
        )
        for kind, size, selected in groups
    ]
    arrays = (sweep.key, sweep.eigs, sweep.w1, sweep.delta)
    for (kind, size, selected), plan in zip(groups, plans):
        if shifted is not None:
            batch, tag = shifted.batch(kind, size, dtype), shifted.tag(kind, size)
        elif kind == "sufficient":
            batch, tag = partial(_sufficient_batch, *arrays, dtype=dtype), sweep.tag(f"linear/{kind}/{size}")
        else:
            batch = partial(_direct_batch, *arrays, n=size, dtype=dtype)
            tag = sweep.tag(f"linear/{kind}/{size}")
        values = run_tasks(
            batch,
            sweep.tasks(selected),
            plan,
            tag=tag,
            store=store,
            progress=progress,
            mesh=mesh,
        )
        errors[selected] = values.reshape(selected.size, sweep.trials)
    return sweep.result(
        errors, np.where(sufficient, "sufficient", "direct"), plans, time.perf_counter() - started
    )


def use_sufficient(method: str, d: int, n: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Which cells draw sufficient statistics (True) rather than the data matrix (False).

    Raises:
        ValueError: method "sufficient" where the primal system would be singular.
    """
    if method == "auto":
        # The sampler needs d >= 2 (a rotated first column plus a Bartlett block) and n >= 2.
        return (n >= max(SUFFICIENT_FROM * d, 2)) & (d >= 2)
    if method == "direct":
        return np.zeros(n.shape, dtype=bool)
    if d < 2:
        raise ParameterError("method='sufficient' needs d >= 2; use method='direct' or 'auto'")
    bad = ((n < d) & (lam == 0)) | (n < 2)
    if bad.any():
        raise ParameterError(
            f"method='sufficient' needs n >= 2 and (n >= d = {d} or lam > 0) (a solvable primal "
            f"system), got n = {int(n[bad][0])} with lam = {lam[bad][0]:g}; use method='direct' or 'auto'"
        )
    return np.ones(n.shape, dtype=bool)
