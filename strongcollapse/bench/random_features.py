"""Benchmark of a random-feature width sweep against a plain NumPy loop doing the same fits.

Workload: ReLU features, isotropic Σ, d = 500, n = 500, p = 0.1, c² = 1, σ1 = σ2 = 0.5, ridgeless
(λ = 0: with μ* > 0 every system is non-singular, THEORY_RF §10), 30 widths log-spaced over
m = 50 … 2000 (both sides of the threshold m = n), 100 trials (``quick``: 10), exact population
risk E = aᵀKa − 2aᵀb + ‖w1‖²_Σ with the arc-cosine kernel (THEORY_RF §9) on both sides.

The NumPy loop is what a competent researcher would write: per trial draw X, y and W; per width
form Φ_m = relu(X S_mᵀ), solve ridge by Cholesky (SciPy's cho_factor/cho_solve) in the smaller of
the primal (m×m) and dual (n×n) systems, form C_m = S_mΣS_mᵀ as u uᵀ (NumPy hands that to BLAS
syrk, half a GEMM) and K_m entrywise, and evaluate the risk. Every operation is vectorised; only
the (trial, width) loop is Python. It is timed on a few trials and scaled linearly to the full
trial count (its cost is exactly linear in trials); the report says so.

The package's advantages are algorithmic: all widths share one Φ, one block-triangular pass over
C and K (symmetric halves only, never the whole m×m matrix), one Cholesky for every primal width;
and vmapped batches of trials. What remains and dominates is O(m_max² d) for C, O(n m_max d) for
Φ and O(n² m_max) + one n×n Cholesky per dual width.

Both sides call LAPACK through OpenBLAS (NumPy/SciPy; jaxlib's Cholesky and triangular solves).
On an oversubscribed machine OpenBLAS's threads spin and a 500×500 Cholesky can take 0.5 s
instead of 10 ms; ``OPENBLAS_NUM_THREADS=1`` avoids that (set it before Python starts). The
report records the setting and the load average.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import scipy.linalg

import strongcollapse
from strongcollapse.simulate import random_features
from strongcollapse.vocabulary.problem import Problem, synthetic_count

__all__ = ["RF_WORKLOAD", "numpy_rf_loop", "relu_kernel", "run_rf_benchmark"]

RF_WORKLOAD: dict[str, Any] = {
    "d": 500,
    "n": 500,
    "widths": 30,
    "m_range": (50, 2000),
    "p": 0.1,
    "lam": 0.0,
    "sigma1": 0.5,
    "sigma2": 0.5,
    "activation": "relu",
    "trials": 100,
    "quick_trials": 10,
    "numpy_trials": 3,
    "quick_numpy_trials": 1,
}


def _widths() -> np.ndarray:
    w = RF_WORKLOAD
    return np.unique(np.rint(np.geomspace(*w["m_range"], w["widths"]))).astype(np.int64)


def relu_kernel(c: np.ndarray) -> np.ndarray:
    """Arc-cosine kernel K = [√(r_i²r_j² − C²) + (π − arccos ρ)C]/(2π), K_ii = r_i²/2 (THEORY_RF §9)."""
    r2 = np.diag(c).copy()
    outer = np.outer(r2, r2)
    rho = np.clip(c / np.sqrt(outer), -1.0, 1.0)
    k = (np.sqrt(np.maximum(outer - c * c, 0.0)) + (np.pi - np.arccos(rho)) * c) / (2.0 * np.pi)
    np.fill_diagonal(k, 0.5 * r2)
    return k


def numpy_rf_loop(rng: np.random.Generator, problem: Problem, widths: np.ndarray, trials: int) -> np.ndarray:
    """(trials, widths) exact ReLU random-feature risks from plain NumPy fits, one per (trial, width)."""
    w = RF_WORKLOAD
    eigs, w1, delta = problem.arrays()
    n, d = w["n"], eigs.shape[0]
    count = int(synthetic_count(n, w["p"]))
    noise = np.where(np.arange(n) < count, w["sigma2"], w["sigma1"])
    ridge = n * w["lam"]
    signal = float(np.sum(eigs * w1**2))
    root = np.sqrt(eigs)
    out = np.empty((trials, widths.size))
    for t in range(trials):
        x = rng.standard_normal((n, d)) * root
        y = x @ w1
        y[:count] += x[:count] @ delta
        y += rng.standard_normal(n) * noise
        s_all = rng.standard_normal((int(widths.max()), d)) / np.sqrt(d)
        for j, m in enumerate(widths):
            s = s_all[:m]
            phi = np.maximum(x @ s.T, 0.0)
            if m <= n:
                a = scipy.linalg.cho_solve(scipy.linalg.cho_factor(phi.T @ phi + ridge * np.eye(m)), phi.T @ y)
            else:
                a = phi.T @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(phi @ phi.T + ridge * np.eye(n)), y)
            u = s * root
            k = relu_kernel(u @ u.T)
            b = 0.5 * (s @ (eigs * w1))
            out[t, j] = a @ k @ a - 2.0 * a @ b + signal
    return out


def run_rf_benchmark(quick: bool = False, seed: int = 0, out: Callable[[str], Any] = print) -> dict[str, Any]:
    """Times the package's random-feature width sweep and the NumPy loop (scaled per trial)."""
    strongcollapse.enable_x64()
    w = RF_WORKLOAD
    problem = Problem.build({"kind": "isotropic"}, w["d"], c2=1.0)
    widths = _widths()
    trials = w["quick_trials"] if quick else w["trials"]
    kwargs = dict(
        n=w["n"], m=widths, p=w["p"], lam=w["lam"], sigma1=w["sigma1"], sigma2=w["sigma2"],
        activation=w["activation"], trials=trials,
    )  # fmt: skip
    start = time.perf_counter()
    result = random_features(seed, *problem.arrays(), **kwargs)
    first_s = time.perf_counter() - start  # includes compilation
    start = time.perf_counter()
    random_features(seed, *problem.arrays(), **kwargs)
    package_s = time.perf_counter() - start
    numpy_trials = w["quick_numpy_trials"] if quick else w["numpy_trials"]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    reference = numpy_rf_loop(rng, problem, widths, numpy_trials)
    numpy_per_trial = (time.perf_counter() - start) / numpy_trials
    numpy_s = numpy_per_trial * trials
    fits = widths.size * trials
    # A sanity check, not a test: the loop's few trials against the package's mean, per width,
    # away from the heavy-tailed threshold m ≈ n.
    away = np.abs(widths / w["n"] - 1.0) > 0.3
    spread = np.maximum(result.sem * np.sqrt(trials), 1e-300)
    z = np.abs(reference.mean(0) - result.mean) / spread * np.sqrt(numpy_trials)
    report = {
        "workload": {**w, "widths_used": widths.tolist(), "quick": quick, "trials_run": trials},
        "package_first_s": first_s,
        "package_s": package_s,
        "numpy_s_scaled": numpy_s,
        "numpy_trials_timed": numpy_trials,
        "ratio": numpy_s / package_s,
        "fits": fits,
        "package_fits_per_s": fits / package_s,
        "numpy_fits_per_s": fits / numpy_s,
        "plan": [p.describe() for p in result.plans],
        "max_abs_z_numpy_vs_package": float(np.max(z[away])),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    out(
        f"random-feature width sweep (ReLU), n = {w['n']}, d = {w['d']}, {widths.size} widths "
        f"(m = {widths.min()}…{widths.max()}), {trials} trials: package {package_s:.2f} s (first call "
        f"{first_s:.2f} s with compilation), numpy loop {numpy_s:.1f} s (timed on {numpy_trials} trial(s), "
        f"scaled), ratio {numpy_s / package_s:.1f}; fits/s package {fits / package_s:.1f}, numpy "
        f"{fits / numpy_s:.1f} (OPENBLAS_NUM_THREADS={report['openblas_num_threads']}, load average "
        f"{report['load_average'][0]:.1f} on {report['cpus']} CPUs)"
    )
    return report


if __name__ == "__main__":  # python -m strongcollapse.bench.random_features [--quick]
    import sys

    run_rf_benchmark(quick="--quick" in sys.argv[1:])
