"""Nonlinear random-feature regression on a real + synthetic mix: deterministic equivalent.

THEORY_RF.md §5 (result), §7 (limits), §8 (refinement DE2), §10 (solver); Strong Model Collapse
(Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840), Model B of THEORY.md §3 with
df1 → a = df1 + s; Mei & Montanari 2019 (arXiv 1908.05355) for the isotropic p = 0 case.

Model: f(x) = Σ_{i<=m} a_i σ(⟨w_i, x⟩/√d), rows w_i iid N(0, I_d), fitted by

    min_a (1/n) Σ_j (y_j − f(x_j))² + λ‖a‖²         (λ = 0: min-norm / least squares, exactly)

on n points, rint(p·n) of them synthetic (labels ⟨x, w2⟩ + N(0, σ2²), w2 = w1 + Δ), the others
real (⟨x, w1⟩ + N(0, σ1²)); test error E = E_x(f(x) − ⟨x, w1⟩)².

**λ convention.** λ is the ridge on the output weights a, the same λ as Model B's
(:func:`analytic.random_projection.test_error`), so ``activation="linear"`` is Model B exactly.
Mei–Montanari's λ_MM (penalty ψ1λ_MM‖a‖², ψ1 = m/d) is λ_MM = λ·d/m. The kernel limit is taken at
fixed kernel-ridge λ_K = λ/m (:func:`kernel_limit`).

**tr Σ/d.** The GE constants μ of THEORY_RF §2 are for unit-variance pre-activations, i.e.
tr Σ/d = 1. Any other spectrum is *rescaled*, exactly: with v = tr Σ/d and x̃ = x/√v,
σ(⟨w,x⟩/√d) = σ_v(⟨w,x̃⟩/√d), σ_v(t) = σ(√v t) (:func:`strongcollapse.vocabulary.activations.rescaled`),
and the problem is solved for (Σ/v, √v w1, √v Δ, σ_v). ⟨w, Σ w⟩, c² and E are unchanged; ``kappa``
is reported in the units of the Σ given.

Glossary (THEORY_RF §4-5): κ the renormalised ridge, s = μ*²d/(μ1²κ), a = df1(κ) + s,

    μ1²κ(1 − a/m)(1 − a/n) = λd/m,                                                     (RF-κ)
    D2 = a − (m − a)(a − df2)/(m − df2),
    B(w) = κ²⟨w,Σ(Σ+κ)^-2 w⟩ + κ(a − df2)/(m − df2)·⟨w,Σ²(Σ+κ)^-2 w⟩,
    E_RF = [B(w̄) + σ̃² D2/n]/(1 − D2/n) − 2pκ⟨w̄,Σ(Σ+κ)^-1 Δ⟩ + p²c²,                    (RF)

w̄ = w1 + pΔ, σ̃² = (1−p)σ1² + pσ2² + p(1−p)c², c² = ⟨Δ,ΣΔ⟩. Computed in
:mod:`analytic.random_features_core`; closed forms for Σ = I in :mod:`analytic.random_features_isotropic`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from analytic import random_features_core as core
from analytic.common import validate_problem
from analytic.random_features_core import RandomFeatureTheory
from strongcollapse.vocabulary.activations import Activation, get_activation, rescaled
from strongcollapse.vocabulary.validation import (
    ParameterError,
    broadcast_named,
    check_in_range,
    check_nonnegative,
    require_x64,
)

__all__ = [
    "RandomFeatureTheory",
    "InfiniteDataLimit",
    "REFINEMENTS",
    "test_error",
    "collapse_gap",
    "kernel_limit",
    "infinite_data_limit",
    "pole_residue",
    "implicit_ridge",
    "de2_spectrum",
]

REFINEMENTS = (None, "DE2")


class _Problem(NamedTuple):
    """A validated problem in the core's units (THEORY_RF §5 or the operator form of §8)."""

    sp: core.Spectrum  # padded ε, mask, β of w1 and Δ
    flat: float  # r
    t_scale: float  # t = t_scale·λ/m (test_error) or t_scale·λ_K (kernel_limit)
    unit: float  # κ in Σ's units = unit·κ_core
    nonlinear: bool
    act: Activation  # the activation seen by unit-variance inputs


def _setup(eigs, w1, delta, activation, refinement) -> _Problem:
    """Validates (eigs, w1, Δ, σ, refinement) and maps them to the core's units."""
    eigs, w1, delta = validate_problem(eigs, w1, delta)
    if refinement not in REFINEMENTS:
        raise ParameterError(f"refinement must be one of {REFINEMENTS}, got {refinement!r}")
    d, v = eigs.shape[0], float(np.mean(eigs))
    act = rescaled(get_activation(activation), v)  # exact reparametrisation to tr Σ/d = 1
    if act.mu1 == 0:
        raise ParameterError(
            f"activation {act.name!r} must have mu1 = E gσ(g) != 0: with μ1 = 0 the features carry no "
            "linear signal and the Gaussian-equivalence theory of a linear target does not apply"
        )
    e, mu1sq = eigs / v, act.mu1**2
    b1, bd = w1 * np.sqrt(eigs), delta * np.sqrt(eigs)  # β = w√e, invariant under the rescaling
    if refinement is None:
        sp = core.pad_spectrum(e, b1, bd)
        return _Problem(sp, act.mu_star**2 * d / mu1sq, d / mu1sq, v, act.mu_star > 0, act)
    eps, beta1, betad, flat = de2_spectrum(e, b1, bd, act)
    return _Problem(core.pad_spectrum(eps, beta1, betad), flat, 1.0, v * d / mu1sq, True, act)


def de2_spectrum(e: np.ndarray, b1: np.ndarray, bd: np.ndarray, act: Activation) -> tuple:
    """The kernel-operator spectrum of THEORY_RF §8 ("DE2"), in kernel units, tr Σ/d = 1.

    Linear eigenfunctions ε = μ1²e_k/d carrying the target β; the constant μ0²; the degree-2 block
    μ2²e_ie_j/d² (i < j) plus the eigenvalues of (μ2²/d²)[diag(e²) + ½eeᵀ] (the ½eeᵀ term is the
    ‖x‖² direction); flat mass F = μ*² − μ2²/2 for degrees >= 3 (and the rest of degree 2 is not
    flat: it is the block). Zero eigenvalues (odd σ: μ0 = μ2 = 0) are dropped, so DE2 = (RF) then.
    A correction with r_w ≈ 1 in the degree-2 block and degrees >= 3 flat, not a theorem.

    Returns:
        (eps, beta1, betad, flat), eps descending.

    Raises:
        ParameterError: F <= 0 (a σ whose nonlinear part is purely quadratic).
    """
    d = e.shape[0]
    flat = act.mu_star**2 - act.mu2**2 / 2
    if not flat > 1e-12 * max(act.mu_star**2, 1e-300):
        raise ParameterError(
            f"refinement='DE2' needs mu_star² > mu2²/2 (a part of degree >= 3), got mu_star² = "
            f"{act.mu_star**2:.6g}, mu2²/2 = {act.mu2**2 / 2:.6g} for activation {act.name!r}"
        )
    extra = [np.array([act.mu0**2])]
    if act.mu2 != 0:
        i, j = np.triu_indices(d, k=1)
        extra.append(act.mu2**2 * e[i] * e[j] / d**2)
        extra.append(np.linalg.eigvalsh(act.mu2**2 / d**2 * (np.diag(e**2) + 0.5 * np.outer(e, e))))
    rest = np.concatenate(extra)
    rest = rest[rest > 0]
    eps = np.concatenate([act.mu1**2 * e / d, rest])
    beta1 = np.concatenate([b1, np.zeros(rest.shape)])
    betad = np.concatenate([bd, np.zeros(rest.shape)])
    order = np.argsort(-eps, kind="stable")
    return eps[order], beta1[order], betad[order], float(flat)


def _scalars(**scalars) -> dict:
    """Range checks named after the parameter, then a named broadcast check."""
    ranges = {"n": (1.0, np.inf), "m": (1.0, np.inf), "p": (0.0, 1.0)}
    out = {
        k: (check_in_range(k, v, *ranges[k]) if k in ranges else check_nonnegative(k, v))
        for k, v in scalars.items()
    }
    broadcast_named(**out)
    return out


def _fraction(n: np.ndarray, p: np.ndarray, exact_count: bool) -> np.ndarray:
    """rint(p·n)/n as the simulation uses it (vocabulary.problem); p itself if not exact or n = ∞."""
    if not exact_count:
        return np.asarray(p, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(n), np.rint(p * n) / n, p)


def _run(
    pr: _Problem, n, m, target, p, sigma1, sigma2, exact_count
) -> tuple[RandomFeatureTheory, np.ndarray]:
    pe = _fraction(np.asarray(n, np.float64), p, bool(exact_count))
    return core.evaluate(pr.sp, n, m, target, pr.flat, pe, sigma1, sigma2, pr.unit)


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
    activation: str | Activation,
    refinement: str | None = None,
    exact_count: bool = True,
) -> RandomFeatureTheory:
    """Deterministic equivalent of the random-feature test error on real data (THEORY_RF eq. (RF)).

    μ1²κ(1 − a/m)(1 − a/n) = λd/m, a = df1(κ) + μ*²d/(μ1²κ); E_RF as in the module docstring.
    λ = 0 is the exact ridgeless / min-norm branch (a = min(m, n)), for m < n and m > n; m = n
    ridgeless gives +inf. ``activation="linear"`` (μ* = 0) is Model B (THEORY.md §3) exactly.

    Args:
        eigs: (d,) eigenvalues of Σ, descending, positive; tr Σ/d ≠ 1 is rescaled exactly (module
            docstring).
        w1, delta: (d,) real teacher and synthetic shift Δ = w2 − w1 in Σ's eigenbasis.
        n, m: sample size(s) and width(s) >= 1 (real-valued allowed, for smooth curves).
        p: synthetic fraction(s) in [0, 1]; exactly rint(p·n) samples are synthetic.
        lam: ridge λ >= 0 of (1/n)Σ(y − f)² + λ‖a‖²; Mei–Montanari's λ is λd/m.
        sigma1, sigma2: label-noise standard deviations >= 0.
        activation: a name of :data:`strongcollapse.vocabulary.activations.ACTIVATIONS`
            ("relu", "tanh", "erf", "linear") or an Activation.
        refinement: None for (RF); "DE2" for the finite-d refinement of THEORY_RF §8 (adds the
            constant and degree-2 eigenvalues; identical to (RF) for odd σ).
        exact_count: use rint(p·n)/n as the simulation does; False uses p.

    Returns:
        :class:`RandomFeatureTheory` broadcast over (n, m, p, lam, sigma1, sigma2), with the solver
        report (converged, iterations, residual).

    Raises:
        ParameterError: malformed or out-of-range input, unknown activation or refinement, μ1 = 0.

    Example:
        >>> import numpy as np
        >>> e = np.ones(300); w1 = np.zeros(300); w1[0] = 1.0
        >>> res = test_error(e, w1, 0 * w1, n=600, m=300, p=0, lam=0, sigma1=0.5, activation="relu")
        >>> bool(res.converged), round(float(res.a), 9)  # ridgeless: a = min(m, n)
        (True, 300.0)
    """
    require_x64()
    pr = _setup(eigs, w1, delta, activation, refinement)
    a = _scalars(n=n, m=m, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    target = pr.t_scale * a["lam"] / a["m"]
    return _run(pr, a["n"], a["m"], target, a["p"], a["sigma1"], a["sigma2"], exact_count)[0]


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
    activation: str | Activation,
    refinement: str | None = None,
    exact_count: bool = True,
) -> np.ndarray:
    """E_RF(p) − E_RF(0) at the same (n, m, λ, σ1, σ2) (THEORY_RF §6, §11 (ii)-(iii)).

    Ridgeless isotropic, Δ ⟂ w1, m < n: p²c²[q + (1−q)ψ/(1−ψ)] + Δσ²ψ/(1−ψ) with q = 1/(1+κ_m),
    ψ = m/n, Δσ² = p(σ2²−σ1²) + p(1−p)c²; above m = n it decreases to the kernel-limit gap > 0.
    At the exact pole the sign of the numerators' difference gives ±inf. Arguments as in
    :func:`test_error`.
    """
    require_x64()
    pr = _setup(eigs, w1, delta, activation, refinement)
    a = _scalars(n=n, m=m, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    target = pr.t_scale * a["lam"] / a["m"]
    return _run(pr, a["n"], a["m"], target, a["p"], a["sigma1"], a["sigma2"], exact_count)[1]


def kernel_limit(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    lam: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    activation: str | Activation,
    refinement: str | None = None,
    exact_count: bool = True,
) -> RandomFeatureTheory:
    """m → ∞ at fixed kernel ridge λ_K (THEORY_RF §7, "Kernel limit"): kernel ridge(less) regression.

    The width-m model with ridge λ is kernel ridge regression with kernel ΦΦᵀ/m and
    (1/n)Σ(y − h)² + λ_K‖h‖² with λ_K = λ/m, so m → ∞ is taken at fixed λ_K = ``lam``. Then
    D2 → df2, B → κ²⟨w,Σ(Σ+κ)^-2 w⟩ and (RF-κ) becomes Model A, κ(1 − df1/n) = λ_A with

        λ_A = (λ_K d + μ*²d/n)/μ1²  (= λ_MM/μ1² + μ*²d/(μ1²n), THEORY_RF §7),

    i.e. formula (A) of THEORY.md §2 with the implicit ridge μ*²d/(μ1²n). ``lam = 0``: kernel
    ridgeless regression (also the m → ∞ limit at any fixed λ on a). Other arguments as in
    :func:`test_error`; ``m`` is the exact m = ∞ of the core (field ``projection_variance`` = 0).
    """
    require_x64()
    pr = _setup(eigs, w1, delta, activation, refinement)
    a = _scalars(n=n, p=p, lam=lam, sigma1=sigma1, sigma2=sigma2)
    t = pr.t_scale * a["lam"]
    return _run(pr, a["n"], np.inf, t, a["p"], a["sigma1"], a["sigma2"], exact_count)[0]


class InfiniteDataLimit(NamedTuple):
    """n → ∞ at fixed width m (THEORY_RF §7, "Plateau"), total = approximation + synthetic."""

    total: np.ndarray
    # E at p = 0, what a width-m model misses of w1: κ_m⟨w1,Σ(Σ+κ_m)^-1 w1⟩ ridgeless
    approximation: np.ndarray
    # the collapse part E(p) − E(0): p²⟨Δ,Σ²(Σ+κ_m)^-1 Δ⟩ ridgeless, rising with m towards p²c²
    synthetic: np.ndarray
    kappa: np.ndarray
    converged: np.ndarray


def infinite_data_limit(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    m: Any,
    p: Any,
    lam: Any = 0.0,
    activation: str | Activation,
    refinement: str | None = None,
) -> InfiniteDataLimit:
    """E_RF as n → ∞ at fixed m and λ (THEORY_RF §7): μ1²κ(1 − a/m) = λd/m, no variance term.

    Ridgeless: a(κ_m) = m and E_∞ = κ_m⟨w1,Σ(Σ+κ_m)^-1 w1⟩ + p²⟨Δ,Σ²(Σ+κ_m)^-1 Δ⟩ (the w1–Δ cross
    terms cancel); isotropic (κ_m‖w1‖² + p²c²)/(1 + κ_m). The label noise drops out, and p is used
    as given (n = ∞). Broadcast over (m, p, lam).
    """
    require_x64()
    pr = _setup(eigs, w1, delta, activation, refinement)
    a = _scalars(m=m, p=p, lam=lam)
    t = pr.t_scale * a["lam"] / a["m"]
    full, gap = _run(pr, np.inf, a["m"], t, a["p"], 0.0, 0.0, False)
    return InfiniteDataLimit(full.total, full.total - gap, gap, full.kappa, full.converged)


def pole_residue(
    eigs: Any,
    w1: Any,
    delta: Any,
    *,
    n: Any,
    p: Any,
    sigma1: Any = 0.0,
    sigma2: Any = 0.0,
    activation: str | Activation,
    exact_count: bool = True,
) -> np.ndarray:
    """lim E_RF·|1 − m/n| as m → n, ridgeless (THEORY_RF §7, "Interpolation threshold only at m = n").

    T(w̄) + σ̃², T(w̄) = κ_n⟨w̄, Σ(Σ+κ_n)^-1 w̄⟩ with a(κ_n) = n: a simple pole from both sides for
    every activation with μ* > 0 and every n (for μ* = 0 it is Model B's, with no pole when n >= d:
    returned as 0 there). Broadcast over (n, p, sigma1, sigma2).
    """
    require_x64()
    pr = _setup(eigs, w1, delta, activation, None)
    a = _scalars(n=n, p=p, sigma1=sigma1, sigma2=sigma2)
    # Ridgeless with m = ∞ has κ = κ_n (a(κ_n) = n), the κ at the pole m = n.
    res, _ = _run(pr, a["n"], np.inf, 0.0, a["p"], a["sigma1"], a["sigma2"], exact_count)
    pe = res.p_eff
    k = (res.kappa / pr.unit)[..., None]
    eigs, mask, b1, bd = pr.sp.eigs, pr.sp.mask, pr.sp.b1, pr.sp.bd
    w = mask * k / (eigs + k)  # κ(Σ+κ)^-1 on β² = κ⟨·,Σ(Σ+κ)^-1·⟩
    s11, s1d, sdd = (np.sum(w * x * y, -1) for x, y in ((b1, b1), (b1, bd), (bd, bd)))
    c2 = float(np.sum(bd**2))
    noise = (1 - pe) * a["sigma1"] ** 2 + pe * a["sigma2"] ** 2 + pe * (1 - pe) * c2
    out = s11 + 2 * pe * s1d + pe**2 * sdd + noise
    if not pr.nonlinear:  # Model B: no pole at m = n once n >= d (κ_n = 0)
        out = np.where(a["n"] < pr.sp.d, out, 0.0)
    return out


def implicit_ridge(activation: str | Activation, *, d: Any, n: Any) -> np.ndarray:
    """λ_imp = μ*²d/(μ1²N): the ridge that ridgeless RF adds to Model A at sample size N (§7).

    Ridgeless, (RF-κ) reads df1(κ) + μ*²d/(μ1²κ) = N = min(m, n), which is Model A's fixed point
    κ − λ_imp = κ df1/N. Values for tr Σ/d = 1: 0.363 d/N (ReLU), 0.075 d/N (tanh), 0.095 d/N (erf).
    """
    act = get_activation(activation)
    a = _scalars(d=d, n=n)
    if (a["n"] < 1).any():
        raise ParameterError(f"n must be >= 1, got {float(a['n'].min())!r}")
    if act.mu1 == 0:
        raise ParameterError(f"activation {act.name!r} must have mu1 != 0")
    return act.mu_star**2 * a["d"] / (act.mu1**2 * a["n"])
