"""Test configuration: float64 at program entry (DESIGN.md §3) and shared problems."""

from __future__ import annotations

import os

# JAX's CPU LAPACK calls (Cholesky, triangular solves) go through OpenBLAS, whose own threads fight
# XLA's thread pool on a 2-core machine: measured 30× slower per 300×300 Cholesky under load, and
# the covariate-shift tests 36 s against 12 s with one thread. Before numpy loads; a user's own
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
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


# Heavy agreement sweeps and process-level checks, run by `python -m pytest -m slow` (CI runs that
# tier right after the fast one). Each claim keeps a small, sharp test in the fast tier; these are
# the repetitions across many configurations, the subprocess-heavy checks and the long Monte Carlo
# runs (measured at 10-150 CPU-seconds each on 2 cores). A node id matches by prefix, so a
# function name covers all of its parameter cases.
SLOW = {
    # many-configuration sweeps of claims tested more cheaply elsewhere in the fast tier
    "tests/test_analytic_random_projection.py::test_peak_width": "width peak search over a grid",
    "tests/test_analytic_random_projection.py::test_kappa_gradient_by_implicit_differentiation": "second gradient check (Model A's is fast)",
    "tests/test_analytic_random_projection.py::test_isotropic_ridgeless_regimes_match_general_solver": "regime sweep",
    "tests/test_analytic_random_projection.py::test_mixing_can_beat_real_data_at_finite_n_with_a_ridge": "λ search",
    "tests/test_analytic_linear.py::test_tuned_error_tends_to_the_floor_and_never_beats_it": "λ* over a wide n grid",
    "tests/test_analytic_linear.py::test_optimal_lam_beats_every_lambda_on_a_grid": "λ grid sweep",
    "tests/test_scaling.py::test_a_spectrum_defined_outside_the_package_runs_everywhere": "all experiments on a user spectrum",
    "tests/test_scaling.py::test_simulated_slopes_match_the_predicted_exponents": "long Monte Carlo slope fits",
    "tests/test_scaling.py::test_simulated_crossover_where_the_theory_puts_it": "long Monte Carlo",
    "tests/test_scaling.py::test_measured_eigenvalues_from_a_npy_file_through_the_cli": "subprocess run (the .npy path is also a bad-input test)",
    "tests/test_scaling.py::test_tuned_lambda_is_differentiable_by_implicit_differentiation": "check_grads of λ* to second order",
    "tests/test_devices.py::test_one_two_and_four_devices_give_the_same_numbers": "three 4-device subprocesses",
    "tests/test_devices.py::test_memory_estimate_is_within_a_factor_2_of_what_xla_allocates": "XLA buffer assignment of 4 compiled batches",
    "tests/test_readme.py::test_the_spectrum_example_runs_from_outside_the_package": "subprocess, 200 trials",
    "tests/test_runtime.py::test_batched_solves_do_not_deadlock_the_cpu_runtime": "guards the jax<0.10 pin (a subprocess)",
    "tests/test_simulate_random_projection.py::test_direct_and_sufficient_samplers_have_the_same_distribution": "two-sample KS, many draws",
    "tests/test_simulate_random_projection.py::test_a_width_does_not_depend_on_the_rest_of_the_sweep_and_seeds_reproduce": "sweep recomposition",
    "tests/test_simulate_random_projection.py::test_nested_and_independent_projections_agree_in_law": "two laws, many draws",
    "tests/test_simulate_random_projection.py::test_theory_matches_simulation[pow-": "power-law agreement sweep (isotropic cases stay fast)",
    "tests/test_simulate_linear.py::test_same_seed_same_numbers_and_order_chunking_invariance": "many chunkings (one chunking check stays: resume)",
    "tests/test_simulate_linear.py::test_direct_and_sufficient_samplers_have_the_same_distribution[iso-mixed-noisy]": "KS, many draws (other cases stay)",
    "tests/test_wishart.py::test_bartlett_gram_moments_including_singular_case": "moment sweep (chi-square law stays)",
    "tests/test_wishart.py::test_mixture_statistics_joint_moments[12-4-0.5-1.5]": "second joint-moment case",
    # second round, from the measured fast tier (cold compile cache, 2 cores): 15-110 s each
    "tests/test_cli.py::test_quick_experiment_writes_outputs_and_a_rerun_reuses_every_chunk": "two CLI processes of strong-collapse --quick (resume stays: test_simulate_linear, test_house)",
    "tests/test_experiments.py::test_smoke_run_writes_everything_and_redraws_from_the_csv[scaling": "smoke runs; pareto's and the plugin's stay fast",
    "tests/test_experiments.py::test_smoke_run_writes_everything_and_redraws_from_the_csv[collapse-gap]": "smoke run",
    "tests/test_experiments.py::test_smoke_run_writes_everything_and_redraws_from_the_csv[width]": "smoke run",
    "tests/test_scaling.py::test_crossover_where_predicted": "λ* over a wide n grid",
    "tests/test_scaling.py::test_deterministic_equivalent_follows_the_predicted_exponents_and_theory_md_numbers": "d = 4000 spectra",
    "tests/test_simulate_random_projection.py::test_broadcasting_over_n_and_m": "many compiled shapes",
    "tests/test_simulate_random_projection.py::test_theory_matches_simulation[iso-n>d-lam]": "agreement case (other isotropic cases stay)",
    "tests/test_simulate_random_projection.py::test_ridgeless_beyond_both_thresholds_is_least_squares_whatever_the_width": "trial-by-trial OLS comparison",
    "tests/test_simulate_linear.py::test_jit_equals_eager_for_one_trial": "eager evaluation of a whole trial",
    "tests/test_simulate_linear.py::test_theory_matches_simulation[iso-100d]": "agreement case (other cases stay)",
    "tests/test_simulate_linear.py::test_direct_and_sufficient_samplers_have_the_same_distribution[power-noiseless": "KS case (the isotropic case stays)",
    "tests/test_simulate_linear.py::test_float32_must_be_explicit": "a float32 recompilation",
    "tests/test_simulate_random_features.py::test_subset_of_widths_chunks_and_store_do_not_change_the_numbers": "invariance sweep",
    "tests/test_simulate_random_features.py::test_linear_activation_is_model_b_number_for_number": "second simulator compile",
    "tests/test_experiments_random_features.py::test_covariate_shift_plateaus_move_as_predicted": "covariate-shift claim in simulation (theory claims stay fast)",
    "tests/test_wishart.py::test_mixture_statistics_joint_moments[30-0-0.0-0.7]": "third joint-moment case",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.nodeid.startswith(prefix) for prefix in SLOW):
            item.add_marker(pytest.mark.slow)
