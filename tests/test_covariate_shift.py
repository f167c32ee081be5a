"""Covariate shift, Σ2 ≠ Σ1 (THEORY_SHIFT_GENERATIONS.md Part 1): theory identities and Monte Carlo.

Theory: Σ2 = Σ1 reproduces Model A (THEORY.md eq. (A)) to 1e-10; the commuting O(d) path equals the
general d×d solver (diagonal matrix, and a Σ2 rotated inside Σ1's eigenspaces); the scaled closed form
of §1.5; the plateau of §1.6; the draw-independent numbers of §1.7 (u2/u1 of every row, T1/T2/T6).

Simulation: the rows T1-T10 of §1.7 at d = 300 and the plateau table (d = 100). Tolerance
|mean − theory| <= 4 s.e. + r|theory| with the allowances stated in THEORY_SHIFT_GENERATIONS §2.10
item 4 (r = 1.5% for T1-T10; 2.5% for n <= 1000 and 1% for n >= 5000 in the plateau table), which
are tighter than the default 2% + 1/|n − d|. The full table is slow (400 trials per row; the
sufficient-statistics sampler's compilation alone takes ~15 s here); the fast tier runs T8 at half
size (d = 150, non-commuting Σ2).
Problem vectors follow §1.7's conventions with a seeded draw; values that depend on the draw are
compared with the theory of the same vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

import strongcollapse.simulate as simulate
from analytic import covariate_shift as shift
from analytic import linear
from strongcollapse import ParameterError
from strongcollapse.analysis.compare import agrees, finite_size_allowance
from strongcollapse.vocabulary.validation import check_covariance as sim_check_covariance

from conftest import ks_two_sample

D = 300


def powerlaw(beta: float, d: int) -> np.ndarray:
    return np.arange(1, d + 1.0) ** -beta


def teacher(eigs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(w1)_k² ∝ k^-1.5 with random signs, ‖w1‖²_Σ1 = 1."""
    w = np.arange(1, eigs.size + 1.0) ** -0.75 * rng.choice([-1.0, 1.0], eigs.size)
    return w / np.sqrt(np.sum(eigs * w * w))


def orthogonal_shift(eigs, w1, c2, rng) -> np.ndarray:
    """A random Δ with profile k^-0.75, Σ1-orthogonal to w1, ΔᵀΣ1Δ = c2."""
    v = np.arange(1, eigs.size + 1.0) ** -0.75 * rng.standard_normal(eigs.size)
    v = v - np.sum(eigs * w1 * v) / np.sum(eigs * w1 * w1) * w1
    return v * np.sqrt(c2 / np.sum(eigs * v * v))


def along(eigs, v, c2) -> np.ndarray:
    return v * np.sqrt(c2 / (v @ (eigs * v)))


# id: (Σ1, Σ2, n, λ, p, c², σ1, σ2, documented DE, documented u2/u1)
ROWS = {
    "T1": ("iso", ("scale", 2.0), 600, 0.0, 0.3, 1.0, 0.5, 0.5, 0.60795, 0.690),
    "T2": ("iso", ("scale", 0.5), 150, 0.0, 0.5, 1.0, 0.5, 0.2, 1.04000, 2.000),
    "T3": (1.5, ("scale", 3.0), 150, 1e-2, 0.3, 0.5, 0.3, 0.5, 0.14124, 0.707),
    "T4": (1.5, ("power", 1.0), 600, 0.0, 0.5, 0.5, 0.3, 0.3, 0.16651, 0.315),
    "T5": (1.2, ("power", 2.0), 150, 0.0, 0.2, 1.0, 0.3, 0.3, 2.17619, 25.72),
    "T6": (1.5, ("spike3", 5.0), 450, 1e-3, 0.3, 0.2, 0.3, 0.3, 0.20306, 0.993),
    "T7": (1.5, ("rank1", 5.0), 600, 0.0, 0.3, 0.2, 0.3, 0.3, 0.17166, 0.994),
    "T8": (1.5, ("rank1", 5.0), 200, 1e-3, 0.5, 0.2, 0.3, 0.3, 0.11732, 0.990),
    "T9": (1.5, ("scale", 2.0), 300, 1e-2, 0.5, 0.5, 0.3, 0.3, 0.20511, 0.902),
    "T10": (1.5, ("scale", 0.25), 200, 0.1, 0.7, 1.0, 0.3, 0.3, 0.11925, 1.046),
}
# All rows at d = 300 are slow (400 trials each, ~3 min here); the fast tier runs T8 at half size.
SLOW_ROWS = list(ROWS)
# Values that depend only on norms and spectra, not on the seeded directions (§1.7).
DRAW_FREE = {"T1": 0.60795, "T2": 1.04000, "T6": 0.20306}


def build(row: str, d: int = D, seed: int = 0):
    """(eigs, eigs2, w1, delta) of a §1.7 row; T6: Σ2 = Σ1 with e_3 → 5 and Δ along e_3;
    T7/T8: Σ2 = Σ1 + 5vvᵀ (v a random unit vector, non-commuting) and Δ along v."""
    s1, (kind, arg), *_ = ROWS[row]
    rng = np.random.default_rng([seed, int(row[1:])])
    eigs = np.ones(d) if s1 == "iso" else powerlaw(s1, d)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, ROWS[row][5], rng)
    if kind == "scale":
        eigs2 = arg * eigs
    elif kind == "power":
        eigs2 = powerlaw(arg, d)
    elif kind == "spike3":
        eigs2 = eigs.copy()
        eigs2[2] = arg
        delta = along(eigs, np.eye(d)[2], ROWS[row][5])
    else:
        v = rng.standard_normal(d)
        v /= np.linalg.norm(v)
        eigs2 = np.diag(eigs) + arg * np.outer(v, v)
        delta = along(eigs, v, ROWS[row][5])
    return eigs, eigs2, w1, delta


def row_theory(row: str, **overrides):
    _, _, n, lam, p, _, s1, s2, *_ = ROWS[row]
    args = dict(n=n, p=p, lam=lam, sigma1=s1, sigma2=s2) | overrides
    return shift.test_error(*build(row), **args)


# ---------------------------------------------------------------------------------------------
# Theory


def test_same_covariance_equals_model_a():
    """§1.7 "Algebra": (CS) with Σ2 = Σ1 is formula (A), on the 54-cell grid iso / pl1.5, d = 300."""
    rng = np.random.default_rng(5)
    n = np.array([150.0, 300.0, 600.0])[:, None, None]
    lam = np.array([0.0, 1e-2, 0.1])[:, None]
    p = np.array([0.0, 0.3, 1.0])
    for eigs in (np.ones(D), powerlaw(1.5, D)):
        w1 = teacher(eigs, rng)
        delta = orthogonal_shift(eigs, w1, 0.5, rng) + 0.2 * w1  # correlated with w1: cross terms live
        ours = shift.test_error(eigs, eigs, w1, delta, n=n, p=p, lam=lam, sigma1=0.3, sigma2=0.5)
        ref = linear.test_error(eigs, w1, delta, n=n, p=p, lam=lam, sigma1=0.3, sigma2=0.5)
        a, b = np.asarray(ours.total), np.asarray(ref.total)
        pole = ~np.isfinite(b)
        assert pole.sum() == 3 and np.all(np.isinf(a[pole]))  # n = d, λ = 0
        np.testing.assert_allclose(a[~pole], b[~pole], rtol=1e-10)
        assert bool(np.all(ours.converged)) and float(np.max(ours.residual)) <= 1e-12
        np.testing.assert_allclose(ours.weight_ratio, 1.0, rtol=1e-12)


def _blocks(d: int, size: int, rng):
    """Σ1 with repeated eigenvalues and an orthogonal Q that rotates inside each eigenspace."""
    eigs = np.repeat(np.arange(1, d // size + 1.0) ** -1.5, size)
    q = np.zeros((d, d))
    for i in range(d // size):
        block = slice(i * size, (i + 1) * size)
        q[block, block] = np.linalg.qr(rng.standard_normal((size, size)))[0]
    return eigs, q


def test_commuting_path_equals_general_solver_diagonal_and_rotated():
    """The O(d) commuting path vs the d×d solver: Σ2 as a diagonal matrix, and Σ2 = Q diag(b) Qᵀ with Q
    rotating within Σ1's eigenspaces (commuting, not diagonal), teachers rotated accordingly."""
    rng = np.random.default_rng(1)
    d = 60
    eigs, q = _blocks(d, 6, rng)
    b = rng.uniform(0.2, 3.0, d) * eigs
    w1, delta = rng.standard_normal(d) * 0.1, rng.standard_normal(d) * 0.1
    grid = dict(
        n=np.array([20.0, 61.0, 200.0])[:, None, None],
        p=np.array([0.0, 0.3, 1.0])[:, None],
        lam=np.array([0.0, 0.1]),
        sigma1=0.3,
        sigma2=0.5,
    )
    commuting = shift.test_error(eigs, b, q.T @ w1, q.T @ delta, **grid)
    diagonal = shift.test_error(eigs, np.diag(b), q.T @ w1, q.T @ delta, **grid)
    rotated = shift.test_error(eigs, q @ np.diag(b) @ q.T, w1, delta, **grid)
    for general in (diagonal, rotated):
        np.testing.assert_allclose(general.total, commuting.total, rtol=1e-10)
        np.testing.assert_allclose(general.weight_ratio, commuting.weight_ratio, rtol=1e-10)
        assert bool(np.all(general.converged))
    assert bool(np.all(commuting.converged)) and float(np.max(commuting.residual)) <= 1e-12


def test_scaled_closed_form_matches_solver_and_documented_values():
    """§1.5, Σ2 = sΣ1 ridgeless φ < 1: the quadratic for z, α, and E (documented to 10 digits)."""
    eigs = powerlaw(1.5, D)
    rng = np.random.default_rng(2)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 0.5, rng)
    documented = [(3.0, 0.7, 0.75, 0.7615, 0.8120471386), (0.25, 0.3, 0.5, 0.1627, 0.2577305368)]
    for s, p, phi, alpha, value in documented:
        n = D / phi
        closed = shift.scaled_ridgeless(d=D, n=n, p=p, s=s, c2=0.5, sigma1=0.3, sigma2=0.5)
        solved = shift.test_error(eigs, s * eigs, w1, delta, n=n, p=p, lam=0.0, sigma1=0.3, sigma2=0.5)
        assert float(closed["total"]) == pytest.approx(value, abs=1e-10)
        assert float(solved.total) == pytest.approx(float(closed["total"]), rel=1e-10)
        assert float(closed["alpha"]) == pytest.approx(alpha, abs=5e-5)
        u = np.asarray(solved.u)
        assert u[1] / u[0] == pytest.approx(float(closed["u2"] / closed["u1"]), rel=1e-10)
    # A wider sweep of (s, p, φ), p taken as realised (exact_count=False on both sides).
    s = np.array([0.1, 0.5, 2.0, 10.0])[:, None, None]
    p = np.array([0.05, 0.5, 0.95])[:, None]
    n = np.array([310.0, 600.0, 3000.0])
    closed = shift.scaled_ridgeless(d=D, n=n, p=p, s=s, c2=0.5, sigma1=0.3, sigma2=0.5)["total"]
    for i, si in enumerate(s[:, 0, 0]):
        solved = shift.test_error(
            eigs, si * eigs, w1, delta, n=n, p=p, lam=0.0, sigma1=0.3, sigma2=0.5, exact_count=False
        )
        np.testing.assert_allclose(solved.total, closed[i], rtol=1e-10)


def test_min_norm_side_rescaling_only_rescales_the_synthetic_noise():
    """§1.7: for φ > 1, λ = 0, Σ2 = sΣ1 acts as Σ2 = Σ1 with σ2 → σ2/√s, and u2/u1 = 1/s."""
    eigs = powerlaw(1.5, D)
    rng = np.random.default_rng(3)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 0.7, rng) + 0.3 * w1
    n, p = np.array([50.0, 150.0, 290.0]), np.array([0.2, 0.5, 0.9])[:, None]
    for s in (0.25, 4.0):
        shifted = shift.test_error(eigs, s * eigs, w1, delta, n=n, p=p, lam=0.0, sigma1=0.3, sigma2=0.5)
        same = linear.test_error(eigs, w1, delta, n=n, p=p, lam=0.0, sigma1=0.3, sigma2=0.5 / np.sqrt(s))
        np.testing.assert_allclose(shifted.total, same.total, rtol=1e-10)
        np.testing.assert_allclose(shifted.weight_ratio, 1 / s, rtol=1e-10)


def test_documented_fixed_point_and_draw_free_values_of_the_table():
    """u2/u1 of T1-T10 (3 digits), DE of T1, T2, T6 (5 digits), no-shift of T1, T2, T4, T7, T5's ṽ2."""
    for row, (*_, de, ratio) in ROWS.items():
        res = row_theory(row)
        assert bool(res.converged)
        assert float(res.weight_ratio) == pytest.approx(ratio, rel=6e-3 if ratio < 10 else 1e-3), row
        if row in DRAW_FREE:
            assert float(res.total) == pytest.approx(de, abs=6e-6), row
    for row, value in {"T1": 0.55, "T2": 1.02, "T4": 0.34, "T7": 0.15}.items():
        eigs, _, w1, delta = build(row)
        _, _, n, lam, p, _, s1, s2, *_ = ROWS[row]
        ref = linear.test_error(eigs, w1, delta, n=n, p=p, lam=lam, sigma1=s1, sigma2=s2)
        assert float(ref.total) == pytest.approx(value, rel=1e-9), row
    assert float(row_theory("T5").v[1]) == pytest.approx(8.8, abs=0.05)
    # Effective mixture: w̄ = population ridge on α1Σ1 + α2Σ2 with ridge κ; α2/α1 = (p/(1−p))·u2/u1.
    res = row_theory("T1")
    alpha = np.asarray(res.alpha)
    assert alpha[1] / alpha[0] == pytest.approx(0.3 / 0.7 * float(res.weight_ratio), rel=1e-12)


def test_plateau_is_the_large_n_limit():
    """§1.6: at n = 1e9 the DE equals P(λ) (§1.7: 0.09183677 vs 0.09183673 for Σ2 = 3Σ1, p = 0.2,
    c² = 0.5); closed forms of P(0); the floor; Σ2 = Σ1 gives analytic.linear's g(λ)."""
    eigs = powerlaw(1.5, D)
    rng = np.random.default_rng(4)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 0.5, rng)
    lam = np.array([0.0, 0.05])
    plat = shift.plateau(eigs, 3 * eigs, w1, delta, p=0.2, lam=lam)
    far = shift.test_error(eigs, 3 * eigs, w1, delta, n=1e9, p=0.2, lam=lam, sigma1=0.5, sigma2=0.5)
    np.testing.assert_allclose(far.total, plat.value, rtol=1e-6)
    assert float(plat.value[0]) == pytest.approx((0.6 / 1.4) ** 2 * 0.5, rel=1e-12)
    assert float(plat.value[0]) == pytest.approx(0.0918367, abs=1e-7)
    b = powerlaw(1.0, D)
    p_eff = 0.2 * b / (0.8 * eigs + 0.2 * b)
    commuting = shift.plateau(eigs, b, w1, delta, p=0.2)
    assert float(commuting.ridgeless) == pytest.approx(np.sum(eigs * delta**2 * p_eff**2), rel=1e-12)
    general = shift.plateau(eigs[:60], np.diag(b[:60]), w1[:60], delta[:60], p=0.2, lam=0.05)
    small = shift.plateau(eigs[:60], b[:60], w1[:60], delta[:60], p=0.2, lam=0.05)
    np.testing.assert_allclose([general.value, general.floor], [small.value, small.floor], rtol=1e-10)
    lams = np.geomspace(1e-6, 10, 200)[:, None]  # P(λ) written out for Σ2 = 3Σ1
    on_grid = np.sum(eigs * ((0.6 * eigs * delta - lams * w1) / (1.4 * eigs + lams)) ** 2, axis=1)
    ends = shift.plateau(eigs, 3 * eigs, w1, delta, p=0.2, lam=lams[[0, -1], 0])
    np.testing.assert_allclose(on_grid[[0, -1]], ends.value, rtol=1e-12)
    assert float(plat.floor[0]) <= float(np.min(on_grid)) * (1 + 1e-9)
    same = shift.plateau(eigs, eigs, w1, delta, p=np.array([0.1, 0.5]))
    ref = linear.plateau(eigs, w1, delta, p=np.array([0.1, 0.5]))
    np.testing.assert_allclose(same.floor, ref.floor, rtol=1e-9)
    np.testing.assert_allclose(same.ridgeless, ref.ridgeless, rtol=1e-12)


def test_pole_broadcasting_and_reweighting():
    eigs = powerlaw(1.5, D)
    w1, delta = np.full(D, 0.1), np.full(D, 0.05)
    res = shift.test_error(eigs, 2 * eigs, w1, delta, n=[D - 1, D, D + 1], p=0.3, lam=0.0, sigma1=0.1)
    t = np.asarray(res.total)
    assert np.isfinite(t[0]) and np.isinf(t[1]) and np.isfinite(t[2])
    assert np.isfinite(shift.test_error(eigs, 2 * eigs, w1, delta, n=D, p=0.3, lam=1e-4, sigma1=0.1).total)
    res = shift.test_error(
        eigs, 2 * eigs, w1, delta, n=np.array([100.0, 600.0])[:, None], p=[0.1, 0.5, 0.9], lam=0.01,
        sigma1=np.array([0.1, 0.2, 0.3, 0.4])[:, None, None], sigma2=0.2,
    )
    assert res.total.shape == (4, 2, 3) and res.v.shape == (4, 2, 3, 2) and res.alpha.shape == (4, 2, 3, 2)
    np.testing.assert_allclose(res.total, res.mean + res.fluctuation + res.variance, rtol=1e-12)
    fp = shift.fixed_point(eigs, 2 * eigs, n=600, p=0.5, lam=0.01)
    assert float(fp.weight_ratio) < 1  # larger synthetic covariance: down-weighted rows (§1.3)
    np.testing.assert_allclose(fp.weight_ratio, res.weight_ratio[0, 1, 1], rtol=1e-12)


BAD_COVARIANCES = {
    "negative entry": (lambda d: -np.ones(d), "eigs2 must be > 0"),
    "zero entry": (lambda d: np.r_[np.ones(d - 1), 0.0], "eigs2 must be > 0"),
    "wrong length": (lambda d: np.ones(d + 1), "length d = "),
    "wrong shape": (lambda d: np.ones((d, d + 1)), "must have shape"),
    "three axes": (lambda d: np.ones((d, d, 1)), "must have shape"),
    "non-symmetric": (lambda d: np.eye(d) + np.triu(np.ones((d, d)), 1) * 0.1, "symmetric"),
    "indefinite": (lambda d: np.eye(d) - 2 * np.outer(np.ones(d), np.ones(d)) / d, "positive definite"),
    "nan": (lambda d: np.full(d, np.nan), "finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_COVARIANCES))
def test_bad_covariance_is_rejected_by_theory_and_simulation(case):
    make, message = BAD_COVARIANCES[case]
    d = 8
    eigs, w1, delta = np.ones(d), np.ones(d), np.zeros(d)
    bad = make(d)
    with pytest.raises(ParameterError, match=message):
        shift.test_error(eigs, bad, w1, delta, n=20, p=0.5, lam=0.0)
    with pytest.raises(ParameterError, match=message):
        shift.plateau(eigs, bad, w1, delta, p=0.5)
    with pytest.raises(ParameterError, match=message):
        shift.fixed_point(eigs, bad, n=20, p=0.5, lam=0.0)
    with pytest.raises(ParameterError, match=message):
        simulate.linear(0, eigs, w1, delta, n=20, p=0.5, lam=0.0, trials=2, eigs2=bad)
    with pytest.raises(ParameterError, match=message):
        sim_check_covariance("eigs2", bad, d)


def test_other_bad_input_names_the_parameter():
    eigs = np.ones(8)
    for kwargs, message in [
        (dict(n=0.5, p=0.5, lam=0.0), "n must be in"),
        (dict(n=20, p=1.5, lam=0.0), "p must be in"),
        (dict(n=20, p=0.5, lam=-1.0), "lam must be >= 0"),
        (dict(n=20, p=0.5, lam=0.0, sigma2=-0.1), "sigma2 must be >= 0"),
    ]:
        with pytest.raises(ParameterError, match=message):
            shift.test_error(eigs, eigs, eigs, eigs, **kwargs)
    with pytest.raises(ParameterError, match="w1 must have length"):
        shift.test_error(eigs, eigs, np.ones(7), eigs, n=20, p=0.5, lam=0.0)
    with pytest.raises(ParameterError, match="eigs must be sorted"):
        shift.test_error(eigs[::-1] * np.arange(1, 9), eigs, eigs, eigs, n=20, p=0.5, lam=0.0)


# ---------------------------------------------------------------------------------------------
# Simulation


def _check_row(row: str, trials: int, seed: int = 1):
    eigs, eigs2, w1, delta = build(row)
    _, _, n, lam, p, _, s1, s2, *_ = ROWS[row]
    theory = float(shift.test_error(eigs, eigs2, w1, delta, n=n, p=p, lam=lam, sigma1=s1, sigma2=s2).total)
    kwargs = dict(n=n, p=p, lam=lam, sigma1=s1, sigma2=s2)
    sim = simulate.linear(seed, eigs, w1, delta, trials=trials, eigs2=eigs2, **kwargs)
    mean, sem = float(sim.mean), float(sim.sem)
    assert agrees(mean, sem, theory, 0.015), (
        f"{row}: sim {mean:.5f} ± {sem:.5f} vs theory {theory:.5f} (rel {mean / theory - 1:+.2%}, z "
        f"{(mean - theory) / sem:+.2f}; allowed 4 s.e. + 1.5%)"
    )


def test_full_covariance_half_size_row_matches_simulation():
    """T8 at d = 150 (n = 100, φ = 1.5 as in the table): non-commuting Σ2 = Σ1 + 5vvᵀ, min-norm side
    with λ = 1e-3, direct sampler. Not a documented row, so the default allowance 2% + 1/|n − d|."""
    d, n = 150, 100
    rng = np.random.default_rng(3)
    eigs = powerlaw(1.5, d)
    w1 = teacher(eigs, rng)
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    eigs2, delta = np.diag(eigs) + 5 * np.outer(v, v), along(eigs, v, 0.2)
    kwargs = dict(n=n, p=0.5, lam=1e-3, sigma1=0.3, sigma2=0.3)
    theory = float(shift.test_error(eigs, eigs2, w1, delta, **kwargs).total)
    sim = simulate.linear(1, eigs, w1, delta, trials=600, eigs2=eigs2, **kwargs)
    r = finite_size_allowance(n, d, 0.02)
    assert agrees(sim.mean, sim.sem, theory, r), (float(sim.mean), float(sim.sem), theory)


@pytest.mark.slow
@pytest.mark.parametrize("row", SLOW_ROWS)
def test_table_rows_match_simulation(row):
    _check_row(row, trials=400)


PLATEAU = {  # (Σ2, λ): DE at n = 200, 1000, 5000, 25000 of §1.7 (draw-free only for 3×, λ = 0)
    ("3x", 0.0): [0.55272, 0.21675, 0.18905, 0.18470],
    ("3x", 0.05): None,
    ("pl1.0", 0.0): None,
    ("pl1.0", 0.05): None,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(PLATEAU), ids=lambda c: f"{c[0]}-lam{c[1]:g}")
def test_plateau_table_matches_simulation(case):
    """d = 100, p = 0.2, c² = 1, σ1 = σ2 = 0.5, 400 trials: MC vs DE at n = 200 ... 25000; the plateau."""
    kind, lam = case
    d = 100
    eigs = powerlaw(1.5, d)
    rng = np.random.default_rng(11)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 1.0, rng)
    eigs2 = 3 * eigs if kind == "3x" else powerlaw(1.0, d)
    n = np.array([200, 1000, 5000, 25000])
    kwargs = dict(n=n, p=0.2, lam=lam, sigma1=0.5, sigma2=0.5)
    theory = np.asarray(shift.test_error(eigs, eigs2, w1, delta, **kwargs).total)
    if PLATEAU[case] is not None:
        np.testing.assert_allclose(theory, PLATEAU[case], atol=6e-6)
        plat = float(shift.plateau(eigs, eigs2, w1, delta, p=0.2, lam=lam).value)
        assert plat == pytest.approx(0.18367, abs=6e-6)
    sim = simulate.linear(5, eigs, w1, delta, trials=400, eigs2=eigs2, **kwargs)
    r = np.where(n <= 1000, 0.025, 0.01)
    assert np.all(agrees(sim.mean, sim.sem, theory, r)), (sim.mean, sim.sem, theory)


@pytest.mark.slow
@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_direct_and_sufficient_samplers_agree_under_shift(covariance):
    """Same law (KS at level 0.001 per cell) for n >= d, including groups of 0, 1 and 2 rows."""
    d = 30
    rng = np.random.default_rng(8)
    eigs = powerlaw(1.2, d)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 0.6, rng)
    v = rng.standard_normal(d)
    eigs2 = 2 * eigs if covariance == "diagonal" else np.diag(eigs) + 3 * np.outer(v, v) / d
    kwargs = dict(n=60, p=np.array([0.0, 1 / 60, 2 / 60, 0.4, 59 / 60, 1.0]), lam=[[0.0], [0.05]])
    kwargs |= dict(sigma1=0.2, sigma2=0.5, trials=1500, eigs2=eigs2)
    direct = simulate.linear(11, eigs, w1, delta, method="direct", **kwargs)
    sufficient = simulate.linear(12, eigs, w1, delta, method="sufficient", **kwargs)
    z = (direct.mean - sufficient.mean) / np.hypot(direct.sem, sufficient.sem)
    assert np.all(np.abs(z) < 4), z
    for a, b in zip(direct.errors.reshape(-1, 1500), sufficient.errors.reshape(-1, 1500)):
        ks, critical = ks_two_sample(a, b, alpha=0.001)
        assert ks < critical, f"KS statistic {ks:.3f} >= {critical:.3f}"


@pytest.mark.slow
def test_shifted_simulation_is_deterministic_chunk_invariant_and_resumable(tmp_path):
    from strongcollapse.orchestration.results import ChunkStore

    d = 20
    rng = np.random.default_rng(9)
    eigs = powerlaw(1.5, d)
    w1 = teacher(eigs, rng)
    delta = orthogonal_shift(eigs, w1, 0.5, rng)
    kwargs = dict(n=[10, 40, 200], p=0.3, lam=0.01, trials=12, eigs2=2 * eigs)
    base = simulate.linear(1, eigs, w1, delta, **kwargs)
    np.testing.assert_array_equal(base.errors, simulate.linear(1, eigs, w1, delta, **kwargs).errors)
    chunked = simulate.linear(1, eigs, w1, delta, chunk_size=5, **kwargs)
    np.testing.assert_allclose(base.errors, chunked.errors, rtol=1e-12)
    store = ChunkStore(tmp_path)
    first = simulate.linear(1, eigs, w1, delta, store=store, chunk_size=6, **kwargs)
    reread = ChunkStore(tmp_path)
    again = simulate.linear(1, eigs, w1, delta, store=reread, chunk_size=6, **kwargs)
    np.testing.assert_array_equal(first.errors, again.errors)
    assert reread.hits == sum(plan.chunks for plan in first.plans) and reread.writes == 0
    kwargs["eigs2"] = 3 * eigs
    other = simulate.linear(1, eigs, w1, delta, store=ChunkStore(tmp_path), chunk_size=6, **kwargs)
    assert not np.any(other.errors == first.errors)  # the store tag includes Σ2
