"""Beyond linear models: nonlinear random features and covariate shift under a real/synthetic mix.

Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025) proves its claims for linear
(Model A) and random-projection (Model B) regression with Σ1 = Σ2. The experiments here check that
they persist for ridge on frozen nonlinear random features σ(Wx/√d) (Mei & Montanari 2019; the
deterministic equivalent of THEORY_RF.md) and when the synthetic covariates have their own
covariance Σ2 ≠ Σ1 (THEORY_SHIFT_GENERATIONS.md Part 1). Both equivalents are derived, not stated
in the paper, and each experiment checks them against exact-risk Monte Carlo.

Each module defines one ``EXPERIMENT`` registered under
``[project.entry-points."strongcollapse.experiments"]``: ``random-features``,
``random-features-gap`` and ``covariate-shift``.
"""

from __future__ import annotations

from typing import Any, Iterable

PAPER = (
    "Mei & Montanari 2019 (random features, arXiv 1908.05355) with Strong Model Collapse "
    "(Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840); THEORY_RF.md, "
    "THEORY_SHIFT_GENERATIONS.md"
)

__all__ = ["PAPER", "worst_cells"]


def worst_cells(rows: Iterable[dict[str, Any]], keys: tuple[str, ...], count: int = 3) -> list[str]:
    """Notes naming the ``count`` cells closest to (or beyond) their tolerance.

    A cell's margin is |mean − theory| / (4 s.e. + allowance·|theory|): at most 1 inside the
    tolerance rule of :mod:`strongcollapse.analysis.compare`. ``keys`` name the row's parameters.
    """
    rows = list(rows)

    def margin(row: dict[str, Any]) -> float:
        room = 4.0 * row["sim_sem"] + row["allowance"] * abs(row["theory"])
        return abs(row["sim_mean"] - row["theory"]) / room if room > 0 else float("inf")

    ranked = sorted(rows, key=margin, reverse=True)[:count]
    lines = []
    for row in ranked:
        where = ", ".join(f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys)
        lines.append(
            f"worst cell {where}: sim {row['sim_mean']:.4g} ± {row['sim_sem']:.2g} vs theory "
            f"{row['theory']:.4g} ({row['rel_err']:+.2%}, z = {row['z']:+.2f}, allowance "
            f"{row['allowance']:.1%}; {margin(row):.2f} of the tolerance used)"
        )
    return lines

