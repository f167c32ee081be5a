"""Random-feature Monte Carlo: ridge on frozen features σ(Wx/√d) of width m, every width at once.

THEORY_RF.md §1 (model), §3 (risk quadratic in a), §9 (exact risk), §10 (solver notes); the
random-feature analogue of Model B (:mod:`strongcollapse.simulate.model_b`), whose machinery it
shares. One trial of one data cell (n, p, λ, σ1, σ2):

    W ∈ R^{m_max×d} iid N(0, 1), drawn once per trial, each row from its own key; width m uses
    its first m rows (S_m = W_m/√d, the same rows as Model B's projection in the same trial)
    φ(x) = σ(S_m x),  Φ = σ(X S_mᵀ) (n×m)
    â = argmin (1/n)‖y − Φa‖² + λ‖a‖²     (λ = 0: the minimum-norm least-squares a, exactly)
    E = âᵀKâ − 2âᵀb + ‖w1‖²_Σ,  K = E_x φφᵀ, b = E_x φ⟨x, w1⟩  (exact population risk, rf_kernels)

Ridge convention: λ multiplies ‖a‖² exactly as Model B's λ multiplies ‖v‖², so σ(t) = t *is*
Model B (same λ, same law; same numbers as ``random_projection(..., method="direct")``, which
draws the same S rows and the same data from the same keys). THEORY_RF §1 writes the penalty as
ψ1λ_MM‖a‖² with Mei–Montanari's λ_MM: the λ here is ψ1·λ_MM = (m/d)·λ_MM. Keeping λ per width
fixed is what lets all primal widths share one Cholesky factor (below).

Common random numbers, as in Model B: all widths of a trial share W and the training set, and all
cells of a sweep (any n, p, λ, σ, and any activation) share W in the same trial; trial t of a
data cell draws its data from fold_in(fold_in(key, cell_id), t) (keys.py), so numbers do not
depend on the chunking, the sweep's order, the other widths requested or the device count.

Each width is solved exactly in the smaller of its primal and dual systems (μ = nλ). For μ* > 0
the feature matrix Φ has full rank min(m, n) almost surely (THEORY_RF §10), so ridgeless is exact
on both sides of the interpolation threshold m = n:

* primal, m <= n: a = (ΦᵀΦ + μ)⁻¹Φᵀy. The m×m systems of all such widths are leading blocks of one
  matrix, and so are their Cholesky factors: one factorisation of the largest serves them all, the
  back substitutions run as one triangular solve on masked right-hand sides (model_b's trick).
* dual, m > n: a = Φᵀ(ΦΦᵀ + μ)⁻¹y, the minimum-norm interpolator at λ = 0; the n×n kernels
  accumulate width by width and are factorised in one batched call.
* σ linear (kernel "linear", rank min(m, n, d)): Model B's three spaces; for m > d and n > d the
  weights w = Sᵀa are solved in weight space (model_b._weight_errors), OLS at λ = 0.

Cost per trial: O(m_max² d/2) for the lower block rows of C = SΣSᵀ (the kernel needs every
entry; rf_kernels.population_risks), O(n m_max d) for Φ, O(n² m_max) for the dual kernels and one
n×n Cholesky per dual width, plus drawing m_max·d + n·d threefry normals. There is no
sufficient-statistics path: nonlinear features need the data matrix, so the cost grows with n.
Measured at n = d = 500, 30 widths up to 2000 (strongcollapse.bench.random_features): the dual
Choleskys (LAPACK, one thread), the normals and C dominate. On a shared machine set
``OPENBLAS_NUM_THREADS=1`` before starting Python: jaxlib's LAPACK runs on OpenBLAS, whose
spinning threads then slow a 500×500 Cholesky from 10 ms to 0.5 s next to XLA's own threads.

Note: ``strongcollapse.simulate.random_features`` is this function (re-exported by the package);
import the module's other names with ``from strongcollapse.simulate.random_features import ...``.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from strongcollapse.simulate.devices import device_mesh
from strongcollapse.simulate.engine import ChunkStoreLike, plan_chunks, run_tasks
from strongcollapse.simulate.keys import trial_key
from strongcollapse.simulate.model_b import _projection, _weight_errors
from strongcollapse.simulate.rf_kernels import (
    K_MAX,
    activation_fingerprint,
    block_size,
    mehler_orders,
    population_risks,
)
from strongcollapse.simulate.samplers import draw_data
from strongcollapse.simulate.sweep import SimulationResult, prepare_sweep
from strongcollapse.vocabulary.activations import QUADRATURE_NODES, Activation, get_activation
from strongcollapse.vocabulary.validation import ParameterError, check_count

__all__ = ["random_features", "width_solvers"]

DTYPE = "float64"


def width_solvers(widths: tuple[int, ...], n: int, d: int, kernel: str | None) -> dict[str, tuple[int, ...]]:
    """Splits sorted widths into the primal / dual / weight systems where each is solved exactly.

    Nonlinear σ (μ* > 0): primal m <= n, dual m > n. Linear σ: Model B's spaces (primal
    m <= min(n, d), dual n < m with n <= d, weight m > d with n > d), since Φ = XSᵀ has rank
    min(m, n, d).
    """
    if kernel == "linear":
        return {
            "primal": tuple(m for m in widths if m <= min(n, d)),
            "dual": tuple(m for m in widths if m > n and n <= d),
            "weight": tuple(m for m in widths if m > d and n > d),
        }
    return {
        "primal": tuple(m for m in widths if m <= n),
        "dual": tuple(m for m in widths if m > n),
        "weight": (),
    }


def _primal_coefficients(phi: Array, y: Array, mu: Array, widths: tuple[int, ...]) -> Array:
    """(m_p, len(widths)) coefficients of the primal widths, zero-padded beyond each width.

    (ΦᵀΦ + μ)[:m, :m] = L[:m, :m]L[:m, :m]ᵀ and (L⁻ᵀz)[:m] = L[:m, :m]⁻ᵀz[:m] when z vanishes
    beyond m, so a_m = L⁻ᵀ(z ⊙ 1[· < m]) with z = L⁻¹Φᵀy.
    """
    m_p = widths[-1]
    f = phi[:, :m_p]
    gram = f.T @ f + mu * jnp.eye(m_p, dtype=f.dtype)
    factor = jax.lax.linalg.cholesky(gram, symmetrize_input=False)
    z = jax.lax.linalg.triangular_solve(factor, (f.T @ y)[:, None], left_side=True, lower=True)
    mask = np.arange(m_p)[:, None] < np.asarray(widths)[None, :]
    return jax.lax.linalg.triangular_solve(
        factor, jnp.where(mask, z, 0.0), left_side=True, lower=True, transpose_a=True
    )


def _lower_grams(phi: Array, widths: tuple[int, ...]) -> Array:
    """(len(widths), n, n) kernels Φ_mΦ_mᵀ, correct in the lower triangle only (zeros above).

    The Cholesky factorisation reads only the lower triangle (``symmetrize_input=False``), so the
    upper off-diagonal tile is never computed: with n split in halves, 3 of 4 tiles, measured
    1.4× faster than full products at n = 500 (XLA has no syrk). Kernels accumulate width by width.
    """
    n = phi.shape[0]
    if n < 2 * TILE_MIN:
        kernel, done, out = jnp.zeros((n, n), dtype=phi.dtype), 0, []
        for m in widths:
            block = phi[:, done:m]
            kernel, done = kernel + block @ block.T, m
            out.append(kernel)
        return jnp.stack(out)
    h = n // 2
    t11 = jnp.zeros((h, h), dtype=phi.dtype)
    t21 = jnp.zeros((n - h, h), dtype=phi.dtype)
    t22 = jnp.zeros((n - h, n - h), dtype=phi.dtype)
    upper = jnp.zeros((h, n - h), dtype=phi.dtype)
    done, out = 0, []
    for m in widths:
        top, bottom = phi[:h, done:m], phi[h:, done:m]
        t11, t21, t22, done = t11 + top @ top.T, t21 + bottom @ top.T, t22 + bottom @ bottom.T, m
        out.append(jnp.block([[t11, upper], [t21, t22]]))
    return jnp.stack(out)


TILE_MIN = 64  # below n = 128 the tiles are too small to pay for their extra products


def _dual_coefficients(phi: Array, y: Array, mu: Array, widths: tuple[int, ...]) -> Array:
    """(m_max, len(widths)) coefficients a_m = Φ_mᵀ(Φ_mΦ_mᵀ + μ)⁻¹y of the dual widths, zero-padded.

    The n×n kernels are factorised in one batched call (model_b measured this 1.9× faster than
    factorising each as it is formed).
    """
    n = phi.shape[0]
    kernels = _lower_grams(phi, widths) + mu * jnp.eye(n, dtype=phi.dtype)
    factor = jax.lax.linalg.cholesky(kernels, symmetrize_input=False)
    rhs = jnp.broadcast_to(y[None, :, None], (len(widths), n, 1))
    z = jax.lax.linalg.triangular_solve(factor, rhs, left_side=True, lower=True)
    alpha = jax.lax.linalg.triangular_solve(factor, z, left_side=True, lower=True, transpose_a=True)[..., 0]
    m_max = widths[-1]
    mask = np.arange(m_max)[None, :] < np.asarray(widths)[:, None]
    return jnp.where(mask, alpha @ phi[:, :m_max], 0.0).T


def _trial(key, eigs, w1, delta, task, *, n: int, widths: tuple[int, ...], act: Activation) -> Array:
    """Risks of every width of one trial of one data cell, in the order of ``widths``."""
    d = eigs.shape[0]
    spaces = width_solvers(widths, n, d, act.kernel)
    k = trial_key(key, task["cell"], task["trial"])
    x, y = draw_data(jax.random.fold_in(k, 0), eigs, w1, delta, task, n)
    # W/√d: Model B's rows, so σ = id is Model B. Drawn once (barrier): S feeds Φ, C and b, and
    # fusion would otherwise regenerate the threefry stream inside each consumer.
    s = jax.lax.optimization_barrier(_projection(key, task, widths[-1], d, eigs.dtype))
    mu = n * task["lam"]
    parts = []
    fitted = spaces["primal"] + spaces["dual"]
    if fitted:
        m_f = fitted[-1]
        phi = act.fn(x @ s[:m_f].T)
        columns = []
        if spaces["primal"]:
            a = _primal_coefficients(phi, y, mu, spaces["primal"])
            columns.append(jnp.pad(a, ((0, m_f - a.shape[0]), (0, 0))))
        if spaces["dual"]:
            columns.append(_dual_coefficients(phi, y, mu, spaces["dual"]))
        parts.append(population_risks(s[:m_f], eigs, w1, act, jnp.concatenate(columns, axis=1)))
    if spaces["weight"]:
        parts.append(_weight_errors(s, x.T @ x, x.T @ (y - x @ w1), mu, spaces["weight"], eigs, w1))
    return jnp.concatenate(parts)


@partial(jax.jit, static_argnames=("n", "widths", "act"))
def _batch(key, eigs, w1, delta, tasks, *, n: int, widths: tuple[int, ...], act: Activation) -> Array:
    eigs, w1, delta = (jnp.asarray(a, dtype=DTYPE) for a in (eigs, w1, delta))
    tasks = {k: (v if k in ("cell", "trial", "projection") else v.astype(DTYPE)) for k, v in tasks.items()}
    return jax.vmap(lambda t: _trial(key, eigs, w1, delta, t, n=n, widths=widths, act=act))(tasks)


def _bytes_per_trial(n: int, d: int, widths: tuple[int, ...], kernel: str | None) -> int:
    """Working-memory estimate of one trial (arrays alive at its peak), in bytes.

    The peak is the larger of two phases plus what lives through both (S, X): drawing S (threefry
    bits, uniforms and normals: about 6 words per entry) and fitting (Φ, the primal Gram and factor,
    the stacked dual kernels and factors, one block row of C and K). Calibrated against XLA's
    ``memory_analysis`` of the compiled batch: 0.7-1.8 from d = 40 to d = 300
    (tests/test_simulate_random_features.py checks a factor 2).
    """
    spaces = width_solvers(widths, n, d, kernel)
    m_max = widths[-1]
    fitted = spaces["primal"] + spaces["dual"]
    m_f = max(fitted, default=0)
    m_p = max(spaces["primal"], default=0)
    fit = 2 * n * m_f + 3 * m_p * m_p + 2 * n * n * len(spaces["dual"])  # Φ (and σ's input), systems
    fit += 2 * min(block_size(m_f), m_f) * m_f + 2 * m_f * len(widths)  # a block row of C, K; a
    if kernel is None:
        fit += m_f * (QUADRATURE_NODES + K_MAX)  # σ on the nodes, Hermite coefficients
    if spaces["weight"]:
        fit += 4 * d * d
    return 8 * (m_max * d + 2 * n * d + max(6 * m_max * d, fit))


def _check_activation(activation: Any) -> Activation:
    if not isinstance(activation, (str, Activation)):
        raise ParameterError(f"activation must be a registry name or an Activation, got {activation!r}")
    act = get_activation(activation)  # ParameterError listing the known names
    if act.kernel is None:
        mehler_orders(act)  # σ elementwise and finite where the quadrature evaluates it
    return act


def random_features(
    key: Any,
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    m: Any,
    p: Any,
    lam: Any,
    sigma1: Any,
    sigma2: Any,
    activation: str | Activation,
    trials: int,
    store: ChunkStoreLike | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    devices: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> SimulationResult:
    """Monte Carlo estimate of the random-feature test error on real data, per grid cell.

    f(x) = Σ_{i<=m} a_i σ(⟨w_i, x⟩/√d), â = argmin (1/n)Σ_j(y_j − f(x_j))² + λ‖a‖², and
    E = âᵀKâ − 2âᵀb + ‖w1‖²_Σ exactly (THEORY_RF §1, §3, §9; no sampled test set). Exactly
    rint(p·n) of the n rows are synthetic, labelled by w1 + Δ with noise σ2.

    Args:
        key: int seed or ``jax.random`` key. Trial t of data cell (n, p, λ, σ1, σ2) draws its data
            from fold_in(fold_in(key, cell_id), t) and its first layer from the base key and t
            alone (every cell, width and activation of a trial shares W).
        eigs: (d,) eigenvalues of Σ, descending, positive. The Monte Carlo is exact for any Σ;
            THEORY_RF's deterministic equivalent assumes tr Σ/d = 1.
        w1, delta: (d,) real teacher and synthetic shift, in Σ's eigenbasis.
        n: integer sample size(s) >= 1.
        m: integer width(s) >= 1 (rows of W); all widths of a data cell are fitted at once.
        p: synthetic fraction(s) in [0, 1].
        lam: ridge λ >= 0 on ‖a‖², Model B's λ (= ψ1·λ_MM of THEORY_RF §1); 0 = exact min-norm.
        sigma1, sigma2: label-noise standard deviations >= 0 (real, synthetic).
        activation: "relu", "erf", "linear" (closed-form kernels), "tanh" or any registered name or
            :class:`~strongcollapse.vocabulary.activations.Activation` (Mehler series, THEORY_RF §9;
            a ``kernel`` tag is trusted to match ``fn``). Non-smooth σ without a closed form
            converge slowly in the Mehler series (|ρ|^41 tail is tiny, but ĉ_k by quadrature is not).
        trials: independent trials (new W and new data) per cell, >= 2.
        store: optional chunk store; finished chunks are reused on a rerun.
        progress: optional callback progress(done, total, seconds) (with an optional ``plan``).
        devices: split every chunk over this many devices (default: all devices JAX sees).
        chunk_size: trials per compiled batch; default from ``memory_budget``.
        memory_budget: bytes one chunk may use per device (default 2 GiB on CPU, 80% of free
            accelerator memory); a sweep that cannot fit raises before running.

    Returns:
        :class:`SimulationResult` (float64) with ``mean``/``sem`` of the broadcast shape of
        (n, m, p, lam, sigma1, sigma2); ``method`` is "direct" everywhere.

    Raises:
        ParameterError: malformed or out-of-range input, naming the parameter and its range.
        FloatingPointError: a non-finite risk (a singular ridgeless system: an activation whose
            features are rank-deficient, e.g. a polynomial σ with min(m, n) above its rank).

    Example:
        >>> from strongcollapse import Problem
        >>> prob = Problem.build({"kind": "isotropic"}, 50)
        >>> res = random_features(0, *prob.arrays(), n=100, m=[25, 200], p=0.1, lam=0.0,
        ...                       sigma1=0.5, sigma2=0.5, activation="relu", trials=4)
        >>> res.mean.shape
        (2,)
    """
    act = _check_activation(activation)
    trials = int(check_count("trials", trials, minimum=2))
    if memory_budget is not None:
        memory_budget = int(check_count("memory_budget", memory_budget, minimum=1))
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress must be callable or None, got {progress!r}")
    if store is not None and not (callable(getattr(store, "get", None)) and callable(getattr(store, "put", None))):
        raise ParameterError("store must have get(key) and put(key, values) methods")
    sweep = prepare_sweep(
        key,
        eigs,
        w1,
        delta,
        trials=trials,
        dtype=DTYPE,
        method="direct",
        n=n,
        m=m,
        p=p,
        lam=lam,
        sigma1=sigma1,
        sigma2=sigma2,
    )
    d, cols = sweep.d, sweep.columns
    fingerprint = activation_fingerprint(act)

    # One task per (data cell, trial) fits all the cell's widths; batches share one compiled
    # function: the same n (a static shape) and the same tuple of widths.
    cells: dict[tuple, list[int]] = {}
    for row in range(sweep.rows):
        cells.setdefault(
            (int(cols["n"][row]), int(sweep.ids[row]), cols["p"][row], cols["lam"][row], cols["sigma1"][row],
             cols["sigma2"][row]),
            [],
        ).append(row)  # fmt: skip
    groups: dict[tuple[int, tuple[int, ...]], list[list[int]]] = {}
    for cell_key, rows in cells.items():
        widths = tuple(sorted({int(cols["m"][r]) for r in rows}))
        groups.setdefault((cell_key[0], widths), []).append(rows)

    errors = np.empty((sweep.rows, sweep.trials), dtype=np.float64)
    started = time.perf_counter()
    mesh = device_mesh(devices)
    # Every group is planned before anything runs: a sweep that cannot fit fails at once.
    plans = [
        plan_chunks(
            len(entries) * sweep.trials,
            _bytes_per_trial(size, d, widths, act.kernel),
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            devices=mesh.size,
        )
        for (size, widths), entries in groups.items()
    ]
    for ((size, widths), entries), plan in zip(groups.items(), plans):
        leaders = np.array([rows[0] for rows in entries])
        batch = partial(_batch, sweep.key, sweep.eigs, sweep.w1, sweep.delta, n=size, widths=widths, act=act)
        values = run_tasks(
            batch,
            sweep.tasks(leaders, projection=np.zeros(leaders.size, dtype=np.uint32)),
            plan,
            tag=sweep.tag(f"random_features/{fingerprint}/{size}/{widths}"),
            store=store,
            progress=progress,
            result_shape=(len(widths),),
            mesh=mesh,
        )
        values = values.reshape(leaders.size, sweep.trials, len(widths))
        position = {w: i for i, w in enumerate(widths)}
        for g, rows in enumerate(entries):
            for r in rows:
                errors[r] = values[g, :, position[int(cols["m"][r])]]
    return sweep.result(errors, np.full(sweep.rows, "direct"), plans, time.perf_counter() - started)
