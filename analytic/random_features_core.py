"""Core of the random-feature deterministic equivalent, in operator form (THEORY_RF.md §5, §8, §10).

One set of formulas serves the Gaussian-equivalence DE (RF), the finite-d refinement DE2 and the
limits m → ∞, n → ∞. A problem is a spectrum ε_j > 0 with target coefficients β_j (β = 0 for
eigendirections that carry no target), a flat (white) mass r >= 0, and the equation

    κ(1 − a/m)(1 − a/n) = t,    a(κ) = Σ_j ε_j/(ε_j + κ) + r/κ,    κ > 0 with a <= min(m, n),   (RF-κ)

    D2   = a − (m − a)(a − df2)/(m − df2),      df2 = Σ_j (ε_j/(ε_j + κ))²,
    B(β) = Σ_j β_j²[κ²/(ε_j+κ)² + κ(a − df2)/(m − df2) · ε_j/(ε_j+κ)²],
    E    = [B(β̄) + σ̃² D2/n]/(1 − D2/n) − 2p Σ_j κ/(ε_j+κ) β̄_j β^Δ_j + p²c²,   c² = Σ (β^Δ)².

Units. (RF) of THEORY_RF §5 is this with ε = e (the eigenvalues of Σ normalised to tr Σ/d = 1),
β = w√e, r = μ*²d/μ1² and t = λd/(mμ1²) (λ the ridge on the output weights a, see
:mod:`analytic.random_features`). The operator form of §8 is the same with ε in kernel units
(ε = μ1²e/d for the linear eigenfunctions), r = F (the flat mass) and t = λ/m; the two are related
by κ' = μ1²κ/d, a scale invariance of these equations. m = ∞ (kernel limit) and n = ∞ (infinite
data) are exact cases, not large numbers. r = 0 (a linear σ) is Model B (THEORY.md §3), with
κ = 0 when rank >= min(m, n).

Shapes are bucketed (DESIGN.md §4, pad-and-mask): XLA compiles one program per shape, several
seconds each, so the spectrum is padded to a fixed ladder of lengths with a mask (padded entries
contribute exactly nothing: their shrinkage and complement are multiplied by 0 and the true d is
passed in) and the flattened (n, m, t, p, σ) grid to a fixed ladder of sizes. Every activation,
limit and grid of one size class then shares a single compiled program.

Pure jax.numpy, no randomness (DESIGN.md §1). Glossary: ``eigs`` ε, ``mask`` 1 for true entries,
``b1``/``bd`` β for w1 and Δ, ``flat`` r, ``target`` t, ``s`` = r/κ, ``a`` = df1 + s.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.common import safe_ratio
from analytic.solvers import RootInfo, implicit_step, solve_increasing_log

__all__ = ["RandomFeatureTheory", "Spectrum", "pad_spectrum", "evaluate"]

SPECTRUM_LADDER = (512, 2048, 8192, 32768, 131072, 524288)  # padded spectrum lengths
GRID_LADDER = (16, 256, 4096)  # padded grid sizes
MAX_ELEMENTS = 2**22  # grid × spectrum per chunk (32 MB per intermediate array)


class RandomFeatureTheory(NamedTuple):
    """The random-feature DE and its decomposition (all fields broadcast to one shape).

    total = bias + projection_variance + nonlinear_variance + variance + cross + floor.
    """

    total: Array
    bias: Array  # κ²⟨w̄,Σ(Σ+κ)^-2 w̄⟩ / (1 − D2/n): clean bias towards w̄
    projection_variance: Array  # κ(df1−df2)/(m−df2)·⟨w̄,Σ²(Σ+κ)^-2 w̄⟩ / (1 − D2/n): random W, as Model B
    nonlinear_variance: Array  # κ s/(m−df2)·⟨w̄,Σ²(Σ+κ)^-2 w̄⟩ / (1 − D2/n): test-time variance μ*²‖ā‖²
    variance: Array  # σ̃² (D2/n) / (1 − D2/n): label noise + synthetic label disagreement
    cross: Array  # −2pκ⟨w̄, Σ(Σ+κ)^-1 Δ⟩ (any sign)
    floor: Array  # p²c²
    kappa: Array  # κ in the units of the Σ given (Σ(Σ+κ)^-1 is the mean shrinkage)
    df1: Array  # df1(κ) of the (normalised) spectrum
    df2: Array
    s: Array  # μ*²d/(μ1²κ): degrees of freedom of the nonlinear part
    a: Array  # df1 + s: degrees of freedom of the features (= min(m, n) ridgeless)
    D2: Array  # the features' df2 (D2 of THEORY_RF §5)
    p_eff: Array  # rint(p·n)/n (or p when exact_count=False or n = ∞)
    converged: Array
    iterations: Array
    residual: Array


class Spectrum(NamedTuple):
    """A padded spectrum: ε, mask, β of w1 and Δ (padded with 1, 0, 0, 0), the true d, min ε."""

    eigs: np.ndarray
    mask: np.ndarray
    b1: np.ndarray
    bd: np.ndarray
    d: float
    emin: float


def pad_spectrum(eigs: np.ndarray, b1: np.ndarray, bd: np.ndarray) -> Spectrum:
    """Pads (ε, β1, βΔ) to the next length of :data:`SPECTRUM_LADDER` (one compile per class)."""
    d = eigs.shape[0]
    size = next((x for x in SPECTRUM_LADDER if x >= d), d)
    pad = size - d

    def ext(x: np.ndarray, value: float) -> np.ndarray:
        return np.concatenate([np.asarray(x, np.float64), np.full(pad, value)])

    return Spectrum(
        ext(eigs, 1.0), ext(np.ones(d), 0.0), ext(b1, 0.0), ext(bd, 0.0), float(d), float(eigs.min())
    )


def _excess(N: Array, d: Array, sk: Array, s: Array) -> Array:
    """(N − a)/N for a = d − Σκ/(ε+κ) + s, as (N − d + Σκ/(ε+κ) − s)/N: exact (no cancellation)
    for N >= d; 1 for N = ∞."""
    finite = jnp.isfinite(N)
    Ns = jnp.where(finite, N, 1.0)
    return jnp.where(finite, (Ns - d + sk - s) / Ns, 1.0)


def _over(x: Array, N: Array) -> Array:
    """x/N with x/∞ = 0 (N = ∞ is the exact limit)."""
    finite = jnp.isfinite(N)
    return jnp.where(finite, x / jnp.where(finite, N, 1.0), 0.0)


def _rs(sp: tuple, k: Array) -> tuple[Array, Array]:
    """Masked shrinkage ε/(ε+κ) and complement κ/(ε+κ), shape k.shape + (len,)."""
    eigs, mask = sp[0], sp[1]
    k = k[..., None]
    return mask * eigs / (eigs + k), mask * k / (eigs + k)


def _kappa(sp: tuple, n: Array, m: Array, target: Array, flat: Array) -> tuple[Array, RootInfo]:
    """κ solving (RF-κ) (THEORY_RF §10; THEORY.md §2-3 for r = 0).

    Ridgeless root κ0 of a(κ) = N = min(m, n). r > 0: a = df1 + r/κ decreases strictly from +∞ to
    0, and a(r/N) > N >= a((tr + r)/N) (df1 <= tr/κ), which brackets κ0. r = 0: THEORY.md's
    κ_floor(N), bracketed by [ε_min·1e-14, tr/N], and 0 when d <= N. Both are one solve of
    N − a(κ) = 0, increasing in κ, slope a − df2 = Σ r s + r/κ in log κ.
    For t > 0, H(κ) = κ(1 − a/m)(1 − a/n) vanishes at κ0 and increases beyond it
    (d/dκ[κ(1 − a/N)] = 1 − df2/N > 0 and both factors grow), with H <= κ; since a <= (tr + r)/κ,
    H(κ) >= κ − (tr + r)(1/m + 1/n), so the root lies in [max(t, κ0), t + (tr + r)(1/m + 1/n)].
    Residual: |H(κ) − t| (|N − a| ridgeless).
    """
    eigs, mask, _, _, d, emin = sp
    nmin = jnp.minimum(n, m)
    nonlinear = flat > 0
    needs = nonlinear | (nmin < d)
    nmin_s = jnp.where(needs, nmin, d - 0.5)  # a harmless equation where κ0 = 0 is used
    total = jnp.sum(mask * eigs) + flat

    def floor_eq(k, sp, nmin, flat):
        r, s = _rs(sp, k)
        return nmin - sp[4] + jnp.sum(s, -1) - flat / k, jnp.sum(r * s, -1) + flat / k

    lo0 = jnp.where(nonlinear, flat / nmin_s, emin * 1e-14)
    k0, finfo = solve_increasing_log(floor_eq, lo0, total / nmin_s, (sp, nmin_s, flat))
    k0 = jnp.where(needs, implicit_step(floor_eq, k0, (sp, nmin_s, flat)), 0.0)
    ridge = target > 0
    tgt = jnp.where(ridge, target, 1.0)  # a harmless equation where the root is unused

    def value_and_slope(k, sp, n, m, tgt, flat):
        r, s = _rs(sp, k)
        sk, g, snl = jnp.sum(s, -1), jnp.sum(r * s, -1), flat / k
        fn, fm = _excess(n, sp[4], sk, snl), _excess(m, sp[4], sk, snl)
        one_m_f2m = 1.0 - _over(sp[4] - jnp.sum(s * (1.0 + r), -1), m)  # 1 − df2/m
        # κH' = κ[(1 − df2/m)(1 − a/n) + (1 − a/m)(a − df2)/n], using κa' = −(a − df2).
        return k * fn * fm - tgt, k * (one_m_f2m * fn + fm * _over(g + snl, n))

    lo = jnp.maximum(tgt, k0)
    hi = jnp.maximum(tgt + total * (_over(1.0, n) + _over(1.0, m)), lo)
    params = (sp, n, m, tgt, flat)
    root, info = solve_increasing_log(value_and_slope, lo, hi, params)
    stepped = implicit_step(value_and_slope, root, params)
    # n = m with tiny t: H has a double zero at κ0 and H' = 0 there; keep the bracketed root.
    root = jnp.where(jnp.isfinite(stepped), stepped, jax.lax.stop_gradient(root))
    f_ok = jnp.where(needs, finfo.converged, True)
    f_res = jnp.where(needs, finfo.residual, 0.0)
    return jnp.where(ridge, root, k0), RootInfo(
        converged=jnp.where(ridge, info.converged & f_ok, f_ok),
        iterations=jnp.where(ridge, info.iterations, 0) + jnp.where(needs, finfo.iterations, 0),
        residual=jnp.where(ridge, info.residual, f_res),
    )


@jax.jit
def _evaluate(sp, n, m, target, flat, pe, sigma1, sigma2):
    """(RF) on a flat grid: the fields of RandomFeatureTheory (κ in core units) and the gap."""
    d = sp[4]
    k, info = _kappa(sp, n, m, target, flat)
    r, s = _rs(sp, k)
    sk, f2, g = jnp.sum(s, -1), jnp.sum(r**2, -1), jnp.sum(r * s, -1)  # g = df1 − df2, no cancellation
    snl = jnp.where(flat > 0, flat / jnp.where(k > 0, k, 1.0), 0.0)  # κ = 0 only when r = 0
    # Ridgeless with κ > 0: κ0 solves a = min(n, m) to ~1e-15; imposing it exactly makes the
    # binding factor an exact 0, so the pole m = n gives 1 − D2/n = 0 (+inf), never ±1e-16.
    binding = (target == 0) & (k > 0)
    nmin = jnp.minimum(n, m)
    a = jnp.where(binding, nmin, d - sk + snl)
    fn = jnp.where(binding, jnp.where(jnp.isfinite(n), _over(n - nmin, n), 1.0), _excess(n, d, sk, snl))
    fm = jnp.where(binding, jnp.where(jnp.isfinite(m), _over(m - nmin, m), 1.0), _excess(m, d, sk, snl))
    fn, fm = jnp.maximum(fn, 0.0), jnp.maximum(fm, 0.0)
    mfin = jnp.isfinite(m)
    ms = jnp.where(mfin, m, 1.0)
    m_f2 = ms - d + jnp.sum(s * (1.0 + r), -1)  # m − df2, exact when m >= d
    # (a − df2)(m − a)/(m − df2) → a − df2 as m → ∞; 0/0 := 0 covers κ = 0 with m = d (D2 = d).
    shift = jnp.where(mfin, safe_ratio((g + snl) * fm * ms, m_f2), g + snl)
    d2 = a - shift
    d2n = _over(d2, n)
    denom = fn + _over(shift, n)  # 1 − D2/n as a sum of non-negative terms
    proj = jnp.where(mfin, safe_ratio(g, m_f2), 0.0)
    nl = jnp.where(mfin, safe_ratio(snl, m_f2), 0.0)
    b1, bd = sp[2], sp[3]
    c2 = jnp.sum(bd**2)

    def quads(wt):  # ⟨β1, f β1⟩, ⟨β1, f βΔ⟩, ⟨βΔ, f βΔ⟩
        return jnp.sum(wt * b1 * b1, -1), jnp.sum(wt * b1 * bd, -1), jnp.sum(wt * bd * bd, -1)

    qb, qp, qc = quads(s**2), quads(r * s), quads(s)

    def numerators(pe):
        def bar(q):  # ⟨w̄, f w̄⟩ expanded in p, so the κ-sums are shared across p
            return q[0] + 2 * pe * q[1] + pe**2 * q[2]

        noise = (1 - pe) * sigma1**2 + pe * sigma2**2 + pe * (1 - pe) * c2
        cross = -2 * pe * (qc[1] + pe * qc[2])
        return bar(qb), proj * bar(qp), nl * bar(qp), noise * d2n, cross, pe**2 * c2

    mixed, clean = numerators(pe), numerators(0.0 * pe)
    over = tuple(safe_ratio(x, denom) for x in mixed[:4])
    total = sum(over) + mixed[4] + mixed[5]
    # The gap subtracts numerators first: at the exact pole it is ±inf, not inf − inf.
    diff = sum(x - y for x, y in zip(mixed[:4], clean[:4]))
    gap = safe_ratio(diff, denom) + (mixed[4] - clean[4]) + (mixed[5] - clean[5])
    fields = (total, *over, mixed[4], mixed[5], k, d - sk, f2, snl, a, d2, pe, *info)
    return fields, gap


def _bucket(size: int, length: int) -> int:
    """Grid chunk size: the smallest ladder entry >= size, capped by memory (MAX_ELEMENTS)."""
    cap = max(GRID_LADDER[0], MAX_ELEMENTS // length)
    fits = [x for x in GRID_LADDER if x <= cap] or [GRID_LADDER[0]]
    return next((x for x in fits if x >= size), fits[-1])


def evaluate(
    sp: Spectrum, n, m, target, flat: float, pe, sigma1, sigma2, unit: float
) -> tuple[RandomFeatureTheory, np.ndarray]:
    """(RF) broadcast over (n, m, t, p_eff, σ1, σ2), by padded chunks of a fixed ladder of sizes.

    Returns:
        (RandomFeatureTheory with κ times ``unit`` (Σ's units), gap E(p) − E(0)), NumPy arrays.
    """
    arrays = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (n, m, target, pe, sigma1, sigma2)))
    shape = arrays[0].shape
    flat_args = [x.ravel() for x in arrays]
    size = flat_args[0].size
    chunk = _bucket(size, sp.eigs.shape[0])
    fill = (1000.0, 1000.0, 0.0, 0.0, 0.0, 0.0)  # a valid problem for padded grid points
    jsp = tuple(jnp.asarray(x) for x in sp)
    outs, gaps = [], []
    for start in range(0, size, chunk):
        part = [x[start : start + chunk] for x in flat_args]
        short = chunk - part[0].size
        part = [np.concatenate([x, np.full(short, f)]) for x, f in zip(part, fill)]
        n_, m_, t_, pe_, s1_, s2_ = (jnp.asarray(x) for x in part)
        fields, gap = _evaluate(jsp, n_, m_, t_, jnp.asarray(flat, jnp.float64), pe_, s1_, s2_)
        keep = chunk - short
        outs.append([np.asarray(x)[:keep] for x in fields])
        gaps.append(np.asarray(gap)[:keep])
    cols = [np.concatenate(c).reshape(shape) for c in zip(*outs)]
    cols[7] = cols[7] * unit
    return RandomFeatureTheory(*cols), np.concatenate(gaps).reshape(shape)
