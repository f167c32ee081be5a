"""Model B Monte Carlo: ridge on random projections f(x) = ⟨v, Sx⟩ of width m, every width at once.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 4 (random projections); THEORY.md §3.
One trial of one data cell (n, p, λ, σ1, σ2):

    S ∈ R^{m_max×d} iid N(0, 1/d), drawn once per trial; width m uses its first m rows S_m
    v̂ = argmin (1/n)‖y − X S_mᵀ v‖² + λ‖v‖²  (λ = 0: the minimum-norm least-squares v, exactly)
    E = ‖S_mᵀ v̂ − w1‖²_Σ                     (exact population risk of the effective weights)

All widths of a trial share S and the training set (nested widths, common random numbers: a width
sweep is smooth), and all cells of a sweep share S in the same trial (so differences between
cells, like the collapse gap, are precise); trials draw independent S and data. ``nested=False``
draws an independent S per width instead.

Each width is solved exactly in the smallest space where its system is non-singular (F = X Sᵀ,
A = XᵀX, C_m = S_mᵀ S_m, μ = nλ):

* feature space, m <= min(n, d): v = (F_mᵀF_m + μ)⁻¹ F_mᵀ y. The m×m systems of all such widths
  are leading blocks of one matrix, and so are their Cholesky factors (and the forward solves): one
  Cholesky of the largest serves every feature-space width, the back substitutions for all widths
  run as one triangular solve on masked right-hand sides.
* sample space, n < m and n <= d (data matrix only): v = F_mᵀ(F_m F_mᵀ + μ)⁻¹ y; the n×n kernels
  accumulate width by width.
* weight space, m > d and n > d: w = S_mᵀ v = (A + μ C_m⁻¹)⁻¹ Xᵀy (push-through identity; C_m is
  invertible because m > d). At λ = 0 this is ordinary least squares in w, whatever m is
  (THEORY.md §3, regime 3).

The training set is drawn as a data matrix (n < d) or, from n >= d, as exact sufficient statistics
(samplers.py), so a fit's cost does not grow with n there.
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
from strongcollapse.simulate.samplers import Frame, draw_data, draw_statistics
from strongcollapse.simulate.sweep import SimulationResult, cholesky_solve, prepare_sweep, risk
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["random_projection", "width_spaces"]


def width_spaces(widths: tuple[int, ...], n: int | None, d: int) -> dict[str, tuple[int, ...]]:
    """Splits sorted widths into the feature / sample / weight space where each is solved.

    ``n`` is None for the sufficient-statistics path (n >= d, no data matrix).
    """
    if n is None:
        return {
            "feature": tuple(m for m in widths if m <= d),
            "sample": (),
            "weight": tuple(m for m in widths if m > d),
        }
    return {
        "feature": tuple(m for m in widths if m <= min(n, d)),
        "sample": tuple(m for m in widths if m > n and n <= d),
        "weight": tuple(m for m in widths if m > d and n > d),
    }


def _feature_errors(
    s_p: Array, gram: Array, rhs: Array, mu: Array, widths: tuple[int, ...], eigs, w1
) -> Array:
    """Risks of all feature-space widths from one Cholesky of the largest (prefix property).

    K_m = (S A Sᵀ + μ)[:m, :m] = L[:m, :m] L[:m, :m]ᵀ, and (L⁻ᵀ x)[:m] = L[:m, :m]⁻ᵀ x[:m] when
    x vanishes beyond m, so v_m = L⁻ᵀ(z ⊙ 1[· < m]) with z = L⁻¹ rhs, zero-padded beyond m.
    """
    m_p = s_p.shape[0]
    factor = jnp.linalg.cholesky(gram + mu * jnp.eye(m_p, dtype=gram.dtype))
    z = jax.scipy.linalg.solve_triangular(factor, rhs, lower=True)
    mask = np.arange(m_p)[:, None] < np.asarray(widths)[None, :]
    v = jax.scipy.linalg.solve_triangular(factor.T, jnp.where(mask, z[:, None], 0.0), lower=False)
    return risk(eigs, s_p.T @ v - w1[:, None])


def _sample_errors(s, f, y, mu, widths, eigs, w1) -> Array:
    """Risks of sample-space widths (n < m): v_m = F_mᵀ α_m, α_m = (F_m F_mᵀ + μ)⁻¹ y.

    The n×n kernels accumulate width by width, then are factorised in one batched call (measured
    1.9× faster than factorising each as it is formed: n = 500, 17 widths). F_mᵀ α_m for all
    widths is one product with F, masked beyond each m, and S_mᵀ of it one more.
    """
    n = f.shape[0]
    kernel = mu * jnp.eye(n, dtype=f.dtype)
    done, kernels = 0, []
    for m in widths:
        block = f[:, done:m]
        kernel = kernel + block @ block.T
        done = m
        kernels.append(kernel)
    factor = jax.lax.linalg.cholesky(jnp.stack(kernels), symmetrize_input=False)
    rhs = jnp.broadcast_to(y[None, :, None], (len(widths), n, 1))
    z = jax.lax.linalg.triangular_solve(factor, rhs, left_side=True, lower=True)
    alpha = jax.lax.linalg.triangular_solve(factor, z, left_side=True, lower=True, transpose_a=True)[..., 0]
    m_max = widths[-1]
    mask = np.arange(m_max)[None, :] < np.asarray(widths)[:, None]
    v = jnp.where(mask, alpha @ f[:, :m_max], 0.0)  # row j: v of width widths[j], zero-padded
    return risk(eigs, (v @ s[:m_max] - w1).T)


def _weight_errors(s, gram, score, mu, widths, eigs, w1) -> Array:
    """Risks of weight-space widths (m > d, n > d): ŵ − w1 = (A + μC_m⁻¹)⁻¹(Xᵀ(y − Xw1) − μC_m⁻¹w1)."""
    d = gram.shape[0]
    cov = jnp.zeros((d, d), dtype=gram.dtype)
    eye = jnp.eye(d, dtype=gram.dtype)
    done, out = 0, []
    for m in widths:
        block = s[done:m]
        cov = cov + block.T @ block
        done = m
        inverse = cholesky_solve(cov, eye)
        out.append(risk(eigs, cholesky_solve(gram + mu * inverse, score - mu * inverse @ w1)))
    return jnp.stack(out)


PROJECTION_STREAM = 0x5EED  # folded into the base key: projections never share bits with data


def _projection(key: Array, task: dict, m_max: int, d: int, dtype) -> Array:
    """S (m_max×d), iid N(0, 1/d), from the *base* key and the trial index only.

    Common random numbers: trial t of every cell of a sweep (any n, p, λ, σ) uses the same S, so
    differences between cells (the collapse gap E(p) − E(0) above all) are not swamped by the
    variance of S, which dominates at small widths. Each row has its own key, so row i is the same
    whatever m_max is and a width's numbers do not depend on the other widths of the sweep.
    task["projection"] is 0 for nested widths or the width itself (nested=False: one S per width).
    """
    k = jax.random.fold_in(
        jax.random.fold_in(jax.random.fold_in(key, PROJECTION_STREAM), task["trial"]), task["projection"]
    )
    rows = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(k, i), (d,), dtype))(jnp.arange(m_max))
    return rows / np.sqrt(d)


def _direct_trial(key, eigs, w1, delta, task, *, n: int, widths: tuple[int, ...]) -> Array:
    d = eigs.shape[0]
    spaces = width_spaces(widths, n, d)
    k = trial_key(key, task["cell"], task["trial"])
    x, y = draw_data(jax.random.fold_in(k, 0), eigs, w1, delta, task, n)
    s = _projection(key, task, widths[-1], d, eigs.dtype)
    mu = n * task["lam"]
    parts = []
    if spaces["feature"] or spaces["sample"]:
        f = x @ s[: max(spaces["feature"] + spaces["sample"])].T
    if spaces["feature"]:
        m_p = spaces["feature"][-1]
        f_p = f[:, :m_p]
        parts.append(_feature_errors(s[:m_p], f_p.T @ f_p, f_p.T @ y, mu, spaces["feature"], eigs, w1))
    if spaces["sample"]:
        parts.append(_sample_errors(s, f, y, mu, spaces["sample"], eigs, w1))
    if spaces["weight"]:
        parts.append(_weight_errors(s, x.T @ x, x.T @ (y - x @ w1), mu, spaces["weight"], eigs, w1))
    return jnp.concatenate(parts)


def _sufficient_trial(key, eigs, w1, delta, task, *, frame: Frame, widths: tuple[int, ...]) -> Array:
    """Sufficient statistics in the rotated whitened frame (samplers.Frame): S̃ = S Σ^1/2 H acts on
    frame coordinates, b = H Σ^1/2 w1, and a weight error e has risk ‖H Σ^1/2 e‖²."""
    d = eigs.shape[0]
    spaces = width_spaces(widths, None, d)
    k = trial_key(key, task["cell"], task["trial"])
    gram, score = draw_statistics(jax.random.fold_in(k, 0), task, frame)
    s = frame.rows(_projection(key, task, widths[-1], d, eigs.dtype))
    b = frame.whitened(w1)
    mu = task["n"] * task["lam"]
    ones = jnp.ones(d, dtype=eigs.dtype)
    parts = []
    if spaces["feature"]:
        m_p = spaces["feature"][-1]
        s_p = s[:m_p]
        rhs = s_p @ (gram @ b + score)  # S Xᵀy in the frame
        parts.append(_feature_errors(s_p, s_p @ gram @ s_p.T, rhs, mu, spaces["feature"], ones, b))
    if spaces["weight"]:
        parts.append(_weight_errors(s, gram, score, mu, spaces["weight"], ones, b))
    return jnp.concatenate(parts)


@partial(jax.jit, static_argnames=("n", "widths", "dtype"))
def _batch(key, eigs, w1, delta, tasks, *, n: int | None, widths: tuple[int, ...], dtype: str) -> Array:
    eigs, w1, delta = (jnp.asarray(a, dtype=dtype) for a in (eigs, w1, delta))
    tasks = {k: (v if k in ("cell", "trial", "projection") else v.astype(dtype)) for k, v in tasks.items()}
    if n is None:
        trial = partial(_sufficient_trial, frame=Frame.of(eigs, delta), widths=widths)
    else:
        trial = partial(_direct_trial, n=n, widths=widths)
    return jax.vmap(lambda t: trial(key, eigs, w1, delta, t))(tasks)


def _bytes_per_trial(n: int | None, d: int, widths: tuple[int, ...], dtype: str) -> int:
    """Working-memory estimate of one trial (arrays alive at its peak; calibrated against XLA's
    ``memory_analysis`` to within a factor 1.5, tests/test_devices.py)."""
    item = np.dtype(dtype).itemsize
    m_max = widths[-1]
    spaces = width_spaces(widths, n, d)
    m_p = max(spaces["feature"], default=0)
    words = m_max * d + 3 * m_p * m_p + m_p * len(spaces["feature"]) + d * len(widths)
    if n is None:
        words += 3 * d * d
    else:
        words += 2 * n * d + 2 * n * m_max + 2 * n * n * max(1, len(spaces["sample"]))
    words += 2 * d * d if spaces["weight"] else 0
    return item * words


def random_projection(
    key: Any,
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    m: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    trials: int = 100,
    method: str = "auto",
    nested: bool = True,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    store: ChunkStoreLike | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    dtype: str = "float64",
    devices: int | None = None,
) -> SimulationResult:
    """Monte Carlo estimate of the Model B (random projection) test error on real data.

    Args:
        key: int seed or ``jax.random`` key; trial t of data cell (n, p, λ, σ1, σ2) uses
            fold_in(fold_in(key, cell_id), t), the same for every width of the cell.
        eigs: (d,) eigenvalues of Σ, descending, positive.
        w1, delta: (d,) real teacher and synthetic shift, in Σ's eigenbasis.
        n: integer sample size(s) >= 1.
        m: integer model width(s) >= 1 (rows of S).
        p: synthetic fraction(s) in [0, 1]; exactly rint(p·n) rows are synthetic.
        lam: ridge λ >= 0 on v (0 = exact ridgeless / minimum-norm).
        sigma1, sigma2: label-noise standard deviations >= 0.
        trials: independent trials (new S and new data) per cell.
        method: "auto" (sufficient statistics from n >= d), "direct" or "sufficient".
        nested: widths of a trial share one S (first m rows); False draws one S per width.
        chunk_size: trials per compiled batch; default from ``memory_budget``.
        memory_budget: bytes one chunk may use per device (default 2 GiB on CPU, 80% of free
            accelerator memory); a sweep that cannot fit raises before running.
        store: optional chunk store; finished chunks are reused on a rerun.
        progress: optional callback progress(done, total, seconds) (with an optional ``plan``).
        dtype: "float64" (default; needs x64) or "float32".
        devices: split every chunk over this many devices (default: all devices JAX sees).

    Returns:
        :class:`SimulationResult` with ``mean``/``sem`` of the broadcast shape of
        (n, m, p, lam, sigma1, sigma2).

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
        m=m,
        p=p,
        lam=lam,
        sigma1=sigma1,
        sigma2=sigma2,
    )
    d, cols = sweep.d, sweep.columns
    if method == "sufficient" and (cols["n"] < max(d, 2)).any():
        raise ParameterError(
            f"method='sufficient' needs n >= d = {d} (and >= 2) for random projections; "
            f"got n = {int(cols['n'].min())}; use method='direct' or 'auto'"
        )
    sufficient = (
        (cols["n"] >= max(d, 2)) & (d >= 2)
        if method == "auto"
        else np.full(sweep.rows, method == "sufficient")
    )

    # Group grid rows into batches that share one compiled function: same path (and n for the
    # direct path) and the same width tuple. A data cell's widths form one task per trial.
    cells: dict[tuple, list[int]] = {}
    for row in range(sweep.rows):
        size = None if sufficient[row] else int(cols["n"][row])
        cells.setdefault(
            (
                size,
                int(sweep.ids[row]),
                cols["p"][row],
                cols["lam"][row],
                cols["sigma1"][row],
                cols["sigma2"][row],
                int(cols["n"][row]),
            ),
            [],
        ).append(row)
    groups: dict[tuple, list[tuple[list[int], int]]] = {}
    for cell_key, rows in cells.items():
        widths = sorted({int(cols["m"][r]) for r in rows})
        batches = [(tuple(widths), 0)] if nested else [((w,), w) for w in widths]
        for width_tuple, projection in batches:
            members = [r for r in rows if int(cols["m"][r]) in width_tuple]
            groups.setdefault((cell_key[0], width_tuple), []).append((members, projection))

    errors = np.empty((sweep.rows, sweep.trials), dtype=np.float64)
    started = time.perf_counter()
    mesh = device_mesh(devices)
    # Every group is planned before anything runs: a sweep that cannot fit fails at once.
    plans = [
        plan_chunks(
            len(entries) * sweep.trials,
            _bytes_per_trial(size, d, widths, dtype),
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            devices=mesh.size,
        )
        for (size, widths), entries in groups.items()
    ]
    for ((size, widths), entries), plan in zip(groups.items(), plans):
        leaders = np.array([members[0] for members, _ in entries])
        projections = np.array([proj for _, proj in entries], dtype=np.uint32)
        batch = partial(
            _batch, sweep.key, sweep.eigs, sweep.w1, sweep.delta, n=size, widths=widths, dtype=dtype
        )
        values = run_tasks(
            batch,
            sweep.tasks(leaders, projection=projections),
            plan,
            tag=sweep.tag(f"random_projection/{size}/{widths}"),
            store=store,
            progress=progress,
            result_shape=(len(widths),),
            mesh=mesh,
        )
        values = values.reshape(leaders.size, sweep.trials, len(widths))
        position = {w: i for i, w in enumerate(widths)}
        for g, (members, _) in enumerate(entries):
            for r in members:
                errors[r] = values[g, :, position[int(cols["m"][r])]]
    return sweep.result(
        errors, np.where(sufficient, "sufficient", "direct"), plans, time.perf_counter() - started
    )
