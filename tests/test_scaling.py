"""Scaling laws (THEORY.md §4): predicted exponents, local slopes, crossover, tuned λ gradients,
measured slopes, and a spectrum defined outside the package flowing through everything.

Windows where the d = ∞ asymptotics apply (stated per test) are chosen so that the effective
dimension df1(κ) stays far below d and above a few: the exponents are limits, and both the
deterministic equivalent (finite d) and the simulation are compared with them only there.
"""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import strongcollapse.simulate as simulate
from analytic import linear, scaling
from analytic.spectral import df1
from strongcollapse import Problem
from strongcollapse.orchestration.cli import main
from strongcollapse.analysis.slopes import fit_slope

POW = {"kind": "power_law", "beta": 1.5}


def _problem(d: int, **kw) -> Problem:
    return Problem.build(POW, d, source=1.5, c2=1.0, **kw)


def test_exponent_table_including_saturation():
    e = scaling.exponents(1.5, 1.5)
    assert (e.ridgeless_clean, e.width) == (2.0, 1.5) and e.tuned_clean == pytest.approx(2 / 3)
    s = scaling.exponents(1.5, 3.0)  # δ >= β + 1: saturation
    assert s.ridgeless_clean == 3.0 and s.tuned_clean == pytest.approx(3 / 4) and s.width == 1.5
    assert scaling.exponents(2.0, 0.5).width == pytest.approx(1.5)  # min(β, β+δ−1)
    assert scaling.exponents(1.5, 1.5, shift_source=0.5).tuned_synthetic_pre == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="beta must be in"):
        scaling.exponents(0.8, 1.0)


def test_continuum_constant_of_df1():
    """df1(κ) ≈ C_β κ^(-1/β) when 1 << df1 << d (d = 10⁶, κ = 10⁻⁴: df1 ≈ 1100), within 0.2% once the
    spectrum's truncation at d is accounted for: Σ_(k>d) 1/(1 + κk^β) ≈ d^(1−β)/(κ(β−1)) (= 20 here)."""
    d, beta, kappa = 10**6, 1.5, 1e-4
    eigs = jnp.arange(1, d + 1, dtype=jnp.float64) ** -beta
    continuum = scaling.continuum_constant(beta) * kappa ** (-1 / beta) - d ** (1 - beta) / (
        kappa * (beta - 1)
    )
    assert float(df1(eigs, kappa)) == pytest.approx(continuum, rel=2e-3)


def test_local_slope_is_the_derivative_of_the_deterministic_equivalent():
    """Autodiff slope against a centred finite difference of log E in log n (independent check)."""
    problem = _problem(400)
    n = np.array([30.0, 150.0, 900.0, 5e4])
    for kwargs in (dict(lam=0.0), dict(lam=1e-3), dict(tuned=True, sigma1=0.2, sigma2=0.2)):
        slope, lam = scaling.local_slope(*problem.arrays(), n=n, p=0.05, **kwargs)
        h = 1e-4
        lam_kw = dict(lam=np.asarray(lam), sigma1=kwargs.get("sigma1", 0.0), sigma2=kwargs.get("sigma2", 0.0))
        up = linear.test_error(*problem.arrays(), n=n * np.exp(h), p=0.05, exact_count=False, **lam_kw).total
        down = linear.test_error(
            *problem.arrays(), n=n * np.exp(-h), p=0.05, exact_count=False, **lam_kw
        ).total
        np.testing.assert_allclose(slope, (np.log(up) - np.log(down)) / (2 * h), rtol=1e-5, atol=1e-8)


def test_deterministic_equivalent_follows_the_predicted_exponents_and_theory_md_numbers():
    """THEORY.md §4 (β = δ = 1.5, d = 4000): clean noiseless ridgeless −2.00..−2.06 for n in [30, 150];
    clean noisy tuned −0.66..−0.67 (σ = 1, d = 300, n in [10³, 10⁵]); p = 0.001 noiseless tuned
    −1.74 → −0.87 → −0.69 at n = 10, ~200, 4000 (±0.05)."""
    big = _problem(4000)
    ridgeless, _ = scaling.local_slope(*big.arrays(), n=np.array([30.0, 60.0, 150.0]), p=0.0)
    assert np.all((np.asarray(ridgeless) < -1.9) & (np.asarray(ridgeless) > -2.1))
    tuned, _ = scaling.local_slope(
        *_problem(300).arrays(), n=np.geomspace(1e3, 1e5, 5), p=0.0, tuned=True, sigma1=1.0, sigma2=1.0
    )
    np.testing.assert_allclose(tuned, -2 / 3, atol=0.015)
    path, _ = scaling.local_slope(*big.arrays(), n=np.array([10.0, 200.0, 4000.0]), p=0.001, tuned=True)
    np.testing.assert_allclose(path, [-1.74, -0.87, -0.69], atol=0.05)


def test_crossover_where_predicted():
    """The deterministic equivalent's crossover (E = 2P*, where the local slope is half the
    pre-plateau exponent) sits at 1.9-2.1 n* (d = 500-4000, p = 0.01 and 0.1, noiseless and σ = 1;
    two of those cases here).
    The formula n* = σ̃² P*^(-(β+δ)/(β+δ−1)) drops the constant K of the noisy rate,
    E − P* ≈ K (σ̃²/n)^a with K ≈ 1.6, which moves it by K^(1/a) ≈ 2: the issue's factor 2 holds
    marginally, so the test allows 2.2."""
    for d, p, sigma in [(500, 0.01, 0.0), (1000, 0.1, 1.0)]:
        problem = _problem(d)
        n_star = float(
            scaling.crossover(*problem.arrays(), p=p, beta=1.5, source=1.5, sigma1=sigma, sigma2=sigma)
        )
        floor = float(linear.plateau(*problem.arrays(), p=p).floor)
        ns = np.geomspace(n_star / 20, n_star * 20, 120)
        _, err = linear.optimal_lam(
            *problem.arrays(), n=ns, p=p, sigma1=sigma, sigma2=sigma, exact_count=False, return_error=True
        )
        crossing = ns[np.argmax(np.asarray(err) < 2 * floor)]
        assert n_star / 2.2 < crossing < 2.2 * n_star, (d, p, sigma, crossing / n_star)


def test_tuned_lambda_is_differentiable_by_implicit_differentiation():
    problem = _problem(60)
    eigs, w1, delta = (jnp.asarray(a) for a in problem.arrays())

    def lam_of(n, p, sigma):
        return linear.tuned_lam(eigs, w1, delta, n, p, sigma, sigma)

    args = (jnp.array(300.0), jnp.array(0.2), jnp.array(0.3))
    assert float(lam_of(*args)) > 0  # an interior optimum
    check_grads(lam_of, args, order=1, modes=["fwd", "rev"], eps=1e-4, atol=1e-6, rtol=1e-4)
    # Ridgeless optimal (boundary minimum, λ* = 0): derivative 0.
    clean = jnp.array(0.0)
    assert float(lam_of(jnp.array(20.0), clean, clean)) == 0.0
    assert float(jax.grad(lam_of)(jnp.array(20.0), clean, clean)) == 0.0


def test_width_slope_tends_to_min_beta():
    """n = ∞ width curve A(m): slope −min(β, β+δ−1) = −1.5 for 1 << m << d (d = 10⁵, m in [300, 1000];
    the approach is slow from both sides: −1.44 at m = 100 (finite m), −1.59 at m = 1000 for d = 2·10⁴)."""
    problem = _problem(100000)
    slope = scaling.width_slope(*problem.arrays(), m=np.array([300.0, 1000.0]), p=0.0)
    np.testing.assert_allclose(slope, -1.5, atol=0.05)
    # With synthetic data the curve flattens towards p²c² as m → d.
    contaminated = scaling.width_slope(*_problem(400).arrays(), m=np.array([100.0, 300.0]), p=0.1)
    assert np.all(
        np.asarray(contaminated)
        > np.asarray(scaling.width_slope(*_problem(400).arrays(), m=np.array([100.0, 300.0])))
    )


def test_simulated_slopes_match_the_predicted_exponents():
    """Measured (not predicted) exponents, ±0.05 beyond the fit's own 95% interval:
    clean noiseless ridgeless, d = 2000, n in {25, 50, 100}: −(β+δ−1) = −2;
    clean noisy tuned (σ = 1), d = 300, n in {10³, 10⁴, 10⁵}: −(β+δ−1)/(β+δ) = −2/3."""
    ridge = _problem(2000)
    ns = np.array([25, 50, 100])
    sim = simulate.linear(1, *ridge.arrays(), n=ns, p=0.0, lam=0.0, trials=200)
    assert fit_slope(ns, sim.mean, sim.sem).within(-2.0, 0.05)
    tuned = _problem(300)
    ns = np.array([1000, 10000, 100000])
    lam = np.asarray(linear.optimal_lam(*tuned.arrays(), n=ns, p=0.0, sigma1=1.0, sigma2=1.0))
    sim = simulate.linear(2, *tuned.arrays(), n=ns, p=0.0, lam=lam, sigma1=1.0, sigma2=1.0, trials=200)
    fit = fit_slope(ns, sim.mean, sim.sem)
    assert fit.within(-2 / 3, 0.05), fit


def test_simulated_crossover_where_the_theory_puts_it():
    """p = 0.01, noiseless, tuned λ*, d = 300: the simulated curve crosses 2P* within 30% of the
    deterministic equivalent's crossing and within 2.2 n* (see test_crossover_where_predicted)."""
    problem = _problem(300)
    ns = np.array([2000, 5000, 10000, 20000, 50000, 100000])
    lam = np.asarray(linear.optimal_lam(*problem.arrays(), n=ns, p=0.01))
    sim = simulate.linear(3, *problem.arrays(), n=ns, p=0.01, lam=lam, trials=100)
    floor = float(linear.plateau(*problem.arrays(), p=0.01).floor)
    theory = np.asarray(linear.test_error(*problem.arrays(), n=ns, p=0.01, lam=lam).total)

    def crossing(values: np.ndarray) -> float:
        j = int(np.argmax(values < 2 * floor))
        assert 0 < j, values / floor
        t = np.log(values[j - 1] / (2 * floor)) / np.log(values[j - 1] / values[j])
        return float(np.exp(np.log(ns[j - 1]) + t * np.log(ns[j] / ns[j - 1])))

    n_star = float(scaling.crossover(*problem.arrays(), p=0.01, beta=1.5, source=1.5))
    measured, predicted = crossing(sim.mean), crossing(theory)
    assert abs(measured / predicted - 1) < 0.3 and n_star / 2.2 < measured < 2.2 * n_star, (
        measured,
        predicted,
        n_star,
    )


def test_a_spectrum_defined_outside_the_package_runs_everywhere(tmp_path, capsys):
    """User code registers e_k = exp(−k/10); theory, simulation, optimal λ and the `scaling`
    experiment (through `--import` and `--set`) all take it, with no change to the library."""
    plugin = tmp_path / "my_spectra.py"
    plugin.write_text(
        textwrap.dedent("""
        import dataclasses
        import numpy as np
        from strongcollapse import Spectrum, register_spectrum

        @register_spectrum("test_exponential")
        @dataclasses.dataclass(frozen=True)
        class Exponential(Spectrum):
            scale: float = 10.0

            def _eigenvalues(self, d):
                return np.exp(-np.arange(d) / self.scale)
    """)
    )
    spectrum = json.dumps({"kind": "test_exponential", "scale": 10.0})
    out = tmp_path / "run"
    code = main(
        [
            "--import",
            str(plugin),
            "run",
            "scaling",
            "--quick",
            "--set",
            f"spectrum={spectrum}",
            "--set",
            "trials=16",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "(all within)" in printed, printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["spectrum"]["kind"] == "test_exponential" and meta["predicted_exponents"] is None
    from strongcollapse.vocabulary.spectra import SPECTRA, make_spectrum

    try:
        problem = Problem.build({"kind": "test_exponential", "scale": 10.0}, 60, c2=0.5)
        lam = float(linear.optimal_lam(*problem.arrays(), n=200, p=0.1, sigma1=0.1, sigma2=0.1))
        theory = float(
            linear.test_error(*problem.arrays(), n=200, p=0.1, lam=lam, sigma1=0.1, sigma2=0.1).total
        )
        sim = simulate.linear(0, *problem.arrays(), n=200, p=0.1, lam=lam, sigma1=0.1, sigma2=0.1, trials=300)
        assert abs(float(sim.mean) - theory) <= 4 * float(sim.sem) + 0.03 * theory
        assert make_spectrum({"kind": "test_exponential"}).eigenvalues(3)[0] == 1.0
    finally:
        SPECTRA.pop("test_exponential", None)  # keep the registry as the other tests expect it


def test_import_of_missing_user_code_is_a_clear_error(capsys):
    assert main(["--import", "/no/such/file.py", "list"]) == 2
    assert "--import must name an existing .py file" in capsys.readouterr().err


def test_measured_eigenvalues_from_a_npy_file_through_the_cli(tmp_path, capsys):
    """`from_eigenvalues` with a .npy path, set from the command line, runs the `scaling` experiment."""
    path = tmp_path / "eigs.npy"
    np.save(path, np.linspace(1.0, 0.01, 200) ** 2)  # quick runs use d = 200
    spectrum = json.dumps({"kind": "from_eigenvalues", "path": str(path)})
    out = tmp_path / "run"
    code = main(
        ["run", "scaling", "--quick", "--set", f"spectrum={spectrum}", "--set", "trials=8", "--out", str(out)]
    )
    assert code == 0 and "(all within)" in capsys.readouterr().out
    bad = json.dumps({"kind": "from_eigenvalues", "path": str(tmp_path / "missing.npy")})
    assert main(["run", "scaling", "--quick", "--set", f"spectrum={bad}", "--out", str(out)]) == 2
    assert "path must name an existing .npy file" in capsys.readouterr().err
