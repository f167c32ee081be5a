"""Benchmark of a Model B width sweep against a plain NumPy loop doing the same fits.

Workload (issue: "40 widths × 100 trials at n = 500, d = 1000"): isotropic Σ, p = 0.1, c² = 1,
σ1 = σ2 = 0.1, λ = 10⁻³ (a small ridge keeps the NumPy loop's systems non-singular at every width),
40 widths ψ = m/n log-spaced over [0.1, 5] (m = 50 … 2500), 100 trials.

The NumPy loop is what a researcher would write: per trial draw X, y and S; per width form
F = X S_mᵀ and solve ridge in the smaller of the primal (m×m) and dual (n×n) systems. It is timed
on a few trials and scaled linearly to the full trial count (its cost is exactly linear in trials;
running all 100 would take minutes). The package runs the whole workload.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

import strongcollapse
from strongcollapse.vocabulary.problem import Problem, synthetic_count
from strongcollapse.simulate import random_projection

__all__ = ["WIDTH_WORKLOAD", "numpy_width_loop", "run_width_benchmark"]

WIDTH_WORKLOAD: dict[str, Any] = {
    "d": 1000,
    "n": 500,
    "widths": 40,
    "psi": (0.1, 5.0),
    "p": 0.1,
    "lam": 1e-3,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "trials": 100,
    "numpy_trials": 3,
    "quick_numpy_trials": 1,
}


def _widths() -> np.ndarray:
    w = WIDTH_WORKLOAD
    return np.unique(np.rint(np.geomspace(*w["psi"], w["widths"]) * w["n"])).astype(np.int64)


def numpy_width_loop(
    rng: np.random.Generator, problem: Problem, widths: np.ndarray, trials: int
) -> np.ndarray:
    """(trials, widths) exact risks from plain NumPy fits, one per (trial, width)."""
    w = WIDTH_WORKLOAD
    eigs, w1, delta = problem.arrays()
    n, d = w["n"], eigs.shape[0]
    count = int(synthetic_count(n, w["p"]))
    noise = np.where(np.arange(n) < count, w["sigma2"], w["sigma1"])
    ridge = n * w["lam"]
    out = np.empty((trials, widths.size))
    for t in range(trials):
        x = rng.standard_normal((n, d)) * np.sqrt(eigs)
        y = x @ w1
        y[:count] += x[:count] @ delta
        y += rng.standard_normal(n) * noise
        s = rng.standard_normal((int(widths.max()), d)) / np.sqrt(d)
        for j, m in enumerate(widths):
            f = x @ s[:m].T
            if m <= n:
                v = np.linalg.solve(f.T @ f + ridge * np.eye(m), f.T @ y)
            else:
                v = f.T @ np.linalg.solve(f @ f.T + ridge * np.eye(n), y)
            out[t, j] = np.sum(eigs * (s[:m].T @ v - w1) ** 2)
    return out


def run_width_benchmark(
    quick: bool = False, seed: int = 0, out: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Times the package's width sweep and the NumPy loop (scaled per trial) on the workload."""
    strongcollapse.enable_x64()
    w = WIDTH_WORKLOAD
    problem = Problem.build({"kind": "isotropic"}, w["d"], c2=1.0)
    widths = _widths()
    kwargs = dict(n=w["n"], m=widths, p=w["p"], lam=w["lam"], sigma1=w["sigma1"], sigma2=w["sigma2"])
    start = time.perf_counter()
    result = random_projection(seed, *problem.arrays(), trials=w["trials"], **kwargs)
    first_s = time.perf_counter() - start  # includes compilation
    start = time.perf_counter()
    random_projection(seed, *problem.arrays(), trials=w["trials"], **kwargs)
    package_s = time.perf_counter() - start
    numpy_trials = w["quick_numpy_trials"] if quick else w["numpy_trials"]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    reference = numpy_width_loop(rng, problem, widths, numpy_trials)
    numpy_per_trial = (time.perf_counter() - start) / numpy_trials
    numpy_s = numpy_per_trial * w["trials"]
    fits = widths.size * w["trials"]
    report = {
        "workload": {**w, "widths_used": widths.tolist(), "quick": quick},
        "package_first_s": first_s,
        "package_s": package_s,
        "numpy_s_scaled": numpy_s,
        "numpy_trials_timed": numpy_trials,
        "ratio": numpy_s / package_s,
        "fits": fits,
        "package_fits_per_s": fits / package_s,
        "numpy_fits_per_s": fits / numpy_s,
        # A sanity check, not a test: the loop's few trials against the package's mean, per width.
        "max_abs_z_numpy_vs_package": float(
            np.max(
                np.abs(reference.mean(0) - result.mean)
                / np.maximum(result.sem * np.sqrt(w["trials"]), 1e-300)
                * np.sqrt(numpy_trials)
            )
        ),
    }
    out(
        f"Model B width sweep, n = {w['n']}, d = {w['d']}, {widths.size} widths (m = {widths.min()}…{widths.max()}), "
        f"{w['trials']} trials: package {package_s:.2f} s (first call {first_s:.2f} s with compilation), "
        f"numpy loop {numpy_s:.1f} s (timed on {numpy_trials} trial(s), scaled), ratio {numpy_s / package_s:.1f}; "
        f"fits/s package {fits / package_s:.0f}, numpy {fits / numpy_s:.0f}"
    )
    return report
