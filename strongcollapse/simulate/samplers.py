"""One training set of the real + synthetic mixture, drawn two exact ways (THEORY.md §0, §6).

* :func:`draw_data`: the data matrix X (n×d) and labels y themselves; O(n·d) normals.
* :func:`draw_statistics`: only XᵀX and Xᵀ(y − X w1), through :mod:`.wishart`; O(d²) normals and
  O(d³) work whatever n is, with n a dynamic scalar (needs n >= 2, d >= 2).

Rows: x ~ N(0, Σ) (Σ diagonal in its eigenbasis); the first rint(p·n) rows are synthetic, labelled
by w2 = w1 + Δ with noise σ2, the rest real, labelled by w1 with noise σ1. Which rows are synthetic
does not matter (rows are exchangeable), so both samplers fix them first.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from strongcollapse.simulate.wishart import householder_vector, mixture_statistics, reflect

__all__ = ["Frame", "draw_data", "draw_statistics"]


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


class Frame(NamedTuple):
    """The rotated whitened frame z' = H Σ^-1/2 x of the sufficient statistics (H Σ^1/2 Δ = α e1).

    Ridge in this frame (e = ŵ − w1 = Σ^-1/2 H f, so that ‖e‖²_Σ = ‖f‖²):

        (XᵀX + μ) e = Xᵀ(y − Xw1) − μ w1   ⟺   (G' + μ H Σ⁻¹ H) f = s' − μ H Σ^-1/2 w1,

    with (G', s') = (Z'ᵀZ', Z'ᵀv) as drawn. Only O(d²) work per batch rotates the problem into the
    frame; no trial ever rotates its d×d Gram matrix back.
    """

    alpha: Array  # ‖Σ^1/2 Δ‖ = c
    u: Array  # Householder vector of Σ^1/2 Δ
    root: Array  # Σ^1/2 (its diagonal)

    @classmethod
    def of(cls, eigs: Array, delta: Array) -> "Frame":
        """The frame of a problem (computed once per batch)."""
        root = jnp.sqrt(eigs)
        a = root * delta
        return cls(jnp.linalg.norm(a), householder_vector(a), root)

    def whitened(self, w: Array) -> Array:
        """H Σ^1/2 w: a weight vector in the frame (risk ‖w‖²_Σ = ‖H Σ^1/2 w‖²)."""
        return reflect(self.u, self.root * w)

    def rows(self, s: Array) -> Array:
        """S Σ^1/2 H: a projection's rows acting on frame coordinates (S x = (S Σ^1/2 H) z')."""
        return reflect(self.u, (s * self.root).T).T

    def penalty(self) -> Array:
        """H Σ⁻¹ H: the ridge penalty ‖w‖² = ‖e + w1‖² in frame coordinates (its quadratic part)."""
        inverse = jnp.diag(1.0 / self.root**2)
        return reflect(self.u, reflect(self.u, inverse).T)

    def dual(self, w: Array) -> Array:
        """H Σ^-1/2 w: the ridge penalty's linear term in frame coordinates."""
        return reflect(self.u, w / self.root)


def draw_statistics(key: Array, task: dict, frame: Frame) -> tuple[Array, Array]:
    """(G', s') = (Z'ᵀZ', Z'ᵀv) of one training set in the frame, drawn exactly without X.

    v = y − X w1 is the label residual against the real teacher, so callers solve for ŵ − w1
    directly, which keeps full relative precision when the error is tiny (n ≫ d).
    """
    d = frame.root.shape[0]
    return mixture_statistics(
        key, d, task["n"], task["count"], frame.alpha, task["sigma1"], task["sigma2"], frame.root.dtype
    )
