"""Exact Wishart sampling by the Bartlett decomposition, singular case included (THEORY.md §6).

For Z ∈ R^{c×d} with iid N(0, 1) entries, ZᵀZ = A Aᵀ in distribution, where A is d×d lower
triangular with

    A_ii² ~ χ²(c − i)  for i < c (0-based),          A_ii = 0 for i >= c,
    A_ij ~ N(0, 1)      for i > j and j < c,          A_ij = 0 for j >= c,

all independent (Gram–Schmidt on the columns of Z: after c columns the span is exhausted, so the
remaining d − c columns are zero; Bartlett 1933, singular case Uhlig 1994). Moreover, for
ε ~ N(0, I_c) independent of Z, Zᵀε = A u in distribution with u ~ N(0, I_d) independent of A,
because Zᵀε = A Qᵀε with Q the orthonormal Gram–Schmidt basis and Qᵀε ~ N(0, I_c).

Hence one (d×d) factor per data group replaces an (c×d) data matrix, at O(d²) random numbers and
O(d³) work whatever c is: the sample size is a dynamic scalar, so dataset sizes can be vmapped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

__all__ = ["bartlett_pair"]


def _factor(diag_key: Array, below: Array, u: Array, count: Array) -> tuple[Array, Array]:
    d = below.shape[0]
    i = jnp.arange(d)
    dof = count - i.astype(below.dtype)
    has = dof > 0
    # χ²(ν) = 2 Gamma(ν/2); the shape is clamped where the entry is masked to keep gamma defined.
    chi2 = 2.0 * jax.random.gamma(diag_key, jnp.where(has, dof / 2.0, 1.0), dtype=below.dtype)
    diag = jnp.where(has, jnp.sqrt(chi2), 0.0)
    a = jnp.where((i < count)[None, :], below, 0.0) + jnp.diag(diag)
    return a, u


def bartlett_pair(
    key: Array, d: int, count1: Array, count2: Array, dtype=jnp.float64
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """Draws independent (A, u) factors for two data groups of sizes count1 and count2.

    A Aᵀ ~ Wishart(I_d, count) and A u ~ Zᵀε, as described in the module docstring. The two strict
    triangles of one d×d standard-normal matrix supply both factors' off-diagonal entries (they are
    disjoint sets of independent normals), halving the cost of the random numbers.

    Args:
        key: PRNG key.
        d: dimension (static).
        count1, count2: group sizes >= 0 (dynamic scalars, integer-valued).

    Returns:
        ((A1, u1), (A2, u2)): A_g (d, d) lower triangular with columns j >= count_g zero; u_g (d,).
    """
    k_tri, k_d1, k_d2, k_u = jax.random.split(key, 4)
    # The barrier makes XLA draw z once: without it, fusion regenerates the random numbers in each
    # of the two consumers below, doubling the dominant cost (measured).
    z = jax.lax.optimization_barrier(jax.random.normal(k_tri, (d, d), dtype=dtype))
    u = jax.random.normal(k_u, (2, d), dtype=dtype)
    first = _factor(k_d1, jnp.tril(z, k=-1), u[0], count1)
    second = _factor(k_d2, jnp.tril(z.T, k=-1), u[1], count2)
    return first, second
