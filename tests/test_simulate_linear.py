"""Model A Monte Carlo: theory vs simulation, the plateau claim, sampler equivalence, invariances.

Tolerance rule (DESIGN.md §6, strongcollapse.analysis.compare): |mean − theory| <= 4 s.e. + r|theory| with
r = 2% + 1/|n − d|: the deterministic equivalent's finite-size bias is about 1% at d ~ 100 away
from thresholds, 1-3% for a power law under strong regularisation, and grows like 1/|n − d| near
the interpolation threshold (THEORY.md §5; for OLS exactly d/(n − d − 1) against d/(n − d)).
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
import pytest

import strongcollapse.simulate as simulate
from analytic import linear as theory
from strongcollapse import Problem
from strongcollapse.analysis.compare import agrees, finite_size_allowance

from conftest import ks_two_sample

D = 80
TRIALS = 400
ISO = {"kind": "isotropic"}
POW = {"kind": "power_law", "beta": 1.5}

# (spectrum, source, corr, n, lam, p, sigma1, sigma2): φ < 1 and > 1, λ in {0, small, large, tuned},
# isotropic and power law, p from 0.001 to 0.5, σ1 ≠ σ2, Δ correlated with w1.
CONFIGS = {
    "iso-minnorm": (ISO, 0.0, 0.5, 40, 0.0, 0.1, 0.2, 0.5),
    "iso-ols": (ISO, 0.0, -0.3, 240, 0.0, 0.5, 0.3, 0.1),
    "iso-small-lam-p0.001": (ISO, 0.0, 0.0, 2000, 1e-3, 0.001, 0.1, 0.1),
    "iso-large-lam": (ISO, 0.0, 0.2, 40, 1.0, 0.3, 0.1, 0.4),
    "iso-correlated": (ISO, 0.0, 0.9, 120, 0.05, 0.5, 0.2, 0.2),
    "iso-100d": (ISO, 0.0, 0.0, 8000, 0.0, 0.1, 0.1, 0.1),
    "pow-minnorm": (POW, 1.5, 0.4, 30, 0.0, 0.05, 0.1, 0.3),
    "pow-ols": (POW, 1.5, 0.0, 400, 0.0, 0.2, 0.1, 0.1),
    "pow-small-lam-underdetermined": (POW, 1.5, 0.0, 50, 1e-2, 0.1, 0.1, 0.1),
    "pow-large-lam": (POW, 1.5, 0.6, 800, 0.5, 0.5, 0.2, 0.05),
    "pow-beta2": ({"kind": "power_law", "beta": 2.0}, 1.0, 0.3, 160, 1e-3, 0.01, 0.05, 0.3),
    "pow-tuned-100d": (POW, 1.5, 0.0, 8000, "tuned", 0.1, 0.1, 0.1),
}


def _problem(spectrum, source, corr, c2=1.0) -> Problem:
    return Problem.build(spectrum, D, source=source, c2=c2, corr=corr)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_theory_matches_simulation(name):
    spectrum, source, corr, n, lam, p, s1, s2 = CONFIGS[name]
    problem = _problem(spectrum, source, corr)
    if lam == "tuned":
        lam = float(theory.optimal_lam(*problem.arrays(), n=n, p=p, sigma1=s1, sigma2=s2))
    th = float(theory.test_error(*problem.arrays(), n=n, p=p, lam=lam, sigma1=s1, sigma2=s2).total)
    sim = simulate.linear(7, *problem.arrays(), n=n, p=p, lam=lam, sigma1=s1, sigma2=s2, trials=TRIALS)
    r = finite_size_allowance(n, D, 0.02)
    assert agrees(sim.mean, sim.sem, th, r), (
        f"{name}: sim {float(sim.mean):.5g} ± {float(sim.sem):.2g} vs theory {th:.5g} "
        f"(rel {float(sim.mean) / th - 1:+.2%}, allowed 4 s.e. + {float(r):.1%})"
    )


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("reg", ["ridgeless", "tuned"])
def test_strong_collapse_plateau_is_reached_and_error_stops_improving(power_problem, p, reg):
    """At n = 100·d and 10⁴·d the error sits on the predicted floor; p = 0 keeps improving."""
    c2 = power_problem.c2
    floor = p**2 * c2 if reg == "ridgeless" else float(theory.plateau(*power_problem.arrays(), p=p).floor)
    ns = np.array([100 * D, 10**4 * D])
    lam = (
        0.0
        if reg == "ridgeless"
        else np.asarray(theory.optimal_lam(*power_problem.arrays(), n=ns, p=p, sigma1=0.1, sigma2=0.1))
    )
    sim = simulate.linear(
        3, *power_problem.arrays(), n=ns, p=p, lam=lam, sigma1=0.1, sigma2=0.1, trials=TRIALS
    )
    # The floor is the n → ∞ limit; at n = 100·d the theory puts the error within a few % above it
    # (variance σ̃²d/(n − d) for p = 0.1: +10%), so n = 100·d is checked against the floor with that
    # known remainder only for p = 0.5, and n = 10⁴·d for both.
    remainder = 0.03 if p == 0.5 else 0.12
    assert agrees(sim.mean[0], sim.sem[0], floor, remainder + 0.02)
    assert agrees(sim.mean[1], sim.sem[1], floor, 0.02)
    assert sim.mean[0] / sim.mean[1] < 1 + remainder + 4 * sim.sem[0] / sim.mean[0]
    clean = simulate.linear(3, *power_problem.arrays(), n=ns, p=0.0, lam=0.0, sigma1=0.1, trials=TRIALS)
    assert clean.mean[0] / clean.mean[1] > 50  # σ²d/(n − d): 100× less error at 100× the data


@pytest.mark.parametrize("case", ["iso-mixed-noisy", "power-noiseless-all-real-or-all-synthetic"])
def test_direct_and_sufficient_samplers_have_the_same_distribution(iso_problem, power_problem, case):
    """Same mean and same law (two-sample Kolmogorov–Smirnov at level 0.001 per cell) for n >= d.

    The second case hits the sufficient sampler's degenerate label Gram K (v ≡ 0, or v ∥ c) and
    the Householder rotation of a Δ that is not along e1.
    """
    if case == "iso-mixed-noisy":
        problem, kwargs = (
            iso_problem,
            dict(n=[80 + 40, 800], p=0.3, lam=[[0.0], [0.05]], sigma1=0.2, sigma2=0.6),
        )
    else:
        problem, kwargs = (
            power_problem,
            dict(n=[100, 400], p=[[0.0], [1.0]], lam=0.01, sigma1=0.0, sigma2=0.0),
        )
    trials = 1500
    direct = simulate.linear(11, *problem.arrays(), method="direct", trials=trials, **kwargs)
    sufficient = simulate.linear(12, *problem.arrays(), method="sufficient", trials=trials, **kwargs)
    z = (direct.mean - sufficient.mean) / np.hypot(direct.sem, sufficient.sem)
    assert np.all(np.abs(z) < 4), z
    for a, b in zip(direct.errors.reshape(-1, trials), sufficient.errors.reshape(-1, trials)):
        ks, critical = ks_two_sample(a, b, alpha=0.001)
        assert ks < critical, f"KS statistic {ks:.3f} >= {critical:.3f}"


def test_same_seed_same_numbers_and_order_chunking_invariance(iso_problem):
    """Same seed: bit-identical. Other order, chunking or sweep: the same numbers to 1e-12.

    Not bit-identical across batch sizes: XLA's CPU kernels may round a batched product
    differently for a different batch shape (seen: 1 ulp in one of 36 fits). The random draws are
    identical (keys depend only on cell and trial), so anything beyond rounding would fail here.
    """
    ns = [30, 120, 500]
    base = simulate.linear(1, *iso_problem.arrays(), n=ns, p=0.2, lam=0.01, trials=12)
    again = simulate.linear(1, *iso_problem.arrays(), n=ns, p=0.2, lam=0.01, trials=12)
    np.testing.assert_array_equal(base.errors, again.errors)
    same = partial(np.testing.assert_allclose, rtol=1e-12, atol=0)
    reversed_ = simulate.linear(1, *iso_problem.arrays(), n=ns[::-1], p=0.2, lam=0.01, trials=12)
    same(base.errors, reversed_.errors[::-1])
    chunked = simulate.linear(1, *iso_problem.arrays(), n=ns, p=0.2, lam=0.01, trials=12, chunk_size=5)
    same(base.errors, chunked.errors)
    single = simulate.linear(1, *iso_problem.arrays(), n=120, p=0.2, lam=0.01, trials=12)
    same(base.errors[1], single.errors)  # a cell alone = the cell in a sweep
    other = simulate.linear(2, *iso_problem.arrays(), n=ns, p=0.2, lam=0.01, trials=12)
    assert not np.any(base.errors == other.errors)


def test_jit_equals_eager_for_one_trial(iso_problem):
    import strongcollapse.simulate.model_a as model_a
    from strongcollapse.simulate.samplers import Frame

    task = {
        "cell": np.uint32(9),
        "trial": np.uint32(2),
        "n": 300.0,
        "count": 30.0,
        "lam": 0.01,
        "sigma1": 0.1,
        "sigma2": 0.2,
    }
    arrays = tuple(jax.numpy.asarray(a) for a in iso_problem.arrays())
    key = jax.random.key(0)
    frame = Frame.of(arrays[0], arrays[2])
    trial = partial(model_a._sufficient_trial, frame=frame, penalty=frame.penalty())
    eager = trial(key, *arrays, task)
    jitted = jax.jit(trial)(key, *arrays, task)
    np.testing.assert_allclose(eager, jitted, rtol=1e-12)


def test_interrupted_run_resumes_without_recomputing(tmp_path, iso_problem):
    from strongcollapse.orchestration.results import ChunkStore

    class Interrupting(ChunkStore):
        def put(self, key, values):
            if self.writes == 2:
                raise KeyboardInterrupt
            super().put(key, values)

    kwargs = dict(n=[100, 200, 400], p=0.1, lam=0.0, trials=20, chunk_size=10)
    reference = simulate.linear(4, *iso_problem.arrays(), **kwargs)
    with pytest.raises(KeyboardInterrupt):
        simulate.linear(4, *iso_problem.arrays(), store=Interrupting(tmp_path), **kwargs)
    store = ChunkStore(tmp_path)
    resumed = simulate.linear(4, *iso_problem.arrays(), store=store, **kwargs)
    assert store.hits == 2 and store.writes == 4
    np.testing.assert_array_equal(resumed.errors, reference.errors)


def test_float32_must_be_explicit(iso_problem):
    with jax.enable_x64(False):
        with pytest.raises(RuntimeError, match="float64"):
            simulate.linear(0, *iso_problem.arrays(), n=100, p=0.1, lam=0.1, trials=2)
        with pytest.raises(RuntimeError, match="float64"):
            theory.test_error(*iso_problem.arrays(), n=100, p=0.1, lam=0.1)
    res = simulate.linear(0, *iso_problem.arrays(), n=200, p=0.1, lam=0.1, trials=4, dtype="float32")
    assert res.dtype == "float32" and np.all(np.isfinite(res.mean))
