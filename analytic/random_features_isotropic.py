"""Isotropic (Σ = I) closed forms of the random-feature DE (THEORY_RF.md §6), a separate code path.

With ψ1 = m/d, ψ2 = n/d, ζ² = μ1²/μ*², λ̄ = λ_MM/μ*² = λd/(mμ*²) (λ the ridge on the output weights,
λ_MM Mei–Montanari's), u = 1 + κ, g = a/d = 1/u + 1/(ζ²κ):

    κ: largest real root of P1(κ)P2(κ) = λ̄ψ1ψ2ζ²κ(1+κ)²,  Pj(κ) = ψjζ²κ² + (ψjζ² − 1 − ζ²)κ − 1,
    ridgeless (ψ = min(ψ1, ψ2)): κ = [1 − ζ²(ψ−1) + √((ζ²(ψ−1) − 1)² + 4ζ²ψ)]/(2ζ²ψ),
    D2/n = [g − (ψ1−g)(g − 1/u²)/(ψ1 − 1/u²)]/ψ2,   B(w) = ‖w‖²[κ²/u² + κ(g − 1/u²)/((ψ1 − 1/u²)u²)],
    E = [B(w̄) + σ̃² D2/n]/(1 − D2/n) − 2p(κ/u)⟨w̄,Δ⟩ + p²c².

These are Mei & Montanari's (arXiv 1908.05355, Thm 1) at p = 0, with their χ = ν1ν2 = −1/(ζ²κ);
Strong Model Collapse (ICLR 2025) supplies the synthetic mix (w̄, σ̃², cross term, floor p²c²).
NumPy (roots of a quartic per grid point); p is used as given (no rint(p·n)); μ* = 0 falls back
to Model B's isotropic formulas with λ_B = λ/μ1².
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analytic import random_projection
from strongcollapse.vocabulary.activations import Activation, get_activation

__all__ = ["isotropic_kappa", "isotropic_test_error", "isotropic_ridgeless"]


def _zeta2(act: Activation) -> float:
    return act.mu1**2 / act.mu_star**2


def isotropic_kappa(*, d: Any, n: Any, m: Any, lam: Any, activation: str | Activation) -> np.ndarray:
    """κ of (RF-κ) for Σ = I and μ* > 0 from the quartic (λ > 0) or the quadratic (λ = 0), §6.

    The quartic's largest real root is the right one: H(κ) = μ1²κ(1 − a/m)(1 − a/n) is increasing
    beyond the ridgeless κ0 (the largest root of P1P2), so H = λd/m has exactly one root above it.
    Companion-matrix roots, then Newton polishing on the same quartic.
    """
    act = get_activation(activation)
    z = _zeta2(act)
    d, n, m, lam = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (d, n, m, lam)))
    psi1, psi2 = m / d, n / d
    psi = np.minimum(psi1, psi2)
    b = z * (psi - 1) - 1
    ridgeless = (1 - z * (psi - 1) + np.sqrt(b**2 + 4 * z * psi)) / (2 * z * psi)
    lbar = lam * d / (m * act.mu_star**2)
    # P1·P2 − λ̄ψ1ψ2ζ²κ(1+κ)², coefficients in descending powers (κ⁴ … κ⁰) along the last axis.
    p1 = np.stack([psi1 * z, psi1 * z - 1 - z, -np.ones_like(psi1)], -1)
    p2 = np.stack([psi2 * z, psi2 * z - 1 - z, -np.ones_like(psi2)], -1)
    prod = np.zeros(psi1.shape + (5,))
    for i in range(3):
        for j in range(3):
            prod[..., i + j] += p1[..., i] * p2[..., j]
    c = lbar * psi1 * psi2 * z
    prod[..., 1:4] -= c[..., None] * np.array([1.0, 2.0, 1.0])  # κ(1+κ)² = κ³ + 2κ² + κ
    monic = prod[..., 1:] / prod[..., :1]
    comp = np.zeros(psi1.shape + (4, 4))
    comp[..., 0, :] = -monic
    comp[..., 1, 0] = comp[..., 2, 1] = comp[..., 3, 2] = 1.0
    roots = np.linalg.eigvals(comp)
    real = np.abs(roots.imag) <= 1e-7 * np.maximum(np.abs(roots), 1.0)
    k = np.max(np.where(real, roots.real, -np.inf), axis=-1)
    for _ in range(4):  # Newton on the quartic: eigenvalue roots are accurate to ~1e-12 only
        val = np.polynomial.polynomial.polyval(k, np.moveaxis(prod[..., ::-1], -1, 0), tensor=False)
        der = np.polynomial.polynomial.polyval(
            k, np.moveaxis(prod[..., ::-1][..., 1:] * np.arange(1, 5), -1, 0), tensor=False
        )
        k = np.where(der != 0, k - val / np.where(der != 0, der, 1.0), k)
    return np.where(lam == 0, ridgeless, k)


def _setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta):
    d, n, m, p = (np.asarray(x, np.float64) for x in (d, n, m, p))
    wbar2 = w1_norm2 + 2 * p * w1_dot_delta + p**2 * c2
    noise = (1 - p) * sigma1**2 + p * sigma2**2 + p * (1 - p) * c2
    return d, n, m, p, wbar2, noise


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
    activation: str | Activation,
) -> np.ndarray:
    """Closed-form E_RF for Σ = I (THEORY_RF §6), any λ >= 0 (ridgeless m = n: +inf), p as given.

    Args:
        d, n, m, p, lam, sigma1, sigma2: as in :func:`analytic.random_features.test_error`.
        w1_norm2, c2, w1_dot_delta: ‖w1‖², c² = ‖Δ‖², ⟨w1, Δ⟩ (all that Σ = I depends on).
        activation: a registry name or an Activation.
    """
    act = get_activation(activation)
    if act.mu_star == 0:
        return np.asarray(
            random_projection.isotropic_test_error(
                d=d, n=n, m=m, p=p, lam=np.asarray(lam) / act.mu1**2, sigma1=sigma1, sigma2=sigma2,
                w1_norm2=w1_norm2, c2=c2, w1_dot_delta=w1_dot_delta,
            )
            if np.all(np.asarray(lam) > 0)
            else random_projection.isotropic_ridgeless(
                d=d, n=n, m=m, p=p, sigma1=sigma1, sigma2=sigma2, w1_norm2=w1_norm2, c2=c2,
                w1_dot_delta=w1_dot_delta,
            )
        )  # fmt: skip
    d, n, m, p, wbar2, noise = _setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta)
    k = isotropic_kappa(d=d, n=n, m=m, lam=lam, activation=act)
    u, psi1, psi2 = 1 + k, m / d, n / d
    g = 1 / u + 1 / (_zeta2(act) * k)
    g = np.where(np.asarray(lam) == 0, np.minimum(psi1, psi2), g)  # exact a = min(m, n) ridgeless
    coef = (g - 1 / u**2) / (psi1 - 1 / u**2)
    d2n = (g - (psi1 - g) * coef) / psi2
    bias = wbar2 * (k**2 / u**2 + k * coef / u**2)
    with np.errstate(divide="ignore", invalid="ignore"):  # the ridgeless pole m = n is +inf
        over = np.where(d2n >= 1, np.inf, (bias + noise * d2n) / (1 - d2n))
    return over - 2 * p * (k / u) * (w1_dot_delta + p * c2) + p**2 * c2


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
    activation: str | Activation,
) -> np.ndarray:
    """Ridgeless Σ = I, explicit (THEORY_RF §6), with q = 1/(1+κ) the captured signal fraction:

    m < n (ψ = m/n, q = q(ψ1)):  E = [(1−q)‖w̄‖² + σ̃²ψ]/(1−ψ) − 2p(1−q)⟨w̄,Δ⟩ + p²c²;
    m > n (q = q(ψ2), R = ψ2(ψ1 − q²)/((ψ1 − ψ2)(ψ2 − q²))):
        E = ‖w̄‖²[(1−q)² + (1−q)q(ψ2−q²)/(ψ1−q²)]·R + σ̃²(R − 1) − 2p(1−q)⟨w̄,Δ⟩ + p²c²;
    m = n: +inf. Requires μ* > 0 (use Model B's formulas for a linear σ).
    """
    act = get_activation(activation)
    d, n, m, p, wbar2, noise = _setup(d, n, m, p, sigma1, sigma2, w1_norm2, c2, w1_dot_delta)
    q = 1 / (1 + isotropic_kappa(d=d, n=n, m=m, lam=0.0, activation=act))
    psi, psi1, psi2 = m / n, m / d, n / d
    shift = -2 * p * (1 - q) * (w1_dot_delta + p * c2) + p**2 * c2
    with np.errstate(divide="ignore", invalid="ignore"):
        below = ((1 - q) * wbar2 + noise * psi) / (1 - psi)
        r = psi2 * (psi1 - q**2) / ((psi1 - psi2) * (psi2 - q**2))
        above = wbar2 * ((1 - q) ** 2 + (1 - q) * q * (psi2 - q**2) / (psi1 - q**2)) * r + noise * (r - 1)
    return np.where(m < n, below, np.where(m > n, above, np.inf)) + shift
