"""Theory against simulation: the tolerance rule and the agreement summary (DESIGN.md §6).

A simulated mean agrees with theory when

    |mean − theory| <= z_tol · s.e. + r · |theory|,

with z_tol = 4 (a 4-sigma Monte Carlo allowance) and r the *finite-size allowance*: the
deterministic equivalent is exact only as d, n → ∞, and THEORY.md §5 quantifies the finite-size
bias (about 1% away from thresholds at d of a few hundred, about 1/|n − d| relative near the
interpolation threshold). Every test and every experiment states the r it uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Z_TOL", "agrees", "Agreement", "summarise", "finite_size_allowance"]

Z_TOL = 4.0


def agrees(mean: Any, sem: Any, theory: Any, r: Any, z_tol: float = Z_TOL) -> np.ndarray:
    """Elementwise tolerance rule |mean − theory| <= z_tol·sem + r·|theory|."""
    mean, sem, theory = (np.asarray(a, dtype=np.float64) for a in (mean, sem, theory))
    return np.abs(mean - theory) <= z_tol * sem + np.asarray(r) * np.abs(theory)


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Summary of theory vs simulation over a set of cells."""

    cells: int
    passed: int
    worst_rel: float  # max |mean/theory − 1|
    worst_z: float  # max |mean − theory|/sem
    r: str  # the finite-size allowance used, in words
    z_tol: float

    @property
    def ok(self) -> bool:
        """Every cell within tolerance."""
        return self.passed == self.cells

    def line(self) -> str:
        """One human-readable line."""
        verdict = "all within" if self.ok else f"{self.cells - self.passed} OUTSIDE"
        return (
            f"agreement: {self.passed}/{self.cells} cells within |mean-theory| <= "
            f"{self.z_tol:g} s.e. + r|theory|, r = {self.r} ({verdict}); "
            f"worst relative error {self.worst_rel:.2%}, worst |z| {self.worst_z:.2f}"
        )


def summarise(
    mean: Any, sem: Any, theory: Any, r: Any, z_tol: float = Z_TOL, r_text: str | None = None
) -> Agreement:
    """Agreement over all given cells (flattened); ``r`` is a scalar or one allowance per cell."""
    mean, sem, theory = (np.ravel(np.asarray(a, dtype=np.float64)) for a in (mean, sem, theory))
    r = np.broadcast_to(np.ravel(np.asarray(r, dtype=np.float64)), mean.shape) if np.ndim(r) else r
    ok = agrees(mean, sem, theory, r, z_tol)
    rel = np.abs(mean / theory - 1.0)
    z = np.abs(mean - theory) / sem
    return Agreement(
        cells=int(mean.size),
        passed=int(ok.sum()),
        worst_rel=float(np.max(rel)),
        worst_z=float(np.max(z)),
        r=r_text if r_text is not None else f"{float(np.max(r)):.1%}",
        z_tol=float(z_tol),
    )


def finite_size_allowance(n: Any, threshold: Any, r0: float) -> np.ndarray:
    """r = r0 + 1/|n − threshold|: THEORY.md §5's finite-size bias near an interpolation threshold.

    Away from the threshold the deterministic equivalent is accurate to about r0 (1-2% at d of a
    hundred or so); approaching it the bias grows like 1/|n − d| relative (for OLS exactly:
    E[tr(XᵀX)^-1 Σ] = d/(n − d − 1) against the equivalent's d/(n − d)).
    """
    gap = np.abs(np.asarray(n, dtype=np.float64) - np.asarray(threshold, dtype=np.float64))
    return r0 + 1.0 / np.maximum(gap, 1.0)
