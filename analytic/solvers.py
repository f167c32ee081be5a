"""Vectorised, bracketed root finding and minimisation for the fixed points of THEORY.md §2-3.

Every solver works elementwise on arrays of problems at once (one ``lax.while_loop`` for the whole
grid) and reports, per element, whether it converged, after how many iterations and with what
residual: a non-converged value is never returned silently (DESIGN.md §2).

Method: safeguarded Newton in log κ on a bracket known to contain the unique root (THEORY.md §2
"Solving the fixed point robustly"). Newton's step is taken when it stays strictly inside the
current bracket, otherwise the bracket is bisected (geometrically in κ). The bracket shrinks with
every evaluation, so the method cannot diverge; near the root it converges quadratically.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

__all__ = ["RootInfo", "solve_increasing_log", "implicit_step", "golden_minimize"]

# Relative tolerance on κ. Newton converges quadratically, so the loop normally stops a step after
# reaching ~1e-15; the tolerance only decides when to stop iterating.
RTOL = 1e-14
MAXITER = 200


class RootInfo(NamedTuple):
    """Per-element convergence report of a root solve."""

    converged: Array  # bool
    iterations: Array  # int32
    residual: Array  # |g(root)|, in the units of the equation solved


def solve_increasing_log(
    value_and_slope: Callable[..., tuple[Array, Array]],
    lo: Array,
    hi: Array,
    params: tuple = (),
    *,
    rtol: float = RTOL,
    maxiter: int = MAXITER,
) -> tuple[Array, RootInfo]:
    """Finds κ in [lo, hi] with g(κ) = 0, for g increasing on the bracket, elementwise.

    Args:
        value_and_slope: (κ, *params) ↦ (g(κ), κ g'(κ)), elementwise on arrays of the shape of ``lo``
            (κ g' is the derivative in log κ; passing it explicitly lets callers share the spectral
            sums between value and slope, which halves the cost of each iteration).
        lo, hi: positive bracket ends, same shape, with g(lo) <= 0 <= g(hi).
        params: the arrays g depends on. The loop sees them through ``stop_gradient``, so no
            derivative (of any order) is ever taken through the iterations: gradients come from
            :func:`implicit_step` with the same ``params``.

    Returns:
        (kappa, RootInfo). ``kappa`` carries no gradient: callers apply an implicit step.
    """
    params = jax.tree_util.tree_map(jax.lax.stop_gradient, tuple(params))

    def g(k: Array) -> tuple[Array, Array]:
        return value_and_slope(k, *params)

    lo = jax.lax.stop_gradient(jnp.asarray(lo))
    hi = jax.lax.stop_gradient(jnp.asarray(hi))
    a, b = jnp.log(lo), jnp.log(hi)
    done0 = jnp.zeros(lo.shape, dtype=bool)
    it0 = jnp.zeros(lo.shape, dtype=jnp.int32)

    def cond(state: tuple) -> Array:
        _, _, _, done, it = state
        return jnp.any(~done) & (jnp.max(it) < maxiter)

    def body(state: tuple) -> tuple:
        a, b, t, done, it = state
        gt, dgt = g(jnp.exp(t))
        a_new = jnp.where(gt <= 0, t, a)
        b_new = jnp.where(gt >= 0, t, b)
        newton = t - gt / dgt
        scale = 1.0 + jnp.abs(t)
        # A Newton step below tolerance means convergence; test it before the bracket check,
        # since at the noise floor such a step can land exactly on a bracket end.
        small = jnp.abs(newton - t) <= rtol * scale
        inside = (newton > a_new) & (newton < b_new) & jnp.isfinite(newton)
        t_new = jnp.where(inside | small, newton, 0.5 * (a_new + b_new))
        now_done = (gt == 0) | small | (b_new - a_new <= rtol * scale)
        keep = done
        return (
            jnp.where(keep, a, a_new),
            jnp.where(keep, b, b_new),
            jnp.where(keep, t, jnp.where(gt == 0, t, t_new)),
            done | now_done,
            jnp.where(keep, it, it + 1),
        )

    _, _, t, done, it = jax.lax.while_loop(cond, body, (a, b, b, done0, it0))
    kappa = jnp.exp(t)
    return kappa, RootInfo(converged=done, iterations=it, residual=jnp.abs(g(kappa)[0]))


def implicit_step(
    value_and_slope: Callable[..., tuple[Array, Array]], root: Array, params: tuple = ()
) -> Array:
    """One Newton step at an already-converged root, to carry gradients through the solve.

    At the root g(κ*) = 0, so the value is unchanged, while the derivative of
    κ* − g(κ*; θ)/stop_gradient(g'(κ*)) is exactly −(∂g/∂θ)/g' (implicit function theorem), to
    any order of differentiation that the caller's g supports.
    """
    root = jax.lax.stop_gradient(root)
    value, slope = value_and_slope(root, *params)
    return root - value * root / jax.lax.stop_gradient(slope)


def golden_minimize(
    f: Callable[[Array], Array],
    grid: Array,
    *,
    iterations: int = 60,
) -> tuple[Array, Array]:
    """Minimises f(t) over t in [grid[0], grid[-1]], elementwise, by grid search then golden section.

    ``f`` maps an array of t with a trailing grid axis to values of the same shape (t broadcasts
    against the problem shape). The grid locates the best cell (so a function with several local
    minima is handled at the grid's resolution); golden-section search then refines within the two
    neighbouring cells.

    Returns:
        (t_min, f_min), both of the problem shape.
    """
    values = f(grid)
    j = jnp.argmin(values, axis=-1)
    last = grid.shape[0] - 1
    a = grid[jnp.clip(j - 1, 0, last)]
    b = grid[jnp.clip(j + 1, 0, last)]
    invphi = (jnp.sqrt(5.0) - 1.0) / 2.0

    def evaluate(t: Array) -> Array:
        return f(t[..., None])[..., 0]

    c = b - invphi * (b - a)
    e = a + invphi * (b - a)
    fc, fe = evaluate(c), evaluate(e)

    def body(_: int, state: tuple) -> tuple:
        a, b, c, e, fc, fe = state
        left = fc < fe
        a2 = jnp.where(left, a, c)
        b2 = jnp.where(left, e, b)
        c2 = jnp.where(left, b2 - invphi * (b2 - a2), e)
        e2 = jnp.where(left, c, a2 + invphi * (b2 - a2))
        probe = jnp.where(left, c2, e2)
        fp = evaluate(probe)
        fc2 = jnp.where(left, fp, fe)
        fe2 = jnp.where(left, fc, fp)
        return a2, b2, c2, e2, fc2, fe2

    a, b, c, e, fc, fe = jax.lax.fori_loop(0, iterations, body, (a, b, c, e, fc, fe))
    t_best = jnp.where(fc < fe, c, e)
    f_best = jnp.minimum(fc, fe)
    grid_best = jnp.min(values, axis=-1)
    # The refined point can only improve on the grid; keep the grid point if it does not (flat f).
    t_grid = grid[j]
    better = f_best <= grid_best
    return jnp.where(better, t_best, t_grid), jnp.where(better, f_best, grid_best)
