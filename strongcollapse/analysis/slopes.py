"""Log-log slopes of simulated curves, with confidence intervals (THEORY.md §4 exponents, measured).

For cell means E_i ± s_i at sizes n_i, log E_i has standard error ≈ s_i/E_i (delta method), so
the slope of log E on log n is a weighted least-squares fit with weights (E_i/s_i)², and its
standard error follows from the same weights. Cells are independent (different data per cell),
which the weighted fit assumes. Pure NumPy: works on any result's ``mean`` and ``sem``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from strongcollapse.vocabulary.validation import ParameterError, check_count, check_positive

__all__ = ["Slope", "fit_slope", "window_slopes"]


@dataclasses.dataclass(frozen=True)
class Slope:
    """d log E / d log n over a window, with its standard error and 95% interval."""

    slope: float
    se: float
    center: float  # geometric mean of the window's sizes
    low: float
    high: float

    def within(self, value: float, margin: float) -> bool:
        """Whether ``value`` is within ``margin`` of the slope, widened by the 95% interval."""
        return self.low - margin <= value <= self.high + margin


def fit_slope(n: np.ndarray, mean: np.ndarray, sem: np.ndarray) -> Slope:
    """Weighted least-squares slope of log mean on log n (at least 2 points, positive means)."""
    n, mean, sem = (np.ravel(np.asarray(a, dtype=np.float64)) for a in (n, mean, sem))
    if not (n.size == mean.size == sem.size) or n.size < 2:
        raise ParameterError(
            f"n, mean and sem must have the same length >= 2, got {n.size}, {mean.size}, {sem.size}"
        )
    check_positive("n", n)
    check_positive("mean", mean)
    check_positive("sem", sem)
    x, y = np.log(n), np.log(mean)
    w = (mean / sem) ** 2
    xbar = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xbar) ** 2)
    slope = float(np.sum(w * (x - xbar) * (y - np.sum(w * y) / np.sum(w))) / sxx)
    se = float(np.sqrt(1.0 / sxx))
    return Slope(slope, se, float(np.exp(np.mean(x))), slope - 1.96 * se, slope + 1.96 * se)


def window_slopes(n: np.ndarray, mean: np.ndarray, sem: np.ndarray, window: int = 3) -> list[Slope]:
    """Slopes over every run of ``window`` consecutive sizes (sorted by n)."""
    window = int(check_count("window", window, minimum=2))
    order = np.argsort(np.ravel(n))
    n, mean, sem = (np.ravel(np.asarray(a, dtype=np.float64))[order] for a in (n, mean, sem))
    return [
        fit_slope(n[i : i + window], mean[i : i + window], sem[i : i + window])
        for i in range(n.size - window + 1)
    ]
