"""Teachers in Σ's eigenbasis: the real target w1 and the synthetic shift Δ = w2 − w1.

Glossary (Strong Model Collapse, Sec. 2; THEORY.md §0):

* ``w1``: real teacher, labels y = ⟨x, w1⟩ + ε1. Built with a *source exponent* δ,
  (w1)_k² ∝ k^-δ, scaled to a signal power ‖w1‖²_Σ = ⟨w1, Σ w1⟩.
* ``delta``: Δ = w2 − w1, the synthetic teacher's error. Its *quality* is c² = ⟨Δ, Σ Δ⟩
  (small c² = high-quality synthetic data) and its *correlation* with w1 is the cosine
  ρ = ⟨w1, Σ Δ⟩ / (‖w1‖_Σ c) in the Σ inner product.

All constructions are deterministic (no keys): a config names a teacher completely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strongcollapse.vocabulary.validation import (
    ParameterError,
    check_eigenvalues,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_vector,
)

__all__ = ["sigma_inner", "source_teacher", "synthetic_shift"]


def sigma_inner(eigs: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """⟨a, Σ b⟩ = Σ_k e_k a_k b_k for vectors in Σ's eigenbasis."""
    return float(np.sum(eigs * a * b))


def source_teacher(eigs: Any, *, source: float = 0.0, signal: float = 1.0) -> np.ndarray:
    """Real teacher with source exponent δ: (w1)_k = C k^(-δ/2), scaled so ‖w1‖²_Σ = signal.

    Args:
        eigs: (d,) eigenvalues of Σ, descending.
        source: δ >= 0 (δ = 0 gives equal coefficients; THEORY.md §4 uses δ with β + δ > 1).
        signal: the signal power ‖w1‖²_Σ = E⟨x, w1⟩² > 0.

    Returns:
        (d,) float64 coefficients, all positive.
    """
    eigs = check_eigenvalues("eigs", eigs)
    delta_exp = float(check_nonnegative("source", source))
    signal = float(check_positive("signal", signal))
    k = np.arange(1, eigs.shape[0] + 1, dtype=np.float64)
    w = k ** (-delta_exp / 2.0)
    return w * np.sqrt(signal / sigma_inner(eigs, w, w))


def synthetic_shift(
    eigs: Any,
    w1: Any,
    *,
    c2: float,
    corr: float = 0.0,
    direction: Any | None = None,
) -> np.ndarray:
    """Synthetic shift Δ with quality c² = ⟨Δ, ΣΔ⟩ and Σ-correlation ``corr`` with w1.

    Δ = c (ρ u + sqrt(1 − ρ²) v), with u = w1/‖w1‖_Σ and v the Σ-normalised part of
    ``direction`` that is Σ-orthogonal to w1. The default direction, (−1)^k |w1_k|, has the same
    source exponent as w1, so Δ decays like the target does (THEORY.md §4, δ̄ = δ).

    Args:
        eigs: (d,) eigenvalues, descending.
        w1: (d,) real teacher with ‖w1‖_Σ > 0.
        c2: quality c² >= 0.
        corr: ρ in [-1, 1].
        direction: optional (d,) vector giving the part of Δ orthogonal to w1.

    Returns:
        (d,) float64 Δ.

    Raises:
        ValueError: out-of-range input, or a direction (numerically) parallel to w1 while |ρ| < 1.
    """
    eigs = check_eigenvalues("eigs", eigs)
    d = eigs.shape[0]
    w1 = check_vector("w1", w1, d)
    c = float(np.sqrt(check_nonnegative("c2", c2)))
    rho = float(check_in_range("corr", corr, -1.0, 1.0))
    norm_w1 = np.sqrt(sigma_inner(eigs, w1, w1))
    if norm_w1 == 0:
        raise ParameterError("w1 must be non-zero (‖w1‖_Σ > 0) to define a correlation with it")
    u = w1 / norm_w1
    if direction is None:
        direction = np.where(np.arange(d) % 2 == 0, 1.0, -1.0) * np.abs(w1)
    v = check_vector("direction", direction, d)
    v = v - sigma_inner(eigs, u, v) * u
    norm_v = np.sqrt(max(sigma_inner(eigs, v, v), 0.0))
    if abs(rho) < 1 and norm_v <= 1e-12 * np.sqrt(sigma_inner(eigs, direction, direction)):
        raise ParameterError("direction must not be parallel to w1 when |corr| < 1 (pass another direction)")
    v = v / norm_v if norm_v > 0 else np.zeros(d)
    return c * (rho * u + np.sqrt(1.0 - rho**2) * v)
