"""Scaling laws under power-law spectra: predicted exponents, crossovers, and local slopes.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 3.2 (power-law spectra, "scaling laws"
of the classical linear model) and Sec. 4 (width); THEORY.md §4. Spectrum e_k = k^-β (β > 1),
target (w1)_k² ∝ k^-δ; continuum approximations for κ → 0 with d = ∞:

    df1(κ) ≈ C_β κ^(-1/β),  C_β = (π/β)/sin(π/β);   κ²⟨w, Σ(Σ+κ)^-2 w⟩ ≈ C κ^((β+δ−1)/β)

give, as exponents of E ∝ n^-a (or m^-a):

* clean, ridgeless, noiseless:  a = β + δ − 1 (bias; saturates at 2β when δ >= β + 1)
* clean, tuned λ, noisy:        a = (β+δ−1)/(β+δ) (saturates at 2β/(2β+1) when δ >= β + 1)
* synthetic (p > 0):            the noisy tuned rate with σ̃² >= p(1−p)c² and δ̄ = min(δ, δ_Δ), until
                                n* ≈ σ̃² P*^(-(β+δ̄)/(β+δ̄−1)), then a = 0 (the plateau P*)
* width, n = ∞:                 A(m) ∝ m^-min(β, β+δ−1); plus p²⟨Δ, Σ²(Σ+κ_m)^-1 Δ⟩ → p²c²

The local slope −d log E/d log n comes from the deterministic equivalent itself, by automatic
differentiation through its fixed point (implicit function theorem), not by finite differences.
For the tuned curve E*(n) = E(n, λ*(n)) the envelope theorem gives dE*/dn = ∂E/∂n at λ*.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.common import on_cells, validate_problem
from analytic.linear import _optimal_lam, _test_error, plateau
from analytic.random_projection import _infinite_data_limit
from strongcollapse.vocabulary.validation import (
    broadcast_named,
    check_in_range,
    check_nonnegative,
    check_positive,
    require_x64,
)

__all__ = ["Exponents", "exponents", "continuum_constant", "crossover", "local_slope", "width_slope"]


class Exponents(NamedTuple):
    """Predicted decay exponents a of E ∝ n^-a (THEORY.md §4); 0 means a plateau."""

    ridgeless_clean: float  # noiseless, d = ∞: the bias exponent (noisy ridgeless → constant σ²(β−1))
    tuned_clean: float  # noisy, optimally tuned λ
    tuned_synthetic_pre: float  # p > 0 before the crossover n*: the noisy rate with δ̄
    plateau: float  # p > 0 beyond n*: 0
    width: float  # A(m) at n = ∞, clean


def exponents(beta: float, source: float, shift_source: float | None = None) -> Exponents:
    """The exponents of THEORY.md §4 for e_k = k^-β, (w1)_k² ∝ k^-δ (δ = ``source``).

    Args:
        beta: spectral decay β > 1.
        source: source exponent δ >= 0 of w1 (β + δ > 1).
        shift_source: source exponent of Δ (default: the same as w1, as ``synthetic_shift`` builds
            it); δ̄ = min(δ, δ_Δ) sets the rate once synthetic labels act as noise.
    """
    beta = float(check_in_range("beta", beta, 1.0 + 1e-12, np.inf))
    delta = float(check_nonnegative("source", source))
    bar = (
        delta if shift_source is None else min(delta, float(check_nonnegative("shift_source", shift_source)))
    )

    def tuned(d: float) -> float:
        return 2 * beta / (2 * beta + 1) if d >= beta + 1 else (beta + d - 1) / (beta + d)

    return Exponents(
        ridgeless_clean=2 * beta if delta >= beta + 1 else beta + delta - 1,
        tuned_clean=tuned(delta),
        tuned_synthetic_pre=tuned(bar),
        plateau=0.0,
        width=min(beta, beta + delta - 1),
    )


def continuum_constant(beta: float) -> float:
    """C_β = (π/β)/sin(π/β), with df1(κ) ≈ C_β κ^(-1/β) as κ → 0 (d = ∞)."""
    beta = float(check_in_range("beta", beta, 1.0 + 1e-12, np.inf))
    return float((np.pi / beta) / np.sin(np.pi / beta))


def crossover(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    p: Any,
    beta: float,
    source: float,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
) -> Array:
    """n* ≈ σ̃² P*^(-(β+δ)/(β+δ−1)): where the noisy tuned rate reaches the floor P* (THEORY.md §4).

    At n*, (σ̃²/n*)^((β+δ−1)/(β+δ)) = P*, so the error is about 2P* there; beyond it the exponent
    falls to 0. P* is computed exactly (:func:`analytic.linear.plateau`). Broadcast over p, σ's.
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    p = check_in_range("p", p, 0.0, 1.0)
    s1, s2 = check_nonnegative("sigma1", sigma1), check_nonnegative("sigma2", sigma2)
    a = exponents(beta, source).tuned_synthetic_pre
    floor = np.asarray(plateau(eigs, w1, delta, p=p).floor)
    c2 = float(np.sum(eigs * delta**2))
    noise = (1 - p) * s1**2 + p * s2**2 + p * (1 - p) * c2
    with np.errstate(divide="ignore"):
        return np.where(floor > 0, noise * floor ** (-1.0 / a), np.inf)


@partial(jax.jit, static_argnames=("tuned",))
def _local_slope(eigs, w1, delta, n, p, lam, sigma1, sigma2, tuned: bool) -> tuple[Array, Array]:
    n, p, lam, sigma1, sigma2 = jnp.broadcast_arrays(n, p, lam, sigma1, sigma2)
    if tuned:
        lam = _optimal_lam(eigs, w1, delta, n, p, sigma1, sigma2, exact_count=False)[0]
    lam = jax.lax.stop_gradient(lam)  # envelope theorem: ∂E/∂λ = 0 at λ* (or λ* = 0 on the boundary)

    def log_error(log_n: Array) -> Array:
        return jnp.log(
            _test_error(eigs, w1, delta, jnp.exp(log_n), p, lam, sigma1, sigma2, exact_count=False).total
        )

    slope = jax.grad(lambda t: jnp.sum(log_error(t)))(jnp.log(n))  # elementwise: E_i depends on n_i only
    return slope, lam


def local_slope(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any = 0.0,
    tuned: bool = False,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
) -> tuple[Array, Array]:
    """d log E / d log n of the Model A deterministic equivalent (exact derivative, autodiff).

    Uses the idealised fraction p (``exact_count=False``): rint(p·n) is piecewise constant in n.

    Args:
        eigs, w1, delta: the problem.
        n: sample sizes (> 0, real-valued).
        p: synthetic fraction(s).
        lam: fixed ridge λ >= 0 (ignored when ``tuned``).
        tuned: differentiate the tuned curve E*(n) = min_λ E(n, λ) instead.
        sigma1, sigma2: label-noise standard deviations.

    Returns:
        (slope, λ used), broadcast over (n, p, lam, sigma1, sigma2).
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    n = check_positive("n", n)
    p = check_in_range("p", p, 0.0, 1.0)
    lam = check_nonnegative("lam", lam)
    s1, s2 = check_nonnegative("sigma1", sigma1), check_nonnegative("sigma2", sigma2)
    broadcast_named(n=n, p=p, lam=lam, sigma1=s1, sigma2=s2)
    return on_cells(_local_slope, (eigs, w1, delta), n, p, lam, s1, s2, tuned=bool(tuned))


def width_slope(eigs: Any, w1: Any, delta: Any, *, m: Any, p: Any = 0.0) -> Array:
    """d log E / d log m of the n = ∞ width curve A(m) + p²⟨Δ, Σ²(Σ+κ_m)^-1 Δ⟩ (THEORY.md §4).

    Centred finite differences would do, but the curve is a smooth function of m through κ_m, so
    the derivative is taken exactly here too (autodiff through κ_floor's implicit step).
    """
    require_x64()
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    m = check_in_range("m", m, 1.0, float(eigs.shape[0]) - 1e-9)
    p = check_in_range("p", p, 0.0, 1.0)

    def log_total(log_m: Array, p: Array) -> Array:
        return jnp.log(_infinite_data_limit(eigs, w1, delta, jnp.exp(log_m), p).total)

    m, p = np.broadcast_arrays(m, p)
    grad = jax.vmap(jax.grad(log_total))(jnp.log(jnp.ravel(m)), jnp.ravel(p))
    return grad.reshape(m.shape)
