"""Exact population moments of random features given the first layer (THEORY_RF.md §3, §9).

For frozen rows s_i = w_i/√d of S (m×d) and x ~ N(0, Σ), Σ = diag(eigs) in its eigenbasis, the
feature vector φ(x) = σ(Sx) has pre-activations h = Sx ~ N(0, C), C = SΣSᵀ, with scales
r_i = √C_ii and correlations ρ_ij = C_ij/(r_i r_j). The test error of a = any coefficient vector is
quadratic in a (THEORY_RF §3):

    E(a) = E_x(⟨a, φ(x)⟩ − ⟨x, w1⟩)² = aᵀKa − 2aᵀb + ‖w1‖²_Σ,
    K = E_x φφᵀ (m×m),   b = E_x φ⟨x, w1⟩ (m,),

so no sampled test set is needed. The moments are (THEORY_RF §9):

* ReLU (arc-cosine):  K_ij = [√(r_i²r_j² − C_ij²) + (π − arccos ρ_ij) C_ij]/(2π),  K_ii = r_i²/2.
* erf (arcsine):      K_ij = (2/π) arcsin(2C_ij/√((1+2r_i²)(1+2r_j²))).
* linear:             K = C.
* any other σ (tanh, user activations), Mehler's formula:
      K_ij = Σ_{k≤k_max} ρ_ij^k ĉ_k(r_i) ĉ_k(r_j),   ĉ_k(r) = E[σ(rg)He_k(g)]/√k!,  g ~ N(0, 1),
  with ĉ_k by 400-node Gauss–Hermite quadrature and the diagonal K_ii = E σ(r_i g)² directly
  (the series converges slowly at ρ = 1). Truncation error: by Cauchy–Schwarz on the tail,
  |K_ij − series| <= |ρ_ij|^{k_max+1} √(t_i t_j), t_i = E σ(r_i g)² − Σ_k ĉ_k(r_i)² <= K_ii; for
  Gaussian rows |ρ_ij| ~ d^{-1/2}, so at d >= 50 and k_max = 40 this is far below rounding.
  Odd (even) σ have ĉ_k = 0 for even (odd) k; those orders are dropped, which halves the work.
* b by Stein's lemma: b_i = (SΣw1)_i · E σ'(r_i g), with Eσ' = 1/2 (ReLU), (2/√π)/√(1+2r²) (erf),
  1 (linear), ĉ_1(r)/r (Mehler).

Glossary: ``s`` rows of S = W/√d (W iid N(0, 1) entries), ``eigs`` eigenvalues of Σ, ``c`` = C,
``r2`` = r², ``gamma`` = ĉ_k(r_i) for the kept orders, ``k_max`` the highest Mehler order.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from jax import Array

from strongcollapse.vocabulary.activations import QUADRATURE_NODES, Activation, get_activation
from strongcollapse.vocabulary.validation import ParameterError

__all__ = [
    "K_MAX",
    "mehler_orders",
    "activation_fingerprint",
    "fast_arcsin",
    "feature_moments",
    "feature_kernel",
    "feature_target",
    "block_size",
    "population_risk",
    "population_risks",
]

K_MAX = 40  # highest Mehler order (THEORY_RF §9)
PARITY_TOL = 1e-13  # relative: σ(−t) = ∓σ(t) to rounding on the quadrature nodes


@functools.lru_cache(maxsize=None)
def _quadrature() -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights normalised to sum to 1 (E over N(0, 1)).

    SciPy's (a JAX dependency): NumPy 2.4's ``hermegauss(400)`` returns NaN outer weights.
    """
    g, w = scipy.special.roots_hermitenorm(QUADRATURE_NODES)
    return g, w / w.sum()


@functools.lru_cache(maxsize=None)
def _hermite_basis(orders: tuple[int, ...]) -> np.ndarray:
    """(nodes, len(orders)) matrix w_q He_k(g_q)/√k!: ĉ_k(r) = Σ_q σ(r g_q) · basis[q, k].

    He_k/√k! by the stable three-term recurrence (no factorials, no overflow at |g| ≈ 40).
    """
    g, w = _quadrature()
    top = max(orders)
    h = np.empty((top + 1, g.size))
    h[0] = 1.0
    if top >= 1:
        h[1] = g
    for k in range(1, top):
        h[k + 1] = (g * h[k] - math.sqrt(k) * h[k - 1]) / math.sqrt(k + 1)
    return np.ascontiguousarray((h[list(orders)] * w).T)


def _evaluate(act: Activation, t: np.ndarray) -> np.ndarray:
    """σ(t) as float64 NumPy (x64 on for this call only, never as an import side effect)."""
    try:
        # Eager even when called while tracing (jnp ops on constants are staged under jit).
        with jax.enable_x64(True), jax.ensure_compile_time_eval():
            out = np.asarray(act.fn(t), dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - a user fn that cannot take arrays: say which one
        raise ParameterError(f"activation {act.name!r}: fn must be elementwise on arrays ({err})") from None
    if out.shape != t.shape or not np.all(np.isfinite(out)):
        raise ParameterError(
            f"activation {act.name!r}: fn must be elementwise and finite on |t| <= 200 (got shape "
            f"{out.shape} for {t.shape}, finite: {bool(np.all(np.isfinite(out)))})"
        )
    return out


def _probe(act: Activation) -> np.ndarray:
    """Arguments at which σ is checked and fingerprinted: r·g over the nodes for r up to 5
    (row scales r_i = √C_ii are within a few times √(max eig) in practice)."""
    g, _ = _quadrature()
    return np.concatenate([g * r for r in (0.5, 1.0, 2.0, 5.0)])


@functools.lru_cache(maxsize=None)
def mehler_orders(act: Activation, k_max: int = K_MAX) -> tuple[int, ...]:
    """Orders k <= k_max whose ĉ_k(r) can be non-zero: odd k for odd σ, even k for even σ, else all.

    Raises:
        ParameterError: σ is not elementwise or not finite at the probe points.
    """
    t = _probe(act)
    s, s_neg = _evaluate(act, t), _evaluate(act, -t)
    scale = max(float(np.max(np.abs(s))), 1e-300)
    if np.max(np.abs(s + s_neg)) <= PARITY_TOL * scale:
        return tuple(range(1, k_max + 1, 2))
    if np.max(np.abs(s - s_neg)) <= PARITY_TOL * scale:
        return tuple(range(0, k_max + 1, 2))
    return tuple(range(k_max + 1))


def activation_fingerprint(activation: str | Activation) -> str:
    """A hash of σ's values at fixed points and of its kernel tag: part of the chunk-store key, so
    a redefined user activation never reuses another's stored chunks."""
    act = get_activation(activation)
    values = _evaluate(act, _probe(act))
    digest = hashlib.sha256(f"{act.name}/{act.kernel}/{K_MAX}/".encode() + values.tobytes())
    return digest.hexdigest()[:16]


# Cephes asin (S. Moshier): relative error <= 1 ulp on [-1, 1] against libm (tested). XLA's own
# arcsin goes through atan2 and is not vectorised on CPU: 4-5× slower, and the ReLU and erf
# kernels evaluate it on every entry of an m×m matrix.
_ASIN_P = (4.253011369004428248960e-3, -6.019598008014123785661e-1, 5.444622390564711410273e0,
           -1.626247967210700244449e1, 1.956261983317594739197e1, -8.198089802484824371615e0)  # fmt: skip
_ASIN_Q = (1.0, -1.474091372988853791896e1, 7.049610280856842141659e1, -1.471791292232726029859e2,
           1.395105614657485689735e2, -4.918853881490881290097e1)  # fmt: skip
_ASIN_R = (2.967721961301243206100e-3, -5.634242780008963776856e-1, 6.968710824104713396794e0,
           -2.556901049652824852289e1, 2.853665548261061424989e1)  # fmt: skip
_ASIN_S = (1.0, -2.194779531642920639778e1, 1.470656354026814941758e2, -3.838770957603691357202e2,
           3.424398657913078477438e2)  # fmt: skip
_MOREBITS = 6.123233995736765886130e-17


def _polynomial(x: Array, coefficients: tuple[float, ...]) -> Array:
    y = jnp.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        y = y * x + c
    return y


def fast_arcsin(x: Array) -> Array:
    """arcsin(x) for x in [−1, 1], vectorised (Cephes' two rational approximations).

    |x| <= 0.625: x + x³P(x²)/Q(x²); above: π/2 − √(2z)(1 + R(z)/S(z)), z = 1 − |x| (exact there).
    """
    a = jnp.abs(x)
    z = 1.0 - a
    q = jnp.sqrt(z + z)
    big = (np.pi / 4 - q) - (q * (z * _polynomial(z, _ASIN_R) / _polynomial(z, _ASIN_S)) - _MOREBITS) + np.pi / 4
    a2 = a * a
    small = a * (a2 * _polynomial(a2, _ASIN_P) / _polynomial(a2, _ASIN_Q)) + a
    return jnp.sign(x) * jnp.where(a > 0.625, big, small)


def _gaussian_moments(act: Activation, r: Array, orders: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """(ĉ_k(r_i) for the given orders, ĉ_1(r_i), E σ(r_i g)²) by Gauss–Hermite quadrature."""
    g, w = _quadrature()
    values = act.fn(r[:, None] * jnp.asarray(g, dtype=r.dtype)[None, :])  # (m, nodes)
    basis = jnp.asarray(_hermite_basis(tuple(orders) + (1,)), dtype=r.dtype)
    both = values @ basis
    return both[:, :-1], both[:, -1], (values * values) @ jnp.asarray(w, dtype=r.dtype)


def _mehler_offdiagonal(rho: Array, g_rows: Array, g_cols: Array, orders: tuple[int, ...]) -> Array:
    """Σ_l ρ^{k_l} γ_l(i) γ_l(j) by Horner's rule in ρ (or ρ² when the orders share a parity).

    Written as one chain of elementwise ops on broadcast outer products, so XLA fuses it into a
    single pass over the block instead of one pass per order.
    """
    steps = np.diff(orders)
    step = int(steps[0]) if steps.size and np.all(steps == steps[0]) else None
    power = rho * rho if step == 2 else rho
    acc = g_rows[:, -1, None] * g_cols[None, :, -1]
    for l in range(len(orders) - 2, -1, -1):
        factor = power if step is not None else rho ** (orders[l + 1] - orders[l])
        acc = g_rows[:, l, None] * g_cols[None, :, l] + factor * acc
    return acc * rho ** orders[0] if orders[0] else acc


class _Rows(NamedTuple):
    """Per-row quantities: r², the scale of C in the kernel's argument (r for ReLU and Mehler,
    ρ = C_ij/(r_i r_j); 1/√(1 + 2r²) for erf), the exact diagonal K_ii, ĉ_k(r) (Mehler only)."""

    r2: Array
    scale: Array
    diag: Array
    gamma: Array | None

    def take(self, index: slice) -> "_Rows":
        """The quantities of a slice of rows."""
        gamma = None if self.gamma is None else self.gamma[index]
        return _Rows(self.r2[index], self.scale[index], self.diag[index], gamma)


def _rows(act: Activation, r2: Array) -> tuple[_Rows, Array]:
    """(_Rows, E σ'(r_i g)) for the rows of S (THEORY_RF §9: diagonals exact, Stein factor of b)."""
    r = jnp.sqrt(r2)
    if act.kernel == "linear":
        return _Rows(r2, r, r2, None), jnp.ones_like(r)
    if act.kernel == "relu":
        return _Rows(r2, r, 0.5 * r2, None), jnp.full_like(r, 0.5)
    if act.kernel == "erf":
        scale = 1.0 / jnp.sqrt(1.0 + 2.0 * r2)
        diag = (2.0 / jnp.pi) * fast_arcsin(2.0 * r2 * scale**2)
        return _Rows(r2, scale, diag, None), (2.0 / jnp.sqrt(jnp.pi)) * scale
    if act.kernel is not None:
        raise ParameterError(f"unknown closed-form kernel {act.kernel!r} of activation {act.name!r}")
    gamma, c1, second = _gaussian_moments(act, r, mehler_orders(act))
    return _Rows(r2, r, second, gamma), c1 / r


def _kernel_block(act: Activation, c: Array, rows: _Rows, cols: _Rows, offset: int) -> Array:
    """K on a block from C on it; entry (i, j) is on K's diagonal where j = offset + i.

    The diagonal is set exactly: for ReLU at ρ = 1 − ε the square root would turn ε ~ 1e-16 into
    an error of 1e-8, and the Mehler series converges slowly at ρ = 1.
    """
    on_diag = jnp.arange(c.shape[1])[None, :] == offset + jnp.arange(c.shape[0])[:, None]
    if act.kernel == "linear":
        off = c
    elif act.kernel == "erf":
        off = (2.0 / jnp.pi) * fast_arcsin(jnp.clip(2.0 * c * rows.scale[:, None] * cols.scale[None, :], -1.0, 1.0))
    else:
        rho = jnp.clip(c / (rows.scale[:, None] * cols.scale[None, :]), -1.0, 1.0)
        if act.kernel == "relu":  # (π − arccos ρ) = π/2 + arcsin ρ
            root = jnp.sqrt(jnp.maximum(rows.r2[:, None] * cols.r2[None, :] - c * c, 0.0))
            off = (root + (np.pi / 2 + fast_arcsin(rho)) * c) / (2.0 * np.pi)
        else:
            off = _mehler_offdiagonal(rho, rows.gamma, cols.gamma, mehler_orders(act))
    return jnp.where(on_diag, rows.diag[:, None], off)


def feature_moments(s: Array, eigs: Array, w1: Array, activation: str | Activation) -> tuple[Array, Array]:
    """K = E_x σ(Sx)σ(Sx)ᵀ and b = E_x σ(Sx)⟨x, w1⟩ exactly, x ~ N(0, diag(eigs)) (THEORY_RF §9).

    Args:
        s: (m, d) rows of S = W/√d (pre-activation h = Sx).
        eigs: (d,) eigenvalues of Σ (Σ diagonal in its eigenbasis).
        w1: (d,) teacher.
        activation: a registry name or an :class:`Activation`; its ``kernel`` tag selects the
            closed form (``relu``, ``erf``, ``linear``) or the Mehler series (None).

    Returns:
        (K, b) of shapes (m, m) and (m,).
    """
    act = get_activation(activation)
    u = s * jnp.sqrt(eigs)  # C = u uᵀ = SΣSᵀ
    rows, stein = _rows(act, jnp.sum(u * u, axis=1))
    return _kernel_block(act, u @ u.T, rows, rows, 0), (s @ (eigs * w1)) * stein


def block_size(m: int) -> int:
    """Rows per block of :func:`population_risks`: at most 8 block rows (each is a copy of the
    kernel's code, so more would lengthen compilation), and at least 128 (a block's GEMM stays
    efficient)."""
    return max(128, -(-m // 8))


def population_risks(s: Array, eigs: Array, w1: Array, activation: str | Activation, coefficients: Array) -> Array:
    """E = aᵀKa − 2aᵀb + ‖w1‖²_Σ for each column a of ``coefficients`` (THEORY_RF §3, §9).

    K is never formed whole: block row I of C = SΣSᵀ is computed only up to its diagonal block,
    turned into K entrywise, and contracted with the coefficients at once (off-diagonal blocks
    counted twice by symmetry). That halves the O(m²d) product and the entrywise work of the
    full matrix and keeps the working set at (block × m). Zero-padded columns give the risks of
    narrower nested widths (entries beyond a width's rows meet only zeros).

    Args:
        s: (m, d) rows of S = W/√d.
        eigs, w1: (d,) eigenvalues of Σ and the teacher.
        activation: as in :func:`feature_moments`.
        coefficients: (m, k) second-layer weights, one fit per column.

    Returns:
        (k,) exact population risks.
    """
    act = get_activation(activation)
    u = s * jnp.sqrt(eigs)
    rows, stein = _rows(act, jnp.sum(u * u, axis=1))
    a = coefficients
    m, t = s.shape[0], block_size(s.shape[0])
    quadratic = jnp.zeros(a.shape[1], dtype=a.dtype)
    for lo in range(0, m, t):
        hi = min(lo + t, m)
        block = _kernel_block(act, u[lo:hi] @ u[:hi].T, rows.take(slice(lo, hi)), rows.take(slice(0, hi)), lo)
        weights = jnp.concatenate([2.0 * a[:lo], a[lo:hi]]) if lo else a[:hi]
        quadratic = quadratic + jnp.sum(a[lo:hi] * (block @ weights), axis=0)
    target = (s @ (eigs * w1)) * stein
    return quadratic - 2.0 * (target @ a) + jnp.sum(eigs * w1**2)


def feature_kernel(s: Array, eigs: Array, activation: str | Activation) -> Array:
    """K = E_x σ(Sx)σ(Sx)ᵀ (m×m) alone; see :func:`feature_moments`."""
    return feature_moments(s, eigs, jnp.zeros_like(eigs), activation)[0]


def feature_target(s: Array, eigs: Array, w1: Array, activation: str | Activation) -> Array:
    """b = E_x σ(Sx)⟨x, w1⟩ (m,) alone; see :func:`feature_moments`."""
    return feature_moments(s, eigs, w1, activation)[1]


def population_risk(kernel: Array, target: Array, coefficients: Array, signal: Any) -> Array:
    """E = aᵀKa − 2aᵀb + ‖w1‖²_Σ for a vector a (m,) or for each column of a (m, k) (THEORY_RF §3).

    Zero-padded columns give the risk of narrower nested widths: K's entries beyond a width's rows
    meet only zeros.
    """
    a = coefficients[:, None] if coefficients.ndim == 1 else coefficients
    out = jnp.sum(a * (kernel @ a), axis=0) - 2.0 * (target @ a) + signal
    return out[0] if coefficients.ndim == 1 else out
