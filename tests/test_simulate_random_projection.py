"""Model B Monte Carlo: theory vs simulation across regimes, exactness of the solvers, invariances.

Tolerance rule (DESIGN.md §6, strongcollapse.analysis.compare): |mean − theory| <= 4 s.e. + r|theory| with
r = 2% + 1/|n − min(m, d)|: the interpolation threshold of Model B is n = min(m, d) (THEORY.md §3),
near which the deterministic equivalent's finite-size bias grows like 1/|n − m| (THEORY.md §5:
+7% at n = 150, ψ = 0.9); away from it the bias is 1-3% at these sizes (measured for the power law,
ψ = 1/5, φ = 1/3, λ = 0.01: +3.9% ± 1.2% at d = 100, +2.9% at d = 200, +1.8% at d = 400, i.e.
decaying like 1/d as a finite-size effect should).
"""

from __future__ import annotations

import numpy as np
import pytest

import strongcollapse.simulate as simulate
from analytic import random_projection as theory
from strongcollapse import Problem
from strongcollapse.analysis.compare import agrees, finite_size_allowance

from conftest import ks_two_sample

D = 80
TRIALS = 300
ISO = {"kind": "isotropic"}
POW = {"kind": "power_law", "beta": 1.5}

# (spectrum, source, corr, n, m, lam, p, sigma1, sigma2): ψ = m/n from 0.2 to 5, m < d and m > d,
# n < d (data matrix) and n > d (sufficient statistics), λ ∈ {0, small, large}, every solver space.
CONFIGS = {
    "iso-narrow-ridgeless": (ISO, 0.0, 0.3, 40, 8, 0.0, 0.2, 0.1, 0.3),
    "iso-wide-ridgeless-m>d": (ISO, 0.0, 0.3, 40, 200, 0.0, 0.2, 0.1, 0.3),
    "iso-beyond-threshold": (ISO, 0.0, 0.0, 40, 60, 0.0, 0.5, 0.2, 0.2),
    "iso-near-threshold-small-lam": (ISO, 0.0, 0.0, 40, 44, 1e-3, 0.1, 0.1, 0.1),
    "pow-large-lam": (POW, 1.5, 0.5, 40, 20, 1.0, 0.3, 0.1, 0.1),
    "pow-n>d-narrow-ridgeless": (POW, 1.5, 0.0, 240, 48, 0.0, 0.1, 0.1, 0.2),
    "pow-n>d-m>d-ridgeless": (POW, 1.5, 0.0, 240, 400, 0.0, 0.1, 0.1, 0.2),
    "pow-n>d-m>d-small-lam": (POW, 1.5, 0.0, 160, 200, 1e-2, 0.1, 0.1, 0.2),
    "iso-n>d-lam": (ISO, 0.0, -0.4, 400, 40, 0.1, 0.5, 0.3, 0.1),
    "pow-m=d-small-lam": (POW, 1.5, 0.2, 40, 80, 1e-2, 0.05, 0.1, 0.1),
}


def _problem(spectrum, source, corr) -> Problem:
    return Problem.build(spectrum, D, source=source, c2=1.0, corr=corr)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_theory_matches_simulation(name):
    spectrum, source, corr, n, m, lam, p, s1, s2 = CONFIGS[name]
    problem = _problem(spectrum, source, corr)
    th = float(theory.test_error(*problem.arrays(), n=n, m=m, p=p, lam=lam, sigma1=s1, sigma2=s2).total)
    sim = simulate.random_projection(
        5, *problem.arrays(), n=n, m=m, p=p, lam=lam, sigma1=s1, sigma2=s2, trials=TRIALS
    )
    r = finite_size_allowance(n, min(m, D), 0.02)
    assert agrees(sim.mean, sim.sem, th, r), (
        f"{name}: sim {float(sim.mean):.5g} ± {float(sim.sem):.2g} vs theory {th:.5g} "
        f"(rel {float(sim.mean) / th - 1:+.2%}, allowed 4 s.e. + {float(r):.1%})"
    )


def test_width_sweep_matches_theory_on_both_sides_of_the_threshold(iso_problem):
    """One nested sweep (all widths share S and data), ψ from 0.2 to 5, ridgeless, n < d."""
    n, widths = 40, np.array([8, 20, 30, 50, 60, 120, 200])
    sim = simulate.random_projection(
        1, *iso_problem.arrays(), n=n, m=widths, p=0.3, lam=0.0, sigma1=0.1, sigma2=0.1, trials=TRIALS
    )
    th = np.asarray(
        theory.test_error(*iso_problem.arrays(), n=n, m=widths, p=0.3, lam=0.0, sigma1=0.1, sigma2=0.1).total
    )
    ok = agrees(sim.mean, sim.sem, th, finite_size_allowance(n, np.minimum(widths, D), 0.02))
    assert ok.all(), np.c_[widths, sim.mean, sim.sem, th][~ok]


def test_direct_and_sufficient_samplers_have_the_same_distribution(power_problem):
    kwargs = dict(n=160, m=[20, 80, 200], p=0.2, lam=[[0.0], [0.05]], sigma1=0.1, sigma2=0.3, trials=800)
    direct = simulate.random_projection(2, *power_problem.arrays(), method="direct", **kwargs)
    sufficient = simulate.random_projection(3, *power_problem.arrays(), method="sufficient", **kwargs)
    z = (direct.mean - sufficient.mean) / np.hypot(direct.sem, sufficient.sem)
    assert np.all(np.abs(z) < 4), z
    for a, b in zip(direct.errors.reshape(-1, 800), sufficient.errors.reshape(-1, 800)):
        ks, critical = ks_two_sample(a, b, alpha=0.001)
        assert ks < critical, f"KS statistic {ks:.3f} >= {critical:.3f}"


def test_ridgeless_beyond_both_thresholds_is_least_squares_whatever_the_width(power_problem):
    """d < min(n, m): the minimum-norm v gives the OLS weights for every m (THEORY.md §3 regime 3),
    exactly, trial by trial, on both samplers."""
    for method in ("direct", "sufficient"):
        res = simulate.random_projection(
            4,
            *power_problem.arrays(),
            n=200,
            m=[81, 120, 500],
            p=0.1,
            lam=0.0,
            sigma1=0.2,
            trials=5,
            method=method,
        )
        np.testing.assert_allclose(
            res.errors[1:], np.broadcast_to(res.errors[0], res.errors[1:].shape), rtol=1e-8
        )


def test_nested_and_independent_projections_agree_in_law(iso_problem):
    kwargs = dict(n=40, m=[10, 60, 160], p=0.2, lam=0.01, sigma1=0.1, sigma2=0.2, trials=600)
    nested = simulate.random_projection(6, *iso_problem.arrays(), nested=True, **kwargs)
    independent = simulate.random_projection(6, *iso_problem.arrays(), nested=False, **kwargs)
    z = (nested.mean - independent.mean) / np.hypot(nested.sem, independent.sem)
    assert np.all(np.abs(z) < 4), z
    assert not np.any(nested.errors[1:] == independent.errors[1:])  # other S, same data


def test_a_width_does_not_depend_on_the_rest_of_the_sweep_and_seeds_reproduce(iso_problem):
    args = dict(n=40, p=0.2, lam=0.0, sigma1=0.1, trials=6)
    sweep = simulate.random_projection(8, *iso_problem.arrays(), m=[10, 30, 60, 200], **args)
    again = simulate.random_projection(8, *iso_problem.arrays(), m=[10, 30, 60, 200], **args)
    np.testing.assert_array_equal(sweep.errors, again.errors)
    for i, m in enumerate([10, 30, 60, 200]):
        alone = simulate.random_projection(8, *iso_problem.arrays(), m=m, **args)
        # Same S rows and data; only the batch shape differs (rounding, see test_simulate_linear).
        np.testing.assert_allclose(alone.errors, sweep.errors[i], rtol=1e-9)
    chunked = simulate.random_projection(8, *iso_problem.arrays(), m=[10, 30, 60, 200], chunk_size=4, **args)
    np.testing.assert_allclose(chunked.errors, sweep.errors, rtol=1e-9)


def test_broadcasting_over_n_and_m(iso_problem):
    res = simulate.random_projection(
        0, *iso_problem.arrays(), n=np.array([30, 100])[:, None], m=[10, 50, 90], p=0.1, lam=0.01, trials=3
    )
    assert res.mean.shape == (2, 3) and res.errors.shape == (2, 3, 3)
    assert list(res.method[:, 0]) == ["direct", "sufficient"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(m=0), "m must be an integer >= 1"),
        (dict(m=2.5), "m must be an integer >= 1, got 2.5"),
        (dict(p=1.2), r"p must be in \[0, 1\]"),
        (dict(lam=-1.0), "lam must be >= 0"),
        (dict(n=[10, 20], m=[5, 6, 7]), "parameters must broadcast"),
        (dict(method="sufficient", n=10), "method='sufficient' needs n >= d"),
    ],
)
def test_bad_input(iso_problem, overrides, match):
    args = {**dict(n=40, m=20, p=0.1, lam=0.0, trials=2), **overrides}
    with pytest.raises(ValueError, match=match):
        simulate.random_projection(0, *iso_problem.arrays(), **args)
