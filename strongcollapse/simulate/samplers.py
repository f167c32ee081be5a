"""One training set of the real + synthetic mixture, drawn two exact ways (THEORY.md §0, §6).

* :func:`draw_data`: the data matrix X (n×d) and labels y themselves; O(n·d) normals.
* :func:`draw_statistics`: only XᵀX and Xᵀ(y − X w1), through :mod:`.wishart`; O(d²) normals and
  O(d³) work whatever n is, with n a dynamic scalar (needs n >= 2, d >= 2).

Rows: x ~ N(0, Σ) (Σ diagonal in its eigenbasis); the first rint(p·n) rows are synthetic, labelled
by w2 = w1 + Δ with noise σ2, the rest real, labelled by w1 with noise σ1. Which rows are synthetic
does not matter (rows are exchangeable), so both samplers fix them first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from strongcollapse.simulate.wishart import householder_vector, mixture_statistics

__all__ = ["draw_data", "draw_statistics", "whitened_shift"]


def draw_data(key: Array, eigs: Array, w1: Array, delta: Array, task: dict, n: int) -> tuple[Array, Array]:
    """(X, y) with X (n, d) and y (n,); ``task`` holds count, sigma1, sigma2 (dynamic scalars)."""
    d = eigs.shape[0]
    k_x, k_eps = jax.random.split(key)
    # Drawn once (barrier): x feeds several products and fusion would otherwise regenerate it.
    x = jax.lax.optimization_barrier(jax.random.normal(k_x, (n, d), eigs.dtype) * jnp.sqrt(eigs))
    synthetic = jnp.arange(n) < task["count"]
    y = x @ w1 + jnp.where(synthetic, x @ delta, 0.0)
    y = y + jax.random.normal(k_eps, (n,), eigs.dtype) * jnp.where(synthetic, task["sigma2"], task["sigma1"])
    return x, y


def whitened_shift(eigs: Array, delta: Array) -> tuple[Array, Array]:
    """(‖Σ^1/2 Δ‖, Householder vector of Σ^1/2 Δ): what the sufficient sampler needs of Δ."""
    a = jnp.sqrt(eigs) * delta
    return jnp.linalg.norm(a), householder_vector(a)


def draw_statistics(key: Array, eigs: Array, task: dict, shift: tuple[Array, Array]) -> tuple[Array, Array]:
    """(XᵀX, Xᵀ(y − X w1)) of one training set, drawn exactly without X.

    With X = Z Σ^1/2: XᵀX = Σ^1/2 ZᵀZ Σ^1/2 and Xᵀ(y − X w1) = Σ^1/2 Zᵀv (wishart.py). Returning
    the label residual against w1, not Xᵀy, lets callers solve for ŵ − w1 directly, which keeps
    full relative precision when the error is tiny (n ≫ d).
    """
    alpha, u = shift
    gram, score = mixture_statistics(
        key, eigs.shape[0], task["n"], task["count"], alpha, u, task["sigma1"], task["sigma2"], eigs.dtype
    )
    root = jnp.sqrt(eigs)
    return root[:, None] * gram * root[None, :], root * score
