"""Where does the test error peak along a width sweep? The simulation's answer, with uncertainty.

The theory's answer is :func:`analytic.random_projection.peak_width` (continuous in m). A
simulation only has a grid of widths and noisy means, so its estimate is

* the grid width with the largest mean error, refined by the vertex of the parabola through that
  point and its two neighbours in log m (exact for a locally quadratic peak), and
* a bootstrap interval: trials are resampled with replacement (the same resample for every width,
  since nested widths share their training sets) and the refined peak recomputed; the 5-95%
  percentiles of the resampled peaks bound the estimate.

Pure NumPy: it consumes arrays, not the engine, so it works on any sweep's ``errors``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from strongcollapse.vocabulary.validation import ParameterError, check_count, check_vector

__all__ = ["SimulatedPeak", "refined_peak", "simulated_peak"]


@dataclasses.dataclass(frozen=True)
class SimulatedPeak:
    """Peak width estimate from a simulated sweep, with a bootstrap interval."""

    m: float  # refined peak location
    error: float  # mean error at the best grid width
    low: float  # 5% bootstrap percentile of the location
    high: float  # 95% bootstrap percentile
    grid_m: float  # the best grid width itself

    def contains(self, m: float, slack: float = 0.0) -> bool:
        """Whether ``m`` lies in the interval widened by a relative ``slack`` on each side."""
        return self.low * (1 - slack) <= m <= self.high * (1 + slack)


def refined_peak(widths: np.ndarray, means: np.ndarray) -> float:
    """Vertex of the parabola in log m through the largest mean and its neighbours (grid edge: the edge)."""
    j = int(np.argmax(means))
    if j == 0 or j == widths.size - 1:
        return float(widths[j])
    x = np.log(widths[j - 1 : j + 2])
    y = means[j - 1 : j + 2]
    a, b, _ = np.polyfit(x, y, 2)
    vertex = -b / (2 * a) if a < 0 else x[1]
    return float(np.exp(np.clip(vertex, x[0], x[2])))


def simulated_peak(
    widths: np.ndarray, errors: np.ndarray, *, resamples: int = 1000, seed: int = 0
) -> SimulatedPeak:
    """Peak of the mean error over a width grid, with a bootstrap interval over trials.

    Args:
        widths: (W,) increasing widths.
        errors: (W, trials) per-trial errors (the ``errors`` of a simulation result along m).
        resamples: bootstrap resamples.
        seed: seed of the resampling (NumPy generator).
    """
    widths = check_vector("widths", widths)
    if np.any(np.diff(widths) <= 0):
        raise ParameterError("widths must be strictly increasing")
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] != widths.size or errors.shape[1] < 2:
        raise ParameterError(f"errors must have shape (len(widths), trials >= 2), got {errors.shape}")
    resamples = int(check_count("resamples", resamples, minimum=10))
    means = errors.mean(axis=1)
    rng = np.random.default_rng(seed)
    trials = errors.shape[1]
    picks = rng.integers(0, trials, size=(resamples, trials))
    boot = np.array([refined_peak(widths, errors[:, pick].mean(axis=1)) for pick in picks])
    low, high = np.percentile(boot, [5, 95])
    return SimulatedPeak(
        m=refined_peak(widths, means),
        error=float(means.max()),
        low=float(low),
        high=float(high),
        grid_m=float(widths[int(np.argmax(means))]),
    )
