"""Covariate shift for the Model A Monte Carlo: synthetic rows drawn from N(0, Σ2), Σ2 ≠ Σ1.

THEORY_SHIFT_GENERATIONS.md §1.1 set-up, used by ``strongcollapse.simulate.linear(..., eigs2=...)``.
One trial (everything in Σ1's eigenbasis, Σ1 = diag(eigs)):

    n − k real rows       x ~ N(0, Σ1),  y = ⟨x, w1⟩ + N(0, σ1²)
    k = rint(p·n) rows    x ~ N(0, Σ2),  y = ⟨x, w1 + Δ⟩ + N(0, σ2²)   (Σ2 = eigs2: (d,) or (d, d))
    ŵ = argmin (1/n)‖y − Xw‖² + λ‖w‖²,   E = (ŵ − w1)ᵀ Σ1 (ŵ − w1)   (exact population risk on Σ1)

Both samplers are exact in law and float64 by default:

* ``sufficient`` (exact, O(d³) whatever n): the two groups are independent, so XᵀX = W1 + W2 with
  W_k ~ Wishart(Σ_k, n_k) and Xᵀ(y − Xw1) = W2Δ + X1ᵀε1 + X2ᵀε2 with X_kᵀε_k | W_k ~ N(0, σ_k² W_k).
  Work in g = Vᵀ Σ1^1/2 (ŵ − w1), where C = Σ1^-1/2 Σ2 Σ1^-1/2 = V Λ Vᵀ (V = I when Σ2 is a vector):
  there the real rows are N(0, I) and the synthetic rows N(0, Λ), both diagonal. The real group's
  whitened statistics are rotation invariant in law, so V never touches a trial. Each group is drawn
  by the one-group construction of :mod:`strongcollapse.simulate.wishart` (a label column pair with a
  2×2 Bartlett Gram plus a Bartlett factor for the rest, singular Wishart included; re-assembled here
  so that both groups share one chi-square rejection loop, which halved the compile time), the
  synthetic group in the frame of its label direction a2 = Λ^1/2 Vᵀ Σ1^1/2 Δ (reflected back in
  O(d²)). Then

      (G1 + Λ^1/2 G2 Λ^1/2 + nλ P) g = s1 + Λ^1/2 s2 − nλ q,   P = Vᵀ Σ1^-1 V,  q = Vᵀ Σ1^-1/2 w1,

  and E = ‖g‖². Per trial: two Bartlett Grams and one Cholesky factor (no d×d rotation).
  Groups of 0 or 1 rows (p near 0 or 1) are drawn directly (zero, or one row's outer product).
* ``direct``: draws the rows themselves (x = L2 g for synthetic rows), solved in the smaller of the
  primal and dual forms as the same-covariance sampler does (exact ridgeless on both sides of n = d).

Keys: trial t of cell c uses fold_in(fold_in(key, c), t) like every other sampler, so the chunked,
resumable, sharded engine applies unchanged; the store tag includes a digest of Σ2.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from strongcollapse.simulate.keys import trial_key
from strongcollapse.simulate.sweep import Sweep, cholesky_solve, risk
from strongcollapse.simulate.wishart import chi_square, householder_vector, reflect
from strongcollapse.vocabulary.validation import check_covariance

__all__ = ["ShiftedProblem", "bytes_per_trial"]


def bytes_per_trial(method: str, n: int, d: int, dtype: str) -> int:
    """Working-memory estimate of one shifted trial (two group Grams, the rotated one, the system)."""
    item = np.dtype(dtype).itemsize
    if method == "sufficient":
        return item * (6 * d * d + 24 * d)
    small = min(n, d)
    return item * (4 * n * d + 3 * small * small + 8 * d + 4 * n)


# ---------------------------------------------------------------------------------------------
# One trial


def _bartlett(diag: Array, x: Array, keep: Array) -> Array:
    """BBᵀ from a Bartlett factor's diagonal and normals, assembled as wishart.bartlett_gram does."""
    dim = diag.shape[0]
    a = dim // 2
    b = dim - a
    q = x[:, :b]
    b11 = jnp.where(keep[None, :a], jnp.triu(q, 1)[:a, :a].T, 0.0) + jnp.diag(diag[:a])
    b21 = jnp.where(keep[None, :a], x[:, b:], 0.0)
    b22 = jnp.where(keep[None, a:], jnp.tril(q, -1), 0.0) + jnp.diag(diag[a:])
    g21 = b21 @ b11.T
    return jnp.block([[b11 @ b11.T, g21.T], [g21, b21 @ b21.T + b22 @ b22.T]])


def _group(chi: Array, off: Array, t: Array, x: Array, row: Array, noise: Array, m, label, alpha, sigma):
    """(ZᵀZ, Zᵀv) of one group of m whitened rows, v = label·α z_1 + σ ξ (wishart.py's construction).

    The label-carrying pair [z_1, v] has the 2×2 Gram K = Pᵀ V P (V ~ Wishart_2(m, I)); given it, the
    other d − 1 columns contribute LᵀT (T iid normal) and a Bartlett Wishart_{d−1}(m − 2, I). Groups
    of 0 or 1 rows (where that construction does not apply) are drawn directly.
    """
    dt = chi.dtype
    v22 = jnp.array([[chi[0] ** 2, chi[0] * off], [chi[0] * off, off**2 + chi[1] ** 2]])
    p = jnp.array([[1.0, label * alpha], [0.0, sigma]], dt)
    k = p.T @ v22 @ p
    l11 = jnp.sqrt(k[0, 0])
    l21 = k[0, 1] / l11
    l22 = jnp.sqrt(jnp.maximum(k[1, 1] - l21 * l21, 0.0))
    c_r, v_r = l11 * t[0], l21 * t[0] + l22 * t[1]
    rest = _bartlett(chi[2:], x, jnp.arange(chi.shape[0] - 2) < m - 2.0) + t.T @ t
    gram = jnp.block([[k[0, 0][None, None], c_r[None, :]], [c_r[:, None], rest]])
    score = jnp.concatenate([k[0, 1][None], v_r])
    v1 = label * alpha * row[0] + sigma * noise
    one = m >= 1
    gram = jnp.where(m >= 2, gram, jnp.where(one, jnp.outer(row, row), 0.0))
    score = jnp.where(m >= 2, score, jnp.where(one, row * v1, 0.0))
    return gram, score


def _two_groups(key: Array, d: int, sizes: Array, alpha: Array, sigmas: Array) -> tuple[Array, Array]:
    """Whitened statistics of the real group (no label direction) and the synthetic one (α along e1).

    All chi-squares of both groups come from one call of the rejection sampler
    (:func:`strongcollapse.simulate.wishart.chi_square`): four calls, as two ``mixture_statistics``
    make, compiled about four times slower.
    """
    dt = alpha.dtype
    k_chi, k_normal = jax.random.split(key)
    dim = d - 1
    a, b = dim // 2, dim - dim // 2
    m = sizes[:, None]
    dofs = jnp.concatenate([m, m - 1.0, m - 2.0 - jnp.arange(dim, dtype=dt)[None, :]], axis=1)
    chi = jnp.sqrt(chi_square(k_chi, dofs, dt))
    # Every normal of the trial in one draw, then sliced: each jax.random call is a separately
    # compiled hash, and six of them compiled slower than the whole rest of the trial.
    widths = (1, 2 * dim, b * (a + b), d, 1)
    z = jax.random.normal(k_normal, (2, sum(widths)), dt)
    off, t, x, rows, noise = jnp.split(z, np.cumsum(widths)[:-1], axis=1)
    off = jnp.where(sizes >= 1, off[:, 0], 0.0)
    t, x, noise = t.reshape(2, 2, dim), x.reshape(2, b, a + b), noise[:, 0]
    labels = jnp.array([0.0, 1.0], dt)
    per_group = jax.vmap(_group, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, 0))
    return per_group(chi, off, t, x, rows, noise, sizes, labels, alpha, sigmas)


def _sufficient_trial(key, scale, penalty, dual, u2, alpha2, task) -> Array:
    d = scale.shape[0]
    count = task["count"]
    sizes = jnp.stack([task["n"] - count, count])
    sigmas = jnp.stack([task["sigma1"], task["sigma2"]])
    grams, scores = _two_groups(trial_key(key, task["cell"], task["trial"]), d, sizes, alpha2, sigmas)
    g2, s2 = reflect(u2, reflect(u2, grams[1]).T), reflect(u2, scores[1])  # from the label frame: HGH, Hs
    ridge = task["n"] * task["lam"]
    gram = grams[0] + scale[:, None] * g2 * scale[None, :] + ridge * penalty
    g = cholesky_solve(gram, scores[0] + scale * s2 - ridge * dual)
    return jnp.sum(g * g)


def _direct_trial(key, eigs, w1, delta, factor2, task, *, n: int) -> Array:
    d = eigs.shape[0]
    z = jax.random.normal(trial_key(key, task["cell"], task["trial"]), (n, d + 1), eigs.dtype)  # one draw
    g, eps = z[:, :d], z[:, d]
    synthetic = jnp.arange(n) < task["count"]
    rows2 = g * factor2 if factor2.ndim == 1 else g @ factor2.T  # x = L2 g, L2 L2ᵀ = Σ2
    x = jnp.where(synthetic[:, None], rows2, g * jnp.sqrt(eigs))
    x = jax.lax.optimization_barrier(x)  # drawn once: x feeds several products
    y = x @ w1 + jnp.where(synthetic, x @ delta, 0.0)
    y = y + eps * jnp.where(synthetic, task["sigma2"], task["sigma1"])
    ridge = n * task["lam"]
    if n >= d:
        w = cholesky_solve(x.T @ x + ridge * jnp.eye(d, dtype=eigs.dtype), x.T @ y)
    else:  # dual form: the min-norm interpolator at λ = 0
        w = x.T @ cholesky_solve(x @ x.T + ridge * jnp.eye(n, dtype=eigs.dtype), y)
    return risk(eigs, w - w1)


def _cast(arrays: tuple, tasks: dict, dtype: str) -> tuple[tuple, dict]:
    floats = tuple(jnp.asarray(a, dtype=dtype) for a in arrays)
    return floats, {k: (v if k in ("cell", "trial") else v.astype(dtype)) for k, v in tasks.items()}


@partial(jax.jit, static_argnames=("dtype",))
def _sufficient_batch(key, scale, penalty, dual, u2, alpha2, tasks, *, dtype: str) -> Array:
    arrays, tasks = _cast((scale, penalty, dual, u2, alpha2), tasks, dtype)
    return jax.vmap(lambda t: _sufficient_trial(key, *arrays, t))(tasks)


@partial(jax.jit, static_argnames=("n", "dtype"))
def _direct_batch(key, eigs, w1, delta, factor2, tasks, *, n: int, dtype: str) -> Array:
    (eigs, w1, delta, factor2), tasks = _cast((eigs, w1, delta, factor2), tasks, dtype)
    return jax.vmap(lambda t: _direct_trial(key, eigs, w1, delta, factor2, t, n=n))(tasks)


# ---------------------------------------------------------------------------------------------
# The problem, prepared once per call (float64 NumPy)


@dataclasses.dataclass(frozen=True)
class ShiftedProblem:
    """A validated sweep plus Σ2, prepared for both samplers (see the module docstring)."""

    sweep: Sweep
    eigs2: np.ndarray  # (d,) or (d, d), as validated
    factor2: np.ndarray  # direct rows x = L2 g: (d,) sqrt(Σ2) or (d, d) Cholesky factor
    scale: np.ndarray  # (d,) Λ^1/2
    penalty: np.ndarray  # (d, d) P = Vᵀ Σ1^-1 V
    dual: np.ndarray  # (d,) q = Vᵀ Σ1^-1/2 w1
    u2: np.ndarray  # (d,) Householder vector of a2 = Λ^1/2 Vᵀ Σ1^1/2 Δ
    alpha2: float  # ‖a2‖ = ‖Δ‖_Σ2

    @classmethod
    def of(cls, sweep: Sweep, eigs2: Any) -> "ShiftedProblem":
        """Validates Σ2 against the sweep's d and prepares the frame."""
        eigs2 = check_covariance("eigs2", eigs2, sweep.d)
        root = np.sqrt(sweep.eigs)
        if eigs2.ndim == 1:
            factor2, lam2, v = np.sqrt(eigs2), eigs2 / sweep.eigs, np.eye(sweep.d)
        else:
            factor2 = np.linalg.cholesky(eigs2)
            c = eigs2 / np.outer(root, root)
            lam2, v = np.linalg.eigh(0.5 * (c + c.T))
        scale = np.sqrt(lam2)
        a2 = scale * (v.T @ (root * sweep.delta))
        u2 = np.asarray(householder_vector(jnp.asarray(a2)))
        penalty = (v.T / sweep.eigs) @ v
        return cls(sweep, eigs2, factor2, scale, 0.5 * (penalty + penalty.T), v.T @ (sweep.w1 / root), u2,
                   float(np.linalg.norm(a2)))

    @property
    def digest(self) -> str:
        """Identifies Σ2 in chunk-store tags (a resumed run never mixes two covariances)."""
        data = np.ascontiguousarray(self.eigs2)
        return hashlib.sha256(str(data.shape).encode() + data.tobytes()).hexdigest()[:16]

    def batch(self, kind: str, size: int, dtype: str) -> Callable[[dict], Array]:
        """The compiled batch function of a ("sufficient", 0) or ("direct", n) group of cells."""
        s = self.sweep
        if kind == "sufficient":
            arrays = (self.scale, self.penalty, self.dual, self.u2, self.alpha2)
            return partial(_sufficient_batch, s.key, *arrays, dtype=dtype)
        return partial(_direct_batch, s.key, s.eigs, s.w1, s.delta, self.factor2, n=size, dtype=dtype)

    def tag(self, kind: str, size: int) -> bytes:
        """Chunk-store tag: the sweep's (key, problem, dtype) plus Σ2's digest."""
        return self.sweep.tag(f"linear-shift/{self.digest}/{kind}/{size}")
