"""Covariate shift: ridge on real N(0, Σ1) rows plus synthetic N(0, Σ2) rows, deterministic equivalent.

THEORY_SHIFT_GENERATIONS.md Part 1 (§1.1-1.6); the same-covariance case is Strong Model Collapse
(Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840), Sec. 3 / Thm 1, and THEORY.md
§2 eq. (A), which this module reproduces identically when Σ2 = Σ1. The two-group equivalent itself
is derived (not stated in the paper) and checked against Monte Carlo in tests/test_covariate_shift.py.

Glossary (everything in Σ1's eigenbasis; Σ1 = diag(eigs) = diag(a), Σ2 = ``eigs2``):

    π = (1−p, p)      group fractions (p = rint(p·n)/n, the realised fraction, by default)
    x = (x1, x2)      the two scalar unknowns; H = (π1 x1 Σ1 + π2 x2 Σ2 + ρ)^-1
    u form (n > d)    ρ = λ, x_k = u_k = 1/(1+δ_k):        x_k (1 + tr(Σ_k H)/n) = 1
    θ form (n <= d)   ρ = 1, x_k = θ_k = 1/(λ(1+δ_k)):     x_k (λ + tr(Σ_k H)/n) = 1
                      (finite at λ = 0 on the min-norm side: θ_k = n / tr(Σ_k H))

Only x2/x1 (the relative row weight of synthetic data) and x/ρ enter. Error on the real distribution,
E = ‖ŵ − w1‖²_Σ1, by (CS) of §1.3:

    w̄ = H Σ_k π_k x_k Σ_k w_k,     W_kj = π_k x_k² tr(Σ_k H Σ_j H)/n,     ṽ = (I − W)^-1 W e_1,
    E ≍ ‖w̄ − w1‖²_Σ1 + ṽ1 (‖w̄ − w1‖²_Σ1 + σ1²) + ṽ2 (‖w̄ − w2‖²_Σ2 + σ2²).

Effective mixture (§1.3): w̄ is population ridge on Σ_k α_k Σ_k with α_k = π_k x_k / Σ_j π_j x_j and
ridge κ = ρ / Σ_j π_j x_j; the n → ∞ limit (§1.6) is the plateau
P(λ) = ‖(Σ_mix + λ)^-1 (pΣ2Δ − λ w1)‖²_Σ1, Σ_mix = (1−p)Σ1 + pΣ2.

``eigs2`` a (d,) vector: Σ2 commutes with Σ1 (§1.5), O(d) per evaluation. A (d, d) matrix: the
general solver, O(d³) per evaluation (a Cholesky factor of H^-1 and two d×d products).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.common import effective_fraction, validate_problem
from analytic.solvers import golden_minimize
from strongcollapse.vocabulary.validation import (
    ParameterError,
    broadcast_named,
    check_covariance,
    check_eigenvalues,
    check_in_range,
    check_nonnegative,
    require_x64,
)

__all__ = [
    "ShiftTheory",
    "FixedPoint",
    "ShiftPlateau",
    "fixed_point",
    "test_error",
    "scaled_ridgeless",
    "plateau",
]

TOL = 1e-15  # target max |F_k| of the fixed-point equations (relative by construction)
CONVERGED = 1e-12  # reported as converged at or below this residual
MAXITER = 100


class FixedPoint(NamedTuple):
    """The two-group fixed point (§1.2) and the effective reweighting of the rows (§1.3)."""

    u: Array  # (..., 2) u_k = 1/(1+δ_k) (0 on the min-norm side at λ = 0, where δ_k = ∞)
    weight_ratio: Array  # u2/u1: weight of a synthetic row relative to a real one
    alpha: Array  # (..., 2) effective mixture weights α_k = π_k u_k / Σ_j π_j u_j
    kappa: Array  # effective ridge κ = ρ / Σ_j π_j x_j of the mean predictor
    p_eff: Array
    converged: Array
    iterations: Array
    residual: Array  # max_k |x_k (c + tr(Σ_k H)/n) − 1|


class ShiftTheory(NamedTuple):
    """Deterministic equivalent (CS) and its decomposition; total = mean + fluctuation + variance."""

    total: Array
    mean: Array  # ‖w̄ − w1‖²_Σ1: error of the mean predictor (population ridge on the mixture)
    fluctuation: Array  # ṽ1 ‖w̄ − w1‖²_Σ1 + ṽ2 ‖w̄ − w2‖²_Σ2: fluctuations driven by misfit
    variance: Array  # ṽ1 σ1² + ṽ2 σ2²: label noise
    v: Array  # (..., 2) propagators ṽ
    u: Array  # (..., 2), as in FixedPoint
    weight_ratio: Array
    alpha: Array  # (..., 2)
    kappa: Array
    p_eff: Array
    converged: Array
    iterations: Array
    residual: Array


class ShiftPlateau(NamedTuple):
    """n → ∞ limits at fixed d (§1.6)."""

    value: Array  # P(λ) at the given λ
    ridgeless: Array  # P(0) = p² ‖Σ_mix^-1 Σ2 Δ‖²_Σ1
    floor: Array  # min over λ in [0, ∞] of P(λ)
    lam: Array  # its minimiser (0 or inf at the ends)


# ---------------------------------------------------------------------------------------------
# Validation


# ---------------------------------------------------------------------------------------------
# One problem (scalar n, π, λ); vmapped over the grid


def _traces(a: Array, b: Array, x: Array, pi: Array, rho: Array) -> tuple[Array, Array, Array]:
    """(t, T, H) with t_k = tr(Σ_k H), T_kj = tr(Σ_k H Σ_j H); H a (d,) diagonal or (d, d) matrix."""
    if b.ndim == 1:  # commuting (§1.5)
        h = 1.0 / (pi[0] * x[0] * a + pi[1] * x[1] * b + rho)
        s = jnp.stack([a, b])
        return s @ h, (s * h**2) @ s.T, h
    d = a.shape[0]
    m = jnp.diag(pi[0] * x[0] * a + rho) + pi[1] * x[1] * b
    factor = jax.lax.linalg.cholesky(m, symmetrize_input=False)
    z = jax.lax.linalg.triangular_solve(factor, jnp.eye(d, dtype=a.dtype), left_side=True, lower=True)
    h = z.T @ z  # H = L^-T L^-1, symmetric by construction
    ha, hb = h * a[None, :], h @ b  # H Σ1, H Σ2
    t = jnp.stack([jnp.sum(jnp.diag(h) * a), jnp.sum(h * b)])
    t11, t12, t22 = jnp.sum(ha * ha.T), jnp.sum(ha * hb.T), jnp.sum(hb * hb.T)
    return t, jnp.array([[t11, t12], [t12, t22]]), h


def _solve_one(a, b, n, pi, lam) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Newton in log x with backtracking on max|F| (fallback: the fixed-point direction)."""
    d = a.shape[0]
    pole = (lam == 0) & (n == d)
    n = jnp.where(pole, d + 1.0, n)  # a harmless problem; the result is masked to +inf
    over = n > d
    c = jnp.where(over, 1.0, lam)
    rho = jnp.where(over, lam, 1.0)
    # Start at x1 = x2: u = 1 − d/n (exact for λ = 0 and Σ1 = Σ2) on the OLS side, θ = 1/(λ + tr Σ̄/n)
    # (the upper bracket end of THEORY.md §2 for Σ̄ = π1Σ1 + π2Σ2) on the other. Newton with
    # backtracking converged from there on every grid tried (λ from 0 to 100, n from 10 to 1e9,
    # Σ2/Σ1 from 1e-3 to 1e3); starting from the bracketed 1-D κ of Σ̄ doubled the compile time.
    trace_bar = pi[0] * jnp.sum(a) + pi[1] * (jnp.sum(b) if b.ndim == 1 else jnp.trace(b))
    start = jnp.where(over, 1.0 - d / n, 1.0 / (lam + trace_bar / n))

    def residual(y: Array) -> tuple[Array, Array]:
        x = jnp.exp(y)
        t, tt, _ = _traces(a, b, x, pi, rho)
        f = x * (c + t / n) - 1.0
        jac = jnp.diag(x * (c + t / n)) - x[:, None] * tt * (pi * x)[None, :] / n
        return f, jac

    def direction(f: Array, jac: Array) -> Array:
        det = jac[0, 0] * jac[1, 1] - jac[0, 1] * jac[1, 0]
        step = -jnp.array([jac[1, 1] * f[0] - jac[0, 1] * f[1], jac[0, 0] * f[1] - jac[1, 0] * f[0]]) / det
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, -jnp.log1p(f))
        return step / jnp.maximum(1.0, jnp.max(jnp.abs(step)) / 2.0)  # at most a factor e² per step

    def cond(state):
        _, f, _, scale, it = state
        return (jnp.max(jnp.abs(f)) > TOL) & (scale > 2.0**-10) & (it < MAXITER)

    def body(state):
        y, f, s, scale, it = state
        y_c = y + scale * s
        f_c, j_c = residual(y_c)
        accept = jnp.all(jnp.isfinite(f_c)) & (jnp.max(jnp.abs(f_c)) < jnp.max(jnp.abs(f)))
        return (
            jnp.where(accept, y_c, y),
            jnp.where(accept, f_c, f),
            jnp.where(accept, direction(f_c, j_c), s),
            jnp.where(accept, 1.0, 0.5 * scale),
            it + 1,
        )

    # The first pass evaluates the start itself (f = inf, zero step): one trace of the residual.
    y0 = jnp.full(2, jnp.log(start))
    init = (y0, jnp.full(2, jnp.inf, a.dtype), jnp.zeros(2, a.dtype), jnp.asarray(1.0, a.dtype), 0)
    y, f, _, _, it = jax.lax.while_loop(cond, body, init)
    return jnp.exp(y), c, rho, pole, it, jnp.max(jnp.abs(f))


def _one(a, b, w1, delta, n, p, lam, exact_count):
    pe = effective_fraction(n, p, exact_count)
    pi = jnp.stack([1.0 - pe, pe])
    x, c, rho, pole, it, res = _solve_one(a, b, n, pi, lam)
    n = jnp.where(pole, a.shape[0] + 1.0, n)
    t, tt, h = _traces(a, b, x, pi, rho)
    w = pi[:, None] * x[:, None] ** 2 * tt / n  # coupling W (§1.3)
    det = (1.0 - w[0, 0]) * (1.0 - w[1, 1]) - w[0, 1] * w[1, 0]
    v = jnp.stack([(1.0 - w[1, 1]) * w[0, 0] + w[0, 1] * w[1, 0], w[1, 0]]) / det  # (I − W)^-1 W e1
    # w̄ − w1 and w̄ − w2 formed without cancellation (exact zeros of the ridgeless mean error).
    b_delta = b * delta if b.ndim == 1 else b @ delta
    apply = (lambda v: h * v) if h.ndim == 1 else (lambda v: h @ v)
    m1 = apply(pi[1] * x[1] * b_delta - rho * w1)
    m2 = -apply(pi[0] * x[0] * a * delta + rho * (w1 + delta))
    mean1 = jnp.sum(a * m1 * m1)
    mean2 = jnp.sum(b * m2 * m2) if b.ndim == 1 else m2 @ b @ m2
    weight = pi * x
    u = x * jnp.where(c == 1.0, 1.0, lam)  # θ form: u = λθ
    ok = (res <= CONVERGED) & (det > 0) & jnp.isfinite(mean1)
    return dict(
        mean1=mean1,
        mean2=mean2,
        v=jnp.where(pole, jnp.inf, v),
        u=u,
        weight_ratio=x[1] / x[0],
        alpha=weight / jnp.sum(weight),
        kappa=rho / jnp.sum(weight),
        p_eff=pe,
        pole=pole,
        converged=ok | pole,
        iterations=it,
        residual=jnp.where(pole, 0.0, res),
    )


@partial(jax.jit, static_argnames=("exact_count",))
def _grid(a, b, w1, delta, n, p, lam, exact_count=True) -> dict:
    return jax.vmap(lambda n_, p_, l_: _one(a, b, w1, delta, n_, p_, l_, exact_count))(n, p, lam)


def _prepare(eigs, eigs2, n, p, lam):
    require_x64()
    eigs = check_eigenvalues("eigs", eigs)
    eigs2 = check_covariance("eigs2", eigs2, eigs.shape[0])
    n = check_in_range("n", n, 1.0, np.inf)
    p = check_in_range("p", p, 0.0, 1.0)
    lam = check_nonnegative("lam", lam)
    return eigs, eigs2, n, p, lam


def _solve_grid(eigs, eigs2, w1, delta, n, p, lam, exact_count) -> tuple[dict, tuple[int, ...]]:
    n, p, lam = broadcast_named(n=n, p=p, lam=lam)
    shape, size = n.shape, n.size
    # The O(d) commuting cells are cheap, the d×d ones are not: pad to a bucket so that grids of
    # similar size share one compilation (a compile costs seconds, a commuting cell microseconds).
    flat = _padded((n, p, lam), minimum=32) if eigs2.ndim == 1 else [a.ravel() for a in (n, p, lam)]
    out = _grid(eigs, eigs2, w1, delta, *flat, exact_count=bool(exact_count))
    return {k: v[:size].reshape(shape + v.shape[1:]) for k, v in out.items()}, shape


def _padded(arrays: tuple[np.ndarray, ...], minimum: int) -> list[np.ndarray]:
    """Flattened arrays padded (repeating the last cell) to max(minimum, a power of two) cells."""
    size = arrays[0].size
    bucket = max(minimum, 1 << max(size - 1, 0).bit_length())
    return [np.concatenate([a.ravel(), np.repeat(a.ravel()[-1:], bucket - size)]) for a in arrays]


def fixed_point(eigs: Any, eigs2: Any, *, n: Any, p: Any, lam: Any, exact_count: bool = True) -> FixedPoint:
    """The two-group fixed point of §1.2 and the effective row weights of §1.3, broadcast over n, p, lam.

    u_k = 1/(1+δ_k), δ_k = tr(Σ_k R̄)/n, R̄ = (Σ_k π_k u_k Σ_k + λ)^-1. Synthetic rows enter the mean
    predictor with relative weight u2/u1 (below 1 when Σ2 is "larger" than Σ1).
    """
    eigs, eigs2, n, p, lam = _prepare(eigs, eigs2, n, p, lam)
    zero = np.zeros(eigs.shape[0])
    out, _ = _solve_grid(eigs, eigs2, zero, zero, n, p, lam, exact_count)
    return FixedPoint(**{k: out[k] for k in FixedPoint._fields})


def test_error(
    eigs: Any,
    eigs2: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> ShiftTheory:
    """Deterministic equivalent (CS) of the real-data error of ridge on real + covariate-shifted rows.

    THEORY_SHIFT_GENERATIONS.md §1.2-1.5; for eigs2 = eigs this is THEORY.md eq. (A) (Strong Model
    Collapse, Thm 1) to rounding.

    Args:
        eigs: (d,) eigenvalues of Σ1 (real covariates), descending, positive.
        eigs2: Σ2 (synthetic covariates) in Σ1's eigenbasis: a (d,) positive vector (Σ2 commutes with
            Σ1) or a (d, d) symmetric positive definite matrix.
        w1, delta: (d,) real teacher and Δ = w2 − w1, in Σ1's eigenbasis.
        n: sample size(s) >= 1; rint(p·n) rows are synthetic (exact_count) with x ~ N(0, Σ2).
        p: synthetic fraction(s) in [0, 1].
        lam: ridge λ >= 0; λ = 0 is exact (OLS for n > d, min-norm for n < d, +inf at the pole n = d).
        sigma1, sigma2: label-noise standard deviations >= 0.
        exact_count: use the realised fraction rint(p·n)/n (as the simulation does), else p.

    Returns:
        :class:`ShiftTheory` broadcast over (n, p, lam, sigma1, sigma2).

    Raises:
        ParameterError: malformed or out-of-range input, naming the parameter.
    """
    eigs, eigs2, n, p, lam = _prepare(eigs, eigs2, n, p, lam)
    _, w1, delta = validate_problem(eigs, w1, delta)
    sigma1 = check_nonnegative("sigma1", sigma1)
    sigma2 = check_nonnegative("sigma2", sigma2)
    broadcast_named(n=n, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    out, _ = _solve_grid(eigs, eigs2, w1, delta, n, p, lam, exact_count)
    s1, s2 = jnp.asarray(sigma1) ** 2, jnp.asarray(sigma2) ** 2
    v1, v2 = out["v"][..., 0], out["v"][..., 1]
    mean = out["mean1"]
    fluct = v1 * mean + v2 * out["mean2"]
    noise = v1 * s1 + v2 * s2
    total = jnp.where(out["pole"], jnp.inf, mean + fluct + noise)
    full = total.shape
    bc = partial(jnp.broadcast_to, shape=full)
    bv = partial(jnp.broadcast_to, shape=full + (2,))
    return ShiftTheory(
        total=total,
        mean=bc(mean),
        fluctuation=bc(fluct),
        variance=bc(noise),
        v=bv(out["v"]),
        u=bv(out["u"]),
        weight_ratio=bc(out["weight_ratio"]),
        alpha=bv(out["alpha"]),
        kappa=bc(out["kappa"]),
        p_eff=bc(out["p_eff"]),
        converged=bc(out["converged"]),
        iterations=bc(out["iterations"]),
        residual=bc(out["residual"]),
    )


# ---------------------------------------------------------------------------------------------
# Closed forms and limits


def scaled_ridgeless(
    *, d: Any, n: Any, p: Any, s: Any, c2: Any, sigma1: Any, sigma2: Any
) -> dict[str, Array]:
    """Closed form of §1.5 for Σ2 = sΣ1, λ = 0, φ = d/n < 1 (p as given: the realised fraction).

    z > 0 solves z² + [(1+s)φ − (1−p) − sp] z − sφ(1−φ) = 0; u1 = z/(z+φ), u2 = z/(z+sφ);
    w̄ = w1 + αΔ with α = sp/(z + sφ); x1 = (1−p)u1²φ/z², x2 = p u2² sφ/z², c2 = ‖Δ‖²_Σ1:

        E = α²c² + [x1(α²c² + σ1²) + x2((1−α)² s c² + σ2²)] / (1 − x1 − s·x2).
    """
    phi, p, s = jnp.asarray(d) / jnp.asarray(n), jnp.asarray(p), jnp.asarray(s)
    bq = (1 + s) * phi - (1 - p) - s * p
    z = (-bq + jnp.sqrt(bq**2 + 4 * s * phi * (1 - phi))) / 2
    u1, u2 = z / (z + phi), z / (z + s * phi)
    alpha = s * p / (z + s * phi)
    x1, x2 = (1 - p) * u1**2 * phi / z**2, p * u2**2 * s * phi / z**2
    num = x1 * (alpha**2 * c2 + sigma1**2) + x2 * ((1 - alpha) ** 2 * s * c2 + sigma2**2)
    total = alpha**2 * c2 + num / (1 - x1 - s * x2)
    return dict(total=total, alpha=alpha, z=z, u1=u1, u2=u2, population_alpha=s * p / (1 - p + s * p))


def _plateau_value(a, b, w1, delta, p, lam):
    """P(λ) = ‖(Σ_mix + λ)^-1 (pΣ2Δ − λ w1)‖²_Σ1, elementwise over broadcast (p, lam)."""
    if b.ndim == 1:
        p_, lam_ = p[..., None], lam[..., None]
        m = (p_ * b * delta - lam_ * w1) / ((1 - p_) * a + p_ * b + lam_)
        return jnp.sum(a * m * m, axis=-1)
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    mix = (1 - p[..., None, None]) * jnp.diag(a) + p[..., None, None] * b + lam[..., None, None] * eye
    rhs = p[..., None] * (b @ delta) - lam[..., None] * w1
    m = jnp.linalg.solve(mix, rhs[..., None])[..., 0]
    return jnp.sum(a * m * m, axis=-1)


@jax.jit
def _plateau(a, b, w1, delta, p, lam) -> ShiftPlateau:
    value = _plateau_value(a, b, w1, delta, p, lam)
    at_zero = _plateau_value(a, b, w1, delta, p, jnp.zeros_like(p))
    grid = jnp.linspace(jnp.log(jnp.mean(a) * 1e-10), jnp.log(a[0] * 1e3), 131)

    def g(t: Array) -> Array:
        p_, lam_ = jnp.broadcast_arrays(p[..., None], jnp.exp(t))
        return _plateau_value(a, b, w1, delta, p_, lam_)

    t, best = golden_minimize(g, grid)
    at_inf = jnp.sum(a * w1**2) * jnp.ones_like(p)
    floor = jnp.minimum(best, jnp.minimum(at_zero, at_inf))
    lam_best = jnp.where(floor == at_zero, 0.0, jnp.where(floor == at_inf, jnp.inf, jnp.exp(t)))
    return ShiftPlateau(value=value, ridgeless=at_zero, floor=floor, lam=lam_best)


def plateau(eigs: Any, eigs2: Any, w1: Any, delta: Any, *, p: Any, lam: Any = 0.0) -> ShiftPlateau:
    """The covariate-shift plateau, n → ∞ at fixed d (§1.6): u_k → 1 and W → 0, so E → P(λ).

    P(λ) = ‖(Σ_mix + λ)^-1 (pΣ2Δ − λ w1)‖²_Σ1 with Σ_mix = (1−p)Σ1 + pΣ2; commuting and ridgeless,
    P(0) = Σ_i a_i Δ_i² (p_i^eff)², p_i^eff = p b_i/((1−p)a_i + p b_i). For Σ2 = Σ1 this is g(λ) of
    THEORY.md §2 (Strong Model Collapse, Thm 1 / Cor. 1). ``floor`` = min over λ in [0, ∞] of P(λ)
    (log-λ grid then golden section, as analytic.linear.plateau), the limit under the best λ schedule.

    Args:
        eigs, eigs2, w1, delta: as in :func:`test_error`.
        p: synthetic fraction(s) in [0, 1]; lam: λ >= 0 for ``value`` (broadcast with p).
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    eigs2 = check_covariance("eigs2", eigs2, eigs.shape[0])
    p, lam = broadcast_named(p=check_in_range("p", p, 0.0, 1.0), lam=check_nonnegative("lam", lam))
    flat = _padded((p, lam), minimum=8 if eigs2.ndim == 1 else 1)
    out = _plateau(eigs, eigs2, w1, delta, *flat)
    return ShiftPlateau(*(v[: p.size].reshape(p.shape) for v in out))
