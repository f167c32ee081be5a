"""Model B: random projections f(x) = ⟨v, Sx⟩ on a real + synthetic mix, deterministic equivalent.

Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025), Sec. 4 / Thm 2 (random
projections); THEORY.md §3 (formulas), §5 (accuracy). S ∈ R^{m×d} has iid N(0, 1/d) entries, so
SᵀS ≈ (m/d)I and the ridge λ on v acts on w = Sᵀv as λd/m. Notation (as in analytic.linear):

    eigs  e_j, eigenvalues of Σ                w1, delta  real teacher, Δ = w2 − w1
    n, m  sample size, width; φ = d/n, ψ = m/n p          synthetic fraction (rint(p·n) samples)
    lam   ridge λ of  min (1/n)‖y − XSᵀv‖² + λ‖v‖²           sigma1, sigma2  label-noise std devs
    kappa κ:  λd/m = κ(1 − df1(κ)/n)(1 − df1(κ)/m),  κ ≥ κ_floor(min(n, m))
    D2    the features' df2:  D2 = df1 − (df1 − df2)(1 − df1/m)/(1 − df2/m)
    w̄ = w1 + pΔ,  σ̃² = (1−p)σ1² + pσ2² + p(1−p)c²,  c² = ⟨Δ, ΣΔ⟩

Test error on real data (THEORY.md eq. (B)), split into the returned fields:

    E_B = [κ²⟨w̄,Σ(Σ+κ)^-2 w̄⟩ + κ(df1−df2)/(m−df2)·⟨w̄,Σ²(Σ+κ)^-2 w̄⟩ + σ̃² D2/n] / (1 − D2/n)
          −  2pκ⟨w̄, Σ(Σ+κ)^-1 Δ⟩  +  p²c²
        = bias + projection_variance + variance + cross + floor.

Ridgeless (λ = 0) is exact: κ = κ_floor(min(n, m)), with df1 = min(n, m) imposed exactly so that
1 − D2/n is an exact 0 at the pole n = min(m, d) (+inf error, never NaN). κ = 0 (d ≤ min(n, m))
gives D2 = d and zero bias / projection terms through 0/0 := 0 guards.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from analytic.common import effective_fraction, kappa_floor, on_cells, safe_ratio, validate_problem
from analytic.solvers import RootInfo, golden_minimize, implicit_step, solve_increasing_log
from analytic.spectral import complement, shrinkage, weighted_sum
from strongcollapse.vocabulary.validation import (
    ParameterError,
    broadcast_named,
    check_in_range,
    check_nonnegative,
    require_x64,
)

__all__ = [
    "RandomProjectionTheory",
    "InfiniteDataLimit",
    "WidthPeak",
    "kappa",
    "test_error",
    "collapse_gap",
    "pole_residue",
    "infinite_data_limit",
    "peak_width",
    "isotropic_kappa",
    "isotropic_test_error",
    "isotropic_ridgeless",
]


class RandomProjectionTheory(NamedTuple):
    """Deterministic equivalent of Model B and its decomposition (all broadcast to one shape).

    total = bias + projection_variance + variance + cross + floor.
    """

    total: Array
    bias: Array  # κ²⟨w̄,Σ(Σ+κ)^-2 w̄⟩ / (1 − D2/n): clean bias towards w̄
    projection_variance: Array  # κ(df1−df2)/(m−df2)·⟨w̄,Σ²(Σ+κ)^-2 w̄⟩ / (1 − D2/n): due to S
    variance: Array  # σ̃² (D2/n) / (1 − D2/n): label noise + synthetic label disagreement
    cross: Array  # −2pκ⟨w̄, Σ(Σ+κ)^-1 Δ⟩ (any sign)
    floor: Array  # p²c²
    kappa: Array
    df1: Array
    df2: Array
    D2: Array
    p_eff: Array  # rint(p·n)/n (or p when exact_count=False)
    converged: Array
    iterations: Array
    residual: Array


def kappa(eigs: Array, n: Array, m: Array, lam: Array) -> tuple[Array, RootInfo]:
    """Model B fixed point: λd/m = H(κ) = κ(1 − df1/n)(1 − df1/m), κ >= κ_floor(min(n, m)).

    THEORY.md §3. H vanishes at κ_floor(min(n, m)) and increases beyond it, and H(κ) <= κ, so the
    root lies above max(λd/m, κ_floor). Since df1 <= tr Σ/κ, H(κ) >= (κ − a)(κ − b)/κ >= κ − a − b
    with a = tr Σ/n, b = tr Σ/m, so hi = λd/m + a + b already brackets it (no doubling needed).
    λ = 0 returns κ_floor(min(n, m)) exactly. Residual: |H(κ) − λd/m|.
    """
    d = eigs.shape[-1]
    n, m, lam = (jnp.asarray(a, eigs.dtype) for a in (n, m, lam))
    floor, floor_info = kappa_floor(eigs, jnp.minimum(n, m))
    n, m, lam, floor = jnp.broadcast_arrays(n, m, lam, floor)
    floor_info = RootInfo(*(jnp.broadcast_to(a, n.shape) for a in floor_info))
    ridge = lam > 0
    target = jnp.where(ridge, lam * d / m, 1.0)  # a harmless equation where the root is unused

    def value_and_slope(k: Array, eigs: Array, n: Array, m: Array, target: Array) -> tuple[Array, Array]:
        r, s = shrinkage(eigs, k), complement(eigs, k)
        sk, g = jnp.sum(s, -1), jnp.sum(r * s, -1)
        # n − df1 = (n − d) + Σ κ/(e+κ): exact (no cancellation) when n >= d, e.g. at n = d.
        a, b = (n - d + sk) / n, (m - d + sk) / m
        # κ dH/dκ = κ[ab + (df1 − df2)(b/n + a/m)], using κ d(df1)/dκ = −(df1 − df2).
        return k * a * b - target, k * (a * b + g * (b / n + a / m))

    lo = jnp.maximum(target, floor)
    hi = target + jnp.sum(eigs) * (1.0 / n + 1.0 / m)
    # Newton in log κ from hi gains only ~1 in log κ per step while κ >> root, so when κ_floor = 0
    # (d <= min(n, m)) tighten hi by lower bounds of H: n − df1 = (n − d) + Σ κ/(e+κ) >= dn + cκ for
    # κ <= e_1, c = d/(2e_1), so H >= κ(dn + cκ)(dm + cκ)/(nm); each monomial inverts to a valid hi
    # (the κ¹ one for any κ, the others if <= e_1). Then even λ = 1e-300 converges.
    c, nm, dn, dm = d / (2 * eigs[0]), n * m, n - d, m - d
    k1 = jnp.where((dn > 0) & (dm > 0), target * nm / (dn * dm), jnp.inf)
    k23 = jnp.minimum(jnp.sqrt(target * nm / (c * jnp.maximum(dn, dm))), jnp.cbrt(target * nm / c**2))
    tight = jnp.minimum(k1, jnp.where(k23 <= eigs[0], k23, jnp.inf))
    hi = jnp.where(floor == 0, jnp.minimum(hi, tight), hi)
    hi = jnp.maximum(hi, lo)
    params = (eigs, n, m, target)
    root, info = solve_increasing_log(value_and_slope, lo, hi, params)
    stepped = implicit_step(value_and_slope, root, params)
    # n = m with λ below ~1e-30: H has a double zero at κ_floor, κ rounds onto it and H' = 0 there.
    root = jnp.where(jnp.isfinite(stepped), stepped, jax.lax.stop_gradient(root))
    return jnp.where(ridge, root, floor), RootInfo(
        converged=jnp.where(ridge, info.converged & floor_info.converged, floor_info.converged),
        iterations=jnp.where(ridge, info.iterations, 0) + floor_info.iterations,
        residual=jnp.where(ridge, info.residual, floor_info.residual),
    )


class _Pieces(NamedTuple):
    """Everything that depends on (n, m, λ) only; the p- and σ-dependence is assembled later."""

    k: Array
    info: RootInfo
    f1: Array
    f2: Array
    d2: Array
    denom: Array  # 1 − D2/n >= 0, a sum of non-negative terms (no cancellation at the pole)
    proj: Array  # (df1 − df2)/(m − df2)
    sums: dict  # ⟨a, f(Σ) b⟩ for the three weights and the pairs (w1,w1), (w1,Δ), (Δ,Δ)
    c2: Array


def _pieces(eigs, w1, delta, n, m, lam) -> _Pieces:
    k, info = kappa(eigs, n, m, lam)
    n, m, lam = (jnp.broadcast_to(a, k.shape) for a in (n, m, lam))
    r, s = shrinkage(eigs, k), complement(eigs, k)  # s = 0 at κ = 0: no bias/projection/cross, no 0/0
    d = eigs.shape[-1]
    sk, f2, g = jnp.sum(s, -1), jnp.sum(r**2, -1), jnp.sum(r * s, -1)  # g = df1 − df2, no cancellation
    # n − df1 and m − df1 as (n − d) + Σ s: exact when n >= d. Ridgeless with κ > 0: κ_floor solves
    # df1 = min(n, m) to ~1e-14; imposing it exactly makes the binding factor an exact 0, so the pole
    # n = m gives 1 − D2/n = 0 (+inf), not ±1e-16. (Not 1 − df1/n: XLA may form df1·(1/n).)
    binding = (lam == 0) & (k > 0)
    nmin = jnp.minimum(n, m)
    a = jnp.maximum(jnp.where(binding, n - nmin, n - d + sk), 0.0) / n
    b = jnp.maximum(jnp.where(binding, m - nmin, m - d + sk), 0.0) / m
    f1 = jnp.where(binding, nmin, d - sk)
    m_f2 = m - d + jnp.sum(s * (1.0 + r), -1)  # m − df2, exact when m >= d (m = d, small κ)
    # (df1 − df2)(1 − df1/m)/(1 − df2/m); 0/0 := 0 covers κ = 0 with m = d (then D2 = d exactly).
    shift = safe_ratio(g * b * m, m_f2)
    weights = {"bias": eigs * s**2, "proj": eigs * r * s, "cross": eigs * s}
    pairs = {"11": (w1, w1), "1d": (w1, delta), "dd": (delta, delta)}
    sums = {(w, pq): weighted_sum(weights[w], *pairs[pq]) for w in weights for pq in pairs}
    return _Pieces(
        k, info, f1, f2, f1 - shift, a + shift / n, safe_ratio(g, m_f2), sums, jnp.sum(eigs * delta**2)
    )


def _numerators(pc: _Pieces, n, pe, sigma1, sigma2) -> tuple[Array, Array, Array, Array, Array]:
    """(bias, projection, variance) numerators over 1 − D2/n, then cross and floor, at fraction pe."""

    def quad(w: str) -> Array:  # ⟨w̄, f(Σ) w̄⟩ expanded in p, so κ-sums are shared across p
        return pc.sums[(w, "11")] + 2 * pe * pc.sums[(w, "1d")] + pe**2 * pc.sums[(w, "dd")]

    noise = (1 - pe) * sigma1**2 + pe * sigma2**2 + pe * (1 - pe) * pc.c2
    cross = -2 * pe * (pc.sums[("cross", "1d")] + pe * pc.sums[("cross", "dd")])
    return quad("bias"), pc.proj * quad("proj"), noise * pc.d2 / n, cross, pe**2 * pc.c2


@partial(jax.jit, static_argnames=("exact_count",))
def _test_error(eigs, w1, delta, n, m, p, lam, sigma1, sigma2, exact_count=True):
    pc = _pieces(eigs, w1, delta, n, m, lam)
    pe = effective_fraction(n, p, exact_count)
    nb, npj, nv, cross, floor = _numerators(pc, n, pe, sigma1, sigma2)
    bias, proj, variance = (safe_ratio(x, pc.denom) for x in (nb, npj, nv))
    total = bias + proj + variance + cross + floor
    bc = partial(jnp.broadcast_to, shape=total.shape)
    return RandomProjectionTheory(
        total,
        *(
            bc(x)
            for x in (
                bias,
                proj,
                variance,
                cross,
                floor,
                pc.k,
                pc.f1,
                pc.f2,
                pc.d2,
                pe,
                pc.info.converged,
                pc.info.iterations,
                pc.info.residual,
            )
        ),
    )


def _validate(eigs, w1, delta, **scalars) -> tuple:
    """Shared validation: ranges named after the parameter, then a named broadcast check."""
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    ranges = {"n": (1.0, np.inf), "m": (1.0, np.inf), "p": (0.0, 1.0)}
    out = {
        k: (check_in_range(k, v, *ranges[k]) if k in ranges else check_nonnegative(k, v))
        for k, v in scalars.items()
    }
    broadcast_named(**out)
    return eigs, w1, delta, out


def test_error(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    m: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> RandomProjectionTheory:
    """Deterministic equivalent of the Model B test error on real data (THEORY.md eq. (B)).

    Strong Model Collapse, Thm 2 (random projections), normalised as in THEORY.md §3.

    Args:
        eigs: (d,) eigenvalues of Σ, descending, positive.
        w1, delta: (d,) real teacher and synthetic shift Δ = w2 − w1, in Σ's eigenbasis.
        n: sample size(s) >= 1; m: width(s) >= 1 (both may be real-valued for smooth curves).
        p: synthetic fraction(s) in [0, 1]; exactly rint(p·n) samples are synthetic.
        lam: ridge λ >= 0 on v (acting as λd/m on w); λ = 0 is the exact ridgeless limit.
        sigma1, sigma2: label-noise standard deviations (>= 0) of real and synthetic labels.
        exact_count: use rint(p·n)/n as the simulation does; False uses p itself.

    Returns:
        :class:`RandomProjectionTheory`, every field broadcast over (n, m, p, lam, sigma1, sigma2).

    Raises:
        ValueError: out-of-range or malformed input, naming the parameter.

    Example:
        >>> import numpy as np
        >>> res = test_error(np.ones(100), np.full(100, 0.1), np.zeros(100), n=400, m=200, p=0,
        ...                  lam=0, sigma1=1.0)
        >>> float(res.total)  # d < min(n, m): OLS, σ² φ/(1 − φ) with φ = 1/4, whatever m
        0.3333333333333333
    """
    require_x64()
    eigs, w1, delta, a = _validate(eigs, w1, delta, n=n, m=m, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    return on_cells(
        _test_error,
        (eigs, w1, delta),
        a["n"],
        a["m"],
        a["p"],
        a["lam"],
        a["sigma1"],
        a["sigma2"],
        exact_count=bool(exact_count),
    )


@partial(jax.jit, static_argnames=("exact_count",))
def _collapse_gap(eigs, w1, delta, n, m, p, lam, sigma1, sigma2, exact_count=True):
    pc = _pieces(eigs, w1, delta, n, m, lam)
    mixed = _numerators(pc, n, effective_fraction(n, p, exact_count), sigma1, sigma2)
    clean = _numerators(pc, n, 0.0, sigma1, sigma2)
    # 1 − D2/n does not depend on p: subtract numerators, so the ridgeless pole gives ±inf, not inf − inf.
    over = sum(x - y for x, y in zip(mixed[:3], clean[:3]))
    return safe_ratio(over, pc.denom) + (mixed[3] - clean[3]) + (mixed[4] - clean[4])


def collapse_gap(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    m: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> Array:
    """Mixed minus real-only error at the same (n, m, λ, σ1, σ2): E_B(p) − E_B(0) (THEORY.md §3).

    Ridgeless isotropic, φ >= 1, Δ‖w̄‖² = 2p⟨w1,Δ⟩ + p²c² >= 0 and Δσ² = p(σ2²−σ1²) + p(1−p)c² >= 0
    (THEORY.md omits the last condition): increasing in ψ below ψ = 1, decreasing above towards
    p²c²/φ + Δσ²/(φ−1). At an exact pole the sign of the numerators' difference gives ±inf (not
    inf − inf). Arguments and broadcasting as in :func:`test_error`; returns the broadcast shape.
    """
    require_x64()
    eigs, w1, delta, a = _validate(eigs, w1, delta, n=n, m=m, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    return on_cells(
        _collapse_gap,
        (eigs, w1, delta),
        a["n"],
        a["m"],
        a["p"],
        a["lam"],
        a["sigma1"],
        a["sigma2"],
        exact_count=bool(exact_count),
    )


@partial(jax.jit, static_argnames=("exact_count",))
def _pole_residue(eigs, w1, delta, n, p, sigma1, sigma2, exact_count=True):
    k, _ = kappa_floor(eigs, n)
    w = eigs * complement(eigs, k)  # κ Σ(Σ+κ)^-1
    pe = effective_fraction(n, p, exact_count)
    c2 = jnp.sum(eigs * delta**2)
    wbar = w1 + pe[..., None] * delta
    approx = jnp.sum(w * wbar**2, -1)
    residue = approx + (1 - pe) * sigma1**2 + pe * sigma2**2 + pe * (1 - pe) * c2
    return jnp.where(n < eigs.shape[-1], residue, 0.0)


def pole_residue(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> Array:
    """Residue of the ridgeless pole at ψ = m/n = 1 (THEORY.md §3, "Interpolation threshold").

    For n < d, E_B·|1 − ψ| → κ_n⟨w̄, Σ(Σ+κ_n)^-1 w̄⟩ + σ̃² as ψ → 1 from either side, with
    df1(κ_n) = n: the approximation error of w̄ by a width-n model plus the effective noise. For
    n >= d there is no pole at ψ = 1 and the residue is 0. Broadcast over (n, p, sigma1, sigma2).
    """
    require_x64()
    eigs, w1, delta, a = _validate(eigs, w1, delta, n=n, p=p, sigma1=sigma1, sigma2=sigma2)
    return on_cells(
        _pole_residue, (eigs, w1, delta), a["n"], a["p"], a["sigma1"], a["sigma2"], exact_count=bool(exact_count)
    )


class InfiniteDataLimit(NamedTuple):
    """n → ∞ limit of Model B at fixed width, λ → 0 (THEORY.md §3, "Large-n plateau")."""

    total: Array
    approximation: Array  # κ_m⟨w1, Σ(Σ+κ_m)^-1 w1⟩: what a width-m model cannot represent of w1
    synthetic: Array  # p²⟨Δ, Σ²(Σ+κ_m)^-1 Δ⟩: the representable part of p²c² (= p²c² for m >= d)


@jax.jit
def _infinite_data_limit(eigs, w1, delta, m, p):
    k, _ = kappa_floor(eigs, m)
    approx = weighted_sum(eigs * complement(eigs, k), w1, w1)
    synth = jnp.asarray(p) ** 2 * weighted_sum(eigs * shrinkage(eigs, k), delta, delta)
    approx, synth = jnp.broadcast_arrays(approx, synth)
    return InfiniteDataLimit(approx + synth, approx, synth)


def infinite_data_limit(eigs: Any, w1: Any, delta: Any, *, m: Any, p: Any) -> InfiniteDataLimit:
    """E_B(n = ∞) = κ_m⟨w1, Σ(Σ+κ_m)^-1 w1⟩ + p²⟨Δ, Σ²(Σ+κ_m)^-1 Δ⟩, df1(κ_m) = m (κ_m = 0 if m >= d).

    THEORY.md §3: the predictor tends to the Σ-orthogonal projection of w̄ onto range(Sᵀ), so the
    cross term vanishes. Isotropic: (1 − m/d)‖w1‖² + (m/d)p²c². Broadcast over (m, p).
    """
    require_x64()
    eigs, w1, delta, a = _validate(eigs, w1, delta, m=m, p=p)
    return on_cells(_infinite_data_limit, (eigs, w1, delta), a["m"], a["p"])


class WidthPeak(NamedTuple):
    """Location and height of the double-descent peak of E_B in the width m at fixed n."""

    m: Array
    error: Array


PEAK_WINDOW = 4.0  # search m in [n/4, 4n]: the interpolation peak sits at m ≈ n for n < d
PEAK_POINTS = 97  # log-grid cells of 0.029 in log m; golden section refines the best cell


@partial(jax.jit, static_argnames=("exact_count",))
def _peak_width(eigs, w1, delta, n, p, lam, sigma1, sigma2, exact_count=True):
    n, p, lam, sigma1, sigma2 = jnp.broadcast_arrays(n, p, lam, sigma1, sigma2)
    ridge = lam > 0
    lam_safe = jnp.where(ridge, lam, 1.0)  # ridgeless elements are answered exactly below
    grid = jnp.linspace(-np.log(PEAK_WINDOW), np.log(PEAK_WINDOW), PEAK_POINTS)
    ex = lambda a: a[..., None]  # noqa: E731  (the grid axis)

    def neg_error(t: Array) -> Array:
        m = jnp.maximum(ex(n) * jnp.exp(t), 1.0)
        return -_test_error(
            eigs, w1, delta, ex(n), m, ex(p), ex(lam_safe), ex(sigma1), ex(sigma2), exact_count=exact_count
        ).total

    # The peak is the highest interior local maximum of E on the grid (E may be larger still at
    # the window's small-m end, from the approximation error); a unimodal peak lies between that
    # grid point's neighbours, which golden section on −E then refines. No local maximum: NaN.
    values = -neg_error(grid)
    local = (values[..., 1:-1] > values[..., :-2]) & (values[..., 1:-1] >= values[..., 2:])
    j = 1 + jnp.argmax(jnp.where(local, values[..., 1:-1], -jnp.inf), axis=-1)
    interior = jnp.any(local, axis=-1)
    step = grid[1] - grid[0]

    def around(tau: Array) -> Array:  # tau in [−1, 1] spans the two cells around grid point j
        return neg_error(ex(grid[j]) + tau * step)

    tau, value = golden_minimize(around, jnp.array([-1.0, 0.0, 1.0]))
    t = grid[j] + tau * step
    at_pole = _test_error(eigs, w1, delta, n, n, p, 0.0, sigma1, sigma2, exact_count=exact_count).total
    m_peak = jnp.where(ridge, jnp.where(interior, jnp.maximum(n * jnp.exp(t), 1.0), jnp.nan), n)
    e_peak = jnp.where(ridge, jnp.where(interior, -value, jnp.nan), at_pole)
    return WidthPeak(m_peak, e_peak)


def peak_width(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    exact_count: bool = True,
) -> WidthPeak:
    """The width m at which E_B(m) peaks at fixed n < d, and the peak height (THEORY.md §3).

    Ridgeless (λ = 0): the peak is the pole m = n, returned as (n, +inf). λ > 0: the finite peak,
    the highest interior local maximum of E_B on a 97-point log-m grid over [n/4, 4n], refined by
    golden-section search on −E_B; where E_B has no local maximum there (a strong ridge removes
    the peak) both are NaN.
    Height Θ(λ^-1/2) as λ → 0, with the location tending to m = n.

    Returns:
        :class:`WidthPeak` (m, error), broadcast over (n, p, lam, sigma1, sigma2).

    Raises:
        ValueError: out-of-range input, or n >= d (the peak in m exists only for n < d).
    """
    require_x64()
    eigs, w1, delta, a = _validate(eigs, w1, delta, n=n, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    if np.any(a["n"] >= eigs.shape[0]):
        d, worst = eigs.shape[0], float(a["n"].max())
        raise ParameterError(f"n must be in [1, d) with d = {d} for a width peak, got {worst!r}")
    return on_cells(
        _peak_width,
        (eigs, w1, delta),
        a["n"],
        a["p"],
        a["lam"],
        a["sigma1"],
        a["sigma2"],
        exact_count=bool(exact_count),
    )


# ---------------------------------------------------------------------------------------------
# Isotropic closed forms (Σ = I), independent of the general solver


def isotropic_kappa(*, phi: Any, psi: Any, lam: Any, polish: int = 4) -> Array:
    """κ = u − 1, u the largest real root of (u−1)(u−φ)(u−φ/ψ) = (λφ/ψ)u² (THEORY.md §3).

    Written in κ, with α = 1 − φ, β = 1 − φ/ψ, q = φ/ψ:  κ³ + (α+β−λq)κ² + (αβ−2λq)κ − λq = 0
    (no cancellation in u − 1 for small κ). Cardano / Viète give the largest real root; a few
    Newton steps on the same cubic polish it to rounding. λ = 0: κ = max(0, φ−1, φ/ψ−1) exactly.
    """
    phi, psi, lam = jnp.broadcast_arrays(*(jnp.asarray(x, jnp.float64) for x in (phi, psi, lam)))
    q = phi / psi
    al, be, c = 1.0 - phi, 1.0 - q, lam * q
    A, B, C = al + be - c, al * be - 2 * c, -c
    P = B - A**2 / 3
    Q = 2 * A**3 / 27 - A * B / 3 + C
    disc = (Q / 2) ** 2 + (P / 3) ** 3
    p_neg = jnp.where(P < 0, P, -1.0)
    cos_arg = jnp.clip(3 * Q / (2 * p_neg) * jnp.sqrt(-3 / p_neg), -1.0, 1.0)
    three = 2 * jnp.sqrt(-p_neg / 3) * jnp.cos(jnp.arccos(cos_arg) / 3)  # Viète, three real roots
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    w = jnp.cbrt(-Q / 2 - jnp.where(Q >= 0, sq, -sq))  # stable Cardano: the two terms add
    one = w - P / (3 * jnp.where(w == 0, 1.0, w))
    k = jnp.where(disc > 0, one, three) - A / 3
    for _ in range(polish):
        f = k * (k + al) * (k + be) - c * (k + 1) ** 2
        df = (k + al) * (k + be) + k * (2 * k + al + be) - 2 * c * (k + 1)
        k = jnp.where(df > 0, k - f / jnp.where(df > 0, df, 1.0), k)
    return jnp.where(lam == 0, jnp.maximum(0.0, jnp.maximum(phi - 1.0, q - 1.0)), k)


def _iso_setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta):
    phi, psi = jnp.asarray(d) / jnp.asarray(n), jnp.asarray(m) / jnp.asarray(n)
    p = jnp.asarray(p)
    wbar2 = w1_norm2 + 2 * p * w1_dot_delta + p**2 * c2
    noise = (1 - p) * sigma1**2 + p * sigma2**2 + p * (1 - p) * c2
    return phi, psi, p, wbar2, noise


def isotropic_test_error(
    *,
    d: Any,
    n: Any,
    m: Any,
    p: Any,
    lam: Any,
    sigma1: Any,
    sigma2: Any,
    w1_norm2: Any,
    c2: Any,
    w1_dot_delta: Any,
) -> Array:
    """Closed-form Model B error for Σ = I (THEORY.md §3, "Isotropic, any λ"), p as given.

    With u = 1 + κ from :func:`isotropic_kappa`, a = φ/u, b = φ/u²:
    D2/n = a − (a−b)(1 − a/ψ)/(1 − b/ψ),  B(w) = ψκ²‖w‖²/(ψu² − φ),
    E_B = [B(w̄) + σ̃² D2/n]/(1 − D2/n) − 2p(κ/u)⟨w̄,Δ⟩ + p²c². Intended for λ > 0
    (use :func:`isotropic_ridgeless` at λ = 0, where the poles need the regime formulas).
    """
    phi, psi, p, wbar2, noise = _iso_setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta)
    k = isotropic_kappa(phi=phi, psi=psi, lam=lam)
    u = 1.0 + k
    a, b = phi / u, phi / u**2
    d2n = a - (a - b) * (1 - a / psi) / (1 - b / psi)
    bias = psi * k**2 * wbar2 / (psi * u**2 - phi)
    return (bias + noise * d2n) / (1 - d2n) - 2 * p * (k / u) * (w1_dot_delta + p * c2) + p**2 * c2


def isotropic_ridgeless(
    *,
    d: Any,
    n: Any,
    m: Any,
    p: Any,
    sigma1: Any,
    sigma2: Any,
    w1_norm2: Any,
    c2: Any,
    w1_dot_delta: Any,
) -> Array:
    """Ridgeless isotropic Model B, one explicit line per regime (THEORY.md §3):

    ψ < min(1,φ):  (1−ψ/φ)‖w1‖² + (ψ/φ)p²c² + ψ/(1−ψ)·[(1−ψ/φ)‖w̄‖² + σ̃²]
    ψ > 1, φ > 1:  (1−1/φ)‖w1‖² + p²c²/φ + (1−1/φ)‖w̄‖²/(ψ−1) + σ̃²(φ+ψ−2)/((φ−1)(ψ−1))
    φ < 1, φ ≤ ψ:  σ̃²φ/(1−φ) + p²c²
    otherwise (n = min(m, d)): +inf.
    """
    phi, psi, p, wbar2, noise = _iso_setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta)
    floor = p**2 * c2
    odds = psi / (1 - psi)
    r1 = (1 - psi / phi) * (w1_norm2 + odds * wbar2) + (psi / phi) * floor + odds * noise
    r2 = (
        (1 - 1 / phi) * w1_norm2
        + floor / phi
        + (1 - 1 / phi) * wbar2 / (psi - 1)
        + noise * (phi + psi - 2) / ((phi - 1) * (psi - 1))
    )
    r3 = noise * phi / (1 - phi) + floor
    return jnp.where(
        psi < jnp.minimum(1.0, phi),
        r1,
        jnp.where((psi > 1) & (phi > 1), r2, jnp.where((phi < 1) & (phi <= psi), r3, jnp.inf)),
    )
