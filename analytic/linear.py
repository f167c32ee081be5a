"""Model A: ridge / min-norm regression on a real + synthetic mix, deterministic equivalent.

Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025), Sec. 3 / Thm 1 (classical
linear model); THEORY.md §1-2. Notation:

    eigs  e_j, eigenvalues of Σ                w1, delta  real teacher, Δ = w2 − w1
    n     sample size, φ = d/n                 p          synthetic fraction (rint(p·n) samples)
    lam   ridge λ of  min (1/n)‖y − Xw‖² + λ‖w‖²             sigma1, sigma2  label-noise std devs
    kappa κ, the renormalised ridge: κ − λ = κ df1(κ)/n, κ ≥ κ_floor(n)
    w̄ = w1 + pΔ,  σ̃² = (1−p)σ1² + pσ2² + p(1−p)c²,  c² = ⟨Δ, ΣΔ⟩

Test error on real data, E(ŵ) = ‖ŵ − w1‖²_Σ ≍ (THEORY.md eq. (A))

    E_A = [b + σ̃² df2/n] / (1 − df2/n)  −  2pκ⟨w̄, Σ(Σ+κ)^-1 Δ⟩  +  p²c²,
    b   = κ²⟨w̄, Σ(Σ+κ)^-2 w̄⟩.

The four terms are returned separately as ``bias``, ``variance``, ``cross`` and ``floor``.
Ridgeless (λ = 0) is exact, not a small λ: κ = κ_floor(n), which is 0 when n ≥ d, so bias and
cross vanish identically and E_A = σ̃² d/(n − d) + p²c² (and the pole n = d gives +inf).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.common import effective_fraction, kappa_floor, on_cells, safe_ratio, validate_problem
from analytic.solvers import RootInfo, golden_minimize, implicit_step, solve_increasing_log
from analytic.spectral import complement, df12, shrinkage, weighted_sum
from strongcollapse.vocabulary.validation import broadcast_named, check_in_range, check_nonnegative, require_x64

__all__ = [
    "LinearTheory",
    "Plateau",
    "kappa",
    "test_error",
    "isotropic_test_error",
    "isotropic_ridgeless",
    "plateau",
    "optimal_lam",
    "tuned_lam",
]


class LinearTheory(NamedTuple):
    """Deterministic equivalent of Model A and its decomposition (all broadcast to one shape).

    total = bias + variance + cross + floor.
    """

    total: Array
    bias: Array  # [κ²⟨w̄,Σ(Σ+κ)^-2 w̄⟩] / (1 − df2/n): clean bias towards w̄
    variance: Array  # σ̃² (df2/n) / (1 − df2/n): label noise + synthetic label disagreement
    cross: Array  # −2pκ⟨w̄, Σ(Σ+κ)^-1 Δ⟩: shrinkage cross term (any sign)
    floor: Array  # p²c²: the ridgeless strong-collapse plateau
    kappa: Array
    df1: Array
    df2: Array
    p_eff: Array  # the synthetic fraction used: rint(p·n)/n (or p when exact_count=False)
    converged: Array
    iterations: Array
    residual: Array


# ---------------------------------------------------------------------------------------------
# Fixed points (THEORY.md §2, "Solving the fixed point robustly")


def kappa(eigs: Array, n: Array, lam: Array) -> tuple[Array, RootInfo]:
    """Model A fixed point: κ − λ = κ df1(κ)/n with κ >= κ_floor(n) (THEORY.md §2).

    h(κ) = κ(1 − df1(κ)/n) is increasing and convex on [κ_floor, ∞) with h' = 1 − df2/n, so
    h(κ) = λ has one root in [max(λ, κ_floor), λ + tr Σ/n]. λ = 0 returns κ_floor exactly.
    """
    n, lam = jnp.asarray(n, eigs.dtype), jnp.asarray(lam, eigs.dtype)
    floor, floor_info = kappa_floor(eigs, n)  # depends on n alone: solved before broadcasting
    n, lam, floor = jnp.broadcast_arrays(n, lam, floor)
    floor_info = RootInfo(*(jnp.broadcast_to(a, n.shape) for a in floor_info))
    ridge = lam > 0
    lam_safe = jnp.where(ridge, lam, 1.0)

    def value_and_slope(k: Array, eigs: Array, n: Array, lam: Array) -> tuple[Array, Array]:
        f1, f2 = df12(eigs, k)
        return k * (1.0 - f1 / n) - lam, k * (1.0 - f2 / n)

    lo = jnp.maximum(lam_safe, floor)
    hi = lam_safe + jnp.sum(eigs) / n
    params = (eigs, n, lam_safe)
    root, info = solve_increasing_log(value_and_slope, lo, hi, params)
    root = implicit_step(value_and_slope, root, params)
    return jnp.where(ridge, root, floor), RootInfo(
        converged=jnp.where(ridge, info.converged & floor_info.converged, floor_info.converged),
        iterations=jnp.where(ridge, info.iterations, 0) + floor_info.iterations,
        residual=jnp.where(ridge, info.residual, floor_info.residual),
    )


# ---------------------------------------------------------------------------------------------
# Test error


@partial(jax.jit, static_argnames=("exact_count",))
def _test_error(eigs, w1, delta, n, p, lam, sigma1, sigma2, exact_count=True) -> LinearTheory:
    k, info = kappa(eigs, n, lam)  # shape broadcast(n, lam): κ does not depend on p
    r, s = shrinkage(eigs, k), complement(eigs, k)  # s = κ/(e+κ): exactly 0 at κ = 0, no 0/0
    f1, f2 = jnp.sum(r, -1), jnp.sum(r**2, -1)
    bias_w = eigs * s**2  # b = κ²⟨w̄, Σ(Σ+κ)^-2 w̄⟩ = Σ e s² w̄², expanded in p below
    cross_w = eigs * s  # κ⟨w̄, Σ(Σ+κ)^-1 Δ⟩ = Σ e s w̄ Δ
    b11, b1d, bdd = (weighted_sum(bias_w, a, c) for a, c in ((w1, w1), (w1, delta), (delta, delta)))
    c1d, cdd = weighted_sum(cross_w, w1, delta), weighted_sum(cross_w, delta, delta)
    c2 = jnp.sum(eigs * delta**2)

    pe = effective_fraction(n, p, exact_count)
    b = b11 + 2 * pe * b1d + pe**2 * bdd
    noise = (1 - pe) * sigma1**2 + pe * sigma2**2 + pe * (1 - pe) * c2
    denom = 1.0 - f2 / n
    bias = safe_ratio(b, denom)
    variance = safe_ratio(noise * f2 / n, denom)
    cross = -2 * pe * (c1d + pe * cdd)
    floor = pe**2 * c2
    total = bias + variance + cross + floor
    shape = total.shape
    bc = partial(jnp.broadcast_to, shape=shape)
    return LinearTheory(
        total=total,
        bias=bc(bias),
        variance=bc(variance),
        cross=bc(cross),
        floor=bc(floor),
        kappa=bc(k),
        df1=bc(f1),
        df2=bc(f2),
        p_eff=bc(pe),
        converged=bc(info.converged),
        iterations=bc(info.iterations),
        residual=bc(info.residual),
    )


def test_error(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> LinearTheory:
    """Deterministic equivalent of the Model A test error on real data (THEORY.md eq. (A)).

    Strong Model Collapse, Thm 1 (classical linear model), in the normalisation of THEORY.md §2.

    Args:
        eigs: (d,) eigenvalues of Σ, descending, positive.
        w1: (d,) real teacher in Σ's eigenbasis.
        delta: (d,) synthetic shift Δ = w2 − w1.
        n: sample size(s) >= 1 (real-valued n is allowed for smooth curves).
        p: synthetic fraction(s) in [0, 1]; exactly rint(p·n) samples are synthetic.
        lam: ridge λ >= 0; λ = 0 is the exact ridgeless / min-norm limit.
        sigma1, sigma2: label-noise standard deviations (>= 0) of real and synthetic labels.
        exact_count: use the realised fraction rint(p·n)/n (as the simulation does); False uses
            p itself (the n → ∞ idealisation).

    Returns:
        :class:`LinearTheory`, every field broadcast over (n, p, lam, sigma1, sigma2).

    Raises:
        ValueError: out-of-range or malformed input, naming the parameter.

    Example:
        >>> import numpy as np
        >>> res = test_error(np.ones(100), np.full(100, 0.1), np.zeros(100), n=200, p=0, lam=0,
        ...                  sigma1=1.0)
        >>> float(res.total)  # OLS: σ² φ/(1 − φ) with φ = 1/2
        1.0
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    n = check_in_range("n", n, 1.0, np.inf)
    p = check_in_range("p", p, 0.0, 1.0)
    lam = check_nonnegative("lam", lam)
    sigma1 = check_nonnegative("sigma1", sigma1)
    sigma2 = check_nonnegative("sigma2", sigma2)
    broadcast_named(n=n, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    return on_cells(_test_error, (eigs, w1, delta), n, p, lam, sigma1, sigma2, exact_count=bool(exact_count))


# ---------------------------------------------------------------------------------------------
# Isotropic closed forms (Σ = I), independent of the general solver


def isotropic_test_error(
    *, d: Any, n: Any, p: Any, lam: Any, sigma1: Any, sigma2: Any, w1_norm2: Any, c2: Any, w1_dot_delta: Any
) -> Array:
    """Closed-form Model A error for Σ = I (THEORY.md §2, "Isotropic"), any λ >= 0.

    κ = [(φ+λ−1) + sqrt((φ+λ−1)² + 4λ)]/2, u = 1 + κ,
    E = [κ²‖w̄‖² + σ̃²φ]/(u² − φ) − 2p(κ/u)⟨w̄,Δ⟩ + p²c², with p the fraction as given.
    """
    phi = jnp.asarray(d) / jnp.asarray(n)
    p, lam = jnp.asarray(p), jnp.asarray(lam)
    a = phi + lam - 1.0
    k = (a + jnp.sqrt(a**2 + 4 * lam)) / 2.0
    u = 1.0 + k
    wbar2 = w1_norm2 + 2 * p * w1_dot_delta + p**2 * c2
    wbar_delta = w1_dot_delta + p * c2
    noise = (1 - p) * sigma1**2 + p * sigma2**2 + p * (1 - p) * c2
    return (k**2 * wbar2 + noise * phi) / (u**2 - phi) - 2 * p * (k / u) * wbar_delta + p**2 * c2


def isotropic_ridgeless(*, d: Any, n: Any, p: Any, sigma1: Any, sigma2: Any, w1_norm2: Any, c2: Any) -> Array:
    """Ridgeless isotropic Model A (THEORY.md §2): the two regimes either side of φ = 1.

    φ < 1: σ̃²φ/(1−φ) + p²c²;   φ > 1: (1 − 1/φ)‖w1‖² + p²c²/φ + σ̃²/(φ−1).
    """
    phi = jnp.asarray(d) / jnp.asarray(n)
    p = jnp.asarray(p)
    noise = (1 - p) * sigma1**2 + p * sigma2**2 + p * (1 - p) * c2
    under = noise * phi / (1 - phi) + p**2 * c2
    over = (1 - 1 / phi) * w1_norm2 + p**2 * c2 / phi + noise / (phi - 1)
    return jnp.where(phi < 1, under, over)


# ---------------------------------------------------------------------------------------------
# Large-n plateau and optimal regularisation


class Plateau(NamedTuple):
    """n → ∞ limits of Model A (THEORY.md §2, "Large-n plateau")."""

    ridgeless: Array  # g(0) = p²c², the limit for λ_n → 0
    floor: Array  # P* = min over λ in [0, ∞] of g(λ), the limit for the best λ schedule
    lam: Array  # the minimising λ∞ (0 or +inf at the ends)


def _lam_grid(eigs: Array, points: int = 131) -> Array:
    """Log-λ grid from 1e-10 · mean(e) to 1e3 · e_1 (0.1 decade steps): the error is flat at both ends."""
    return jnp.linspace(jnp.log(jnp.mean(eigs) * 1e-10), jnp.log(eigs[0] * 1e3), points)


@jax.jit
def _plateau(eigs, w1, delta, p) -> Plateau:
    c2 = jnp.sum(eigs * delta**2)
    p = jnp.asarray(p)

    def g(t: Array) -> Array:
        r = shrinkage(eigs, jnp.exp(t))  # λ in place of κ: n → ∞ sends κ → λ
        wbar = w1 + p[..., None, None] * delta
        return jnp.sum(eigs * (r * wbar - w1) ** 2, axis=-1)

    t, value = golden_minimize(g, _lam_grid(eigs))
    at_zero, at_inf = p**2 * c2, jnp.sum(eigs * w1**2) * jnp.ones_like(p)
    best = jnp.minimum(value, jnp.minimum(at_zero, at_inf))
    lam = jnp.where(best == at_zero, 0.0, jnp.where(best == at_inf, jnp.inf, jnp.exp(t)))
    return Plateau(ridgeless=at_zero, floor=best, lam=lam)


def plateau(eigs: Any, w1: Any, delta: Any, *, p: Any) -> Plateau:
    """The n → ∞ floors of Model A: p²c² (ridgeless) and P* = min_λ ‖Σ(Σ+λ)^-1 w̄ − w1‖²_Σ.

    Strong Model Collapse, Thm 1 / Cor. 1 (strong collapse); THEORY.md §2. For every λ schedule,
    lim inf E_A >= P*; P* > 0 unless the ridge can map w̄ back onto w1.

    Args:
        eigs, w1, delta: the problem, as in :func:`test_error`.
        p: synthetic fraction(s) in [0, 1] (at n = ∞ the realised fraction is p).

    Returns:
        :class:`Plateau` broadcast over p.
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    p = check_in_range("p", p, 0.0, 1.0)
    return on_cells(_plateau, (eigs, w1, delta), p)


def _error_at_log_lam(t: Array, eigs, w1, delta, n, p, sigma1, sigma2, exact_count: bool) -> Array:
    return _test_error(eigs, w1, delta, n, p, jnp.exp(t), sigma1, sigma2, exact_count=exact_count).total


def _log_lam_derivatives(t: Array, args: tuple, exact_count: bool) -> tuple[Array, Array]:
    """(∂E/∂t, ∂²E/∂t²) at t = log λ, elementwise (every element of E depends on its own t only)."""

    def first(tt: Array) -> Array:
        return jax.grad(lambda u: jnp.sum(_error_at_log_lam(u, *args, exact_count)))(tt)

    return first(t), jax.grad(lambda u: jnp.sum(first(u)))(t)


@partial(jax.jit, static_argnames=("exact_count",))
def _optimal_lam(eigs, w1, delta, n, p, sigma1, sigma2, exact_count=True) -> tuple[Array, Array]:
    def err(t: Array) -> Array:
        return _test_error(
            eigs,
            w1,
            delta,
            n[..., None],
            p[..., None],
            jnp.exp(t),
            sigma1[..., None],
            sigma2[..., None],
            exact_count=exact_count,
        ).total

    # Golden section shrinks the 2-cell bracket (0.2 decades) by 0.618 per step: 32 steps locate
    # λ* to ~1e-7 relative; three Newton steps on ∂E/∂log λ = 0 then polish it to ~1e-12, so that
    # finite differences of λ* (gradient checks) are not swamped by the search's resolution.
    grid = _lam_grid(eigs)
    t, value = golden_minimize(err, grid, iterations=32)
    shape = jnp.broadcast_shapes(t.shape, n.shape, p.shape, sigma1.shape, sigma2.shape)
    t = jnp.broadcast_to(t, shape)
    args = (eigs, w1, delta, n, p, sigma1, sigma2)
    for _ in range(3):
        slope, curvature = _log_lam_derivatives(t, args, exact_count)
        step = jnp.where(curvature > 0, slope / jnp.where(curvature > 0, curvature, 1.0), 0.0)
        t = jnp.clip(t - jnp.clip(step, -0.2, 0.2), grid[0], grid[-1])  # stay within the searched cell
    polished = _error_at_log_lam(t, *args, exact_count)
    value = jnp.minimum(jnp.broadcast_to(value, shape), polished)
    ridgeless = _test_error(eigs, w1, delta, n, p, 0.0, sigma1, sigma2, exact_count=exact_count).total
    use_zero = ridgeless <= value
    return jnp.where(use_zero, 0.0, jnp.exp(t)), jnp.where(use_zero, ridgeless, value)


@partial(jax.custom_jvp, nondiff_argnums=(7,))
def tuned_lam(eigs, w1, delta, n, p, sigma1, sigma2, exact_count=False) -> Array:
    """λ*(θ), differentiable: the primal is the search of :func:`optimal_lam`, the derivative the
    implicit function theorem on ∂E/∂log λ = 0:  d log λ*/dθ = −(∂²E/∂log λ ∂θ)/(∂²E/∂log λ²).

    Where λ* = 0 (ridgeless is optimal, a boundary minimum) the derivative is 0. Traceable (no
    validation): call with jax arrays; see :func:`optimal_lam` for the validated entry point.
    """
    return _optimal_lam(eigs, w1, delta, n, p, sigma1, sigma2, exact_count=exact_count)[0]


@tuned_lam.defjvp
def _tuned_lam_jvp(exact_count, primals, tangents):
    lam = tuned_lam(*primals, exact_count)
    t = jnp.log(jnp.where(lam > 0, lam, 1.0))

    def slope(*args: Array) -> Array:
        return _log_lam_derivatives(t, args, exact_count)[0]

    _, cross = jax.jvp(slope, primals, tangents)
    curvature = _log_lam_derivatives(t, primals, exact_count)[1]
    dt = -cross / jnp.where(curvature > 0, curvature, 1.0)
    return lam, jnp.where((lam > 0) & (curvature > 0), lam * dt, 0.0)


def optimal_lam(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
    return_error: bool = False,
) -> Array | tuple[Array, Array]:
    """λ* = argmin over λ >= 0 of the Model A deterministic-equivalent error (tuned ridge).

    A log-λ grid (1e-10·mean e to 1e3·e_1, 131 points) locates the best cell, golden-section search
    refines it, and λ = 0 (ridgeless) is compared exactly. Broadcast over n, p, sigma1, sigma2.

    Returns:
        λ*, or (λ*, E(λ*)) when ``return_error``.
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    n = check_in_range("n", n, 1.0, np.inf)
    p = check_in_range("p", p, 0.0, 1.0)
    sigma1 = check_nonnegative("sigma1", sigma1)
    sigma2 = check_nonnegative("sigma2", sigma2)
    broadcast_named(n=n, p=p, sigma1=sigma1, sigma2=sigma2)
    lam, value = on_cells(_optimal_lam, (eigs, w1, delta), n, p, sigma1, sigma2, exact_count=bool(exact_count))
    return (lam, value) if return_error else lam
