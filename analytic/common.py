"""Pieces shared by every deterministic equivalent: validation, the ridgeless floor κ_floor, guards.

Pure jax.numpy (DESIGN.md §1): no randomness, no plotting, never imports the simulation.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.solvers import RootInfo, implicit_step, solve_increasing_log
from analytic.spectral import df12
from strongcollapse.vocabulary.validation import check_eigenvalues, check_vector

__all__ = ["kappa_floor", "safe_ratio", "effective_fraction", "validate_problem", "on_cells", "BUCKET_MIN"]

# The smallest padded batch (see on_cells).
BUCKET_MIN = 16


def kappa_floor(eigs: Array, n: Array) -> tuple[Array, RootInfo]:
    """κ_floor(N): 0 if rank Σ = d <= N, else the root of df1(κ) = N (THEORY.md §0).

    Bracket [e_d·1e-14, tr Σ/N] in log κ: df1 is strictly decreasing, df1(tr Σ/N) <= N, and
    df1(e_d·1e-14) ≈ d > N. In log κ the slope of N − df1 is κ·(−df1') = df1 − df2.
    """
    d = eigs.shape[-1]
    n = jnp.asarray(n, dtype=eigs.dtype)
    needs = n < d
    n_safe = jnp.where(needs, n, d - 0.5)  # a harmless equation where the root is unused

    def value_and_slope(k: Array, eigs: Array, n: Array) -> tuple[Array, Array]:
        f1, f2 = df12(eigs, k)
        return n - f1, f1 - f2

    lo = jnp.full(n.shape, eigs[-1] * 1e-14)
    hi = jnp.sum(eigs) / n_safe
    root, info = solve_increasing_log(value_and_slope, lo, hi, (eigs, n_safe))
    root = implicit_step(value_and_slope, root, (eigs, n_safe))
    return jnp.where(needs, root, 0.0), RootInfo(
        converged=jnp.where(needs, info.converged, True),
        iterations=jnp.where(needs, info.iterations, 0),
        residual=jnp.where(needs, info.residual, 0.0),
    )


def safe_ratio(num: Array, den: Array) -> Array:
    """num/den with 0/0 := 0 (a vanishing term at the pole n = d stays zero, not NaN)."""
    return jnp.where(num == 0, 0.0, num / jnp.where(num == 0, 1.0, den))


def effective_fraction(n: Array, p: Array, exact_count: bool) -> Array:
    """The synthetic fraction actually used: rint(p·n)/n (strongcollapse.vocabulary.problem convention)."""
    return jnp.rint(p * n) / n if exact_count else p


def validate_problem(eigs: Any, w1: Any, delta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eigs, w1, delta) as float64 arrays: eigs descending positive, teachers of length d."""
    eigs = check_eigenvalues("eigs", eigs)
    return eigs, check_vector("w1", w1, eigs.shape[0]), check_vector("delta", delta, eigs.shape[0])


def on_cells(kernel: Callable[..., Any], problem: tuple, *cells: Any, **static: Any) -> Any:
    """Evaluates a jitted, elementwise-in-cells ``kernel(*problem, *cells, **static)`` on a
    flat, padded batch, and returns NumPy arrays of the cells' broadcast shape.

    jit compiles once per input shape, and a deterministic equivalent compiles in 1-8 s (the
    fixed-point loops, the λ* search), while evaluating it takes milliseconds: every new grid shape
    used to cost a compile. Here the cell parameters are broadcast, flattened and padded (with a
    copy of the first cell) to a power of two ≥ ``BUCKET_MIN``, so every grid of up to 16 cells
    shares one executable, up to 32 the next, and so on; with the persistent compilation cache a
    later process reuses them too. Kernels are elementwise over cells (the solvers freeze converged
    cells), so padding never changes a value.

    Args:
        kernel: a jitted function whose outputs (a pytree) have the cells' broadcast shape.
        problem: the leading arguments shared by every cell (eigs, w1, delta).
        cells: per-cell parameters (validated NumPy arrays or scalars), broadcast together.
        static: static keyword arguments of the kernel.
    """
    arrays = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in cells))
    shape = arrays[0].shape
    size = int(np.prod(shape, dtype=np.int64))
    bucket = max(BUCKET_MIN, 1 << max(size - 1, 0).bit_length())
    flat = [np.concatenate([a.ravel(), np.repeat(a.ravel()[:1], bucket - size)]) for a in arrays]
    out = kernel(*problem, *flat, **static)
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:size].reshape(shape + np.shape(x)[1:]), out)
