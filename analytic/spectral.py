"""Spectral sums of Σ used by every deterministic equivalent (THEORY.md §0).

Glossary: ``eigs`` = (e_1 ≥ … ≥ e_d), ``kappa`` = κ, the renormalised ridge. Arrays of κ of any
shape broadcast against the trailing eigenvalue axis, so every function here is elementwise in κ.

    df_k(κ) = tr Σ^k (Σ + κ)^-k = Σ_j (e_j / (e_j + κ))^k,   d ≥ df1 ≥ df2 ≥ 0.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

__all__ = ["shrinkage", "complement", "df1", "df2", "df12", "weighted_sum"]


def shrinkage(eigs: Array, kappa: Array) -> Array:
    """r_j = e_j / (e_j + κ), shape kappa.shape + (d,). Exactly 1 at κ = 0 (no 0/0: e_j > 0)."""
    kappa = jnp.asarray(kappa)[..., None]
    return eigs / (eigs + kappa)


def complement(eigs: Array, kappa: Array) -> Array:
    """s_j = κ/(e_j + κ) = 1 − r_j, computed directly: 1 − r rounds to 0 once κ < e·1e-16."""
    kappa = jnp.asarray(kappa)[..., None]
    return kappa / (eigs + kappa)


def df1(eigs: Array, kappa: Array) -> Array:
    """df1(κ) = tr Σ(Σ+κ)^-1."""
    return jnp.sum(shrinkage(eigs, kappa), axis=-1)


def df2(eigs: Array, kappa: Array) -> Array:
    """df2(κ) = tr Σ²(Σ+κ)^-2."""
    return jnp.sum(shrinkage(eigs, kappa) ** 2, axis=-1)


def df12(eigs: Array, kappa: Array) -> tuple[Array, Array]:
    """(df1(κ), df2(κ)) from one evaluation of the shrinkage factors (the solvers' inner loop)."""
    r = shrinkage(eigs, kappa)
    return jnp.sum(r, axis=-1), jnp.sum(r * r, axis=-1)


def weighted_sum(weights: Array, a: Array, b: Array) -> Array:
    """Σ_j weights_j a_j b_j over the trailing axis: ⟨a, f(Σ) b⟩ with f(e_j) = weights_j."""
    return jnp.sum(weights * a * b, axis=-1)
