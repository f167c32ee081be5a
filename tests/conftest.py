"""Test configuration: float64 at program entry (DESIGN.md §3) and shared problems."""

from __future__ import annotations

import numpy as np
import pytest

import strongcollapse
from strongcollapse import Problem
from strongcollapse.orchestration.compile_cache import enable_compile_cache

strongcollapse.enable_x64()
# Program entry, like the CLI: the persistent compilation cache (STRONGCOLLAPSE_COMPILE_CACHE or
# ~/.cache/strongcollapse/jax), shared with the CLI processes the tests start, so a computation
# compiled once is loaded, not recompiled, by the next process and the next test run.
enable_compile_cache()


@pytest.fixture(scope="session")
def iso_problem() -> Problem:
    """Σ = I, d = 80, ‖w1‖ = 1, c² = 0.5, Δ Σ-correlated with w1 (ρ = 0.3)."""
    return Problem.build({"kind": "isotropic"}, 80, c2=0.5, corr=0.3)


@pytest.fixture(scope="session")
def power_problem() -> Problem:
    """e_k = k^-1.5, (w1)_k² ∝ k^-1.5, d = 80, c² = 1, ρ = 0."""
    return Problem.build({"kind": "power_law", "beta": 1.5}, 80, source=1.5, c2=1.0)


def rng_vectors(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two generic (non-structured) teacher vectors."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(d) / np.sqrt(d), rng.standard_normal(d) / np.sqrt(d)


def ks_two_sample(a: np.ndarray, b: np.ndarray, alpha: float = 0.001) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and its asymptotic critical value at level alpha.

    Critical value c(α)·sqrt((m + n)/(m n)) with c(α) = sqrt(−ln(α/2)/2) (1.95 at α = 0.001).
    """
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size)
    critical = np.sqrt(-np.log(alpha / 2) / 2) * np.sqrt((a.size + b.size) / (a.size * b.size))
    return float(np.max(gap)), float(critical)
