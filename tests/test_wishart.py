"""The exact sufficient-statistics sampler (strongcollapse.simulate.wishart), piece by piece.

Each piece is checked against an independent reference: ``jax.random.chisquare`` for the
chi-squares (two-sample Kolmogorov–Smirnov), and moments computed by hand from the definition
z_i ~ N(0, I), v_i = s_i⟨z_i, a⟩ + σ ξ_i for the joint law of (ZᵀZ, Zᵀv). Monte Carlo bounds
are 5 standard errors of the estimated moment.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strongcollapse.simulate.samplers import Frame
from strongcollapse.simulate.wishart import bartlett_gram, chi_square, householder_vector, mixture_statistics

from conftest import ks_two_sample

DRAWS = 20000


def _assert_moment(samples: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Sample mean of ``samples`` (draws on axis 0) within 5 empirical standard errors of ``expected``."""
    mean = samples.mean(0)
    sem = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    bound = 5 * sem + 1e-12
    worst = np.max(np.abs(mean - expected) / bound)
    assert worst < 1, f"{what}: worst deviation {5 * worst:.2f} s.e."


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 50, 10**4, 10**8])
def test_chi_square_has_the_law_of_jax_chisquare(dof):
    keys = jax.random.split(jax.random.key(1), DRAWS)
    ours = np.asarray(jax.vmap(lambda k: chi_square(k, jnp.full((3,), float(dof))))(keys)).ravel()
    reference = np.asarray(jax.random.chisquare(jax.random.key(2), float(dof), (3 * DRAWS,), jnp.float64))
    ks, critical = ks_two_sample(ours, reference)
    assert ks < critical, f"KS {ks:.4f} >= {critical:.4f}"
    # Mean ν and variance 2ν: 5-s.e. bounds (Var of the sample variance uses the χ² 4th moment).
    m = ours.size
    assert abs(ours.mean() - dof) < 5 * np.sqrt(2 * dof / m)
    assert abs(ours.var() / (2 * dof) - 1) < 5 * np.sqrt((2 + 48 / dof) / m)


def test_chi_square_masks_nonpositive_dof_and_is_batch_independent():
    dof = jnp.array([0.0, -3.0, 5.0, 1.0])
    values = chi_square(jax.random.key(0), dof)
    assert values[0] == 0 and values[1] == 0 and values[2] > 0 and values[3] > 0
    # The same key gives the same entry whatever else is in the batch (vmap vs single call).
    keys = jax.random.split(jax.random.key(3), 5)
    batched = jax.vmap(lambda k: chi_square(k, dof))(keys)
    np.testing.assert_array_equal(batched[2], chi_square(keys[2], dof))


@pytest.mark.parametrize("dim", [10, 11])
@pytest.mark.parametrize("dof", [0, 3, 10, 25])
def test_bartlett_gram_moments_including_singular_case(dim, dof):
    """Wishart(ν, I) moments: E W = ν I, E W_ij² = ν(1 + δ_ij) + ν² δ_ij; rank min(ν, dim).

    Even and odd dim: the two block halves of the construction differ in size when dim is odd.
    """
    keys = jax.random.split(jax.random.key(5), DRAWS)
    gram = np.asarray(jax.vmap(lambda k: bartlett_gram(k, dim, float(dof)))(keys))
    eye = np.eye(dim)
    if dof == 0:
        assert np.all(gram == 0)
        return
    _assert_moment(gram, dof * eye, "E W")
    _assert_moment(gram**2, dof * (1 + eye) + dof**2 * eye, "E W_ij²")
    np.testing.assert_allclose(gram, np.swapaxes(gram, 1, 2), rtol=1e-13, atol=1e-12 * dof)
    assert np.linalg.matrix_rank(gram[0]) == min(dof, dim)


def test_householder_maps_a_to_its_norm_times_e1():
    for a in [np.array([3.0, -4.0, 1.0]), np.array([2.0, 0.0, 0.0]), np.zeros(3), np.array([-1.0, 0, 0])]:
        u = np.asarray(householder_vector(jnp.asarray(a)))
        h = np.eye(3) - 2 * np.outer(u, u)
        np.testing.assert_allclose(h @ a, [np.linalg.norm(a), 0, 0], atol=1e-14)
        np.testing.assert_allclose(h @ h.T, np.eye(3), atol=1e-14)


@pytest.mark.parametrize("n, count, s1, s2", [(12, 4, 0.5, 1.5), (30, 0, 0.0, 0.7), (9, 9, 0.3, 0.0)])
def test_mixture_statistics_joint_moments(n, count, s1, s2):
    """Moments of (G, s) = (ZᵀZ, Zᵀv), v_i = s_i⟨z_i, a⟩ + σ_g ξ_i, derived from the definition:

    E G = n I;  E G_ij G_ij = n(1 + δ_ij) + n² δ_ij;  E s = k a;
    E s sᵀ = k(‖a‖² I + 2aaᵀ) + k(k − 1) aaᵀ + ((n − k)σ1² + kσ2²) I;
    E G_ij s_l = k n δ_ij a_l + k(δ_il a_j + δ_jl a_i)  (Isserlis for a shared row, plus distinct rows).

    The sampler works in the frame where a = α e1 (samplers.Frame rotates everything else).
    """
    d, alpha = 5, 1.2
    a = alpha * np.eye(d)[0]
    keys = jax.random.split(jax.random.key(7), DRAWS)
    draw = jax.vmap(lambda key: mixture_statistics(key, d, float(n), float(count), alpha, s1, s2))
    gram, score = (np.asarray(x) for x in draw(keys))
    k, eye = count, np.eye(d)
    _assert_moment(gram, n * eye, "E G")
    _assert_moment(gram**2, n * (1 + eye) + n * n * eye, "E G_ij²")
    _assert_moment(score, k * a, "E s")
    second = k * (alpha**2 * eye + 2 * np.outer(a, a)) + k * (k - 1) * np.outer(a, a)
    second += ((n - k) * s1**2 + k * s2**2) * eye
    _assert_moment(np.einsum("bi,bj->bij", score, score), second, "E s sᵀ")
    cross = k * n * np.einsum("ij,l->ijl", eye, a) + k * (
        np.einsum("il,j->ijl", eye, a) + np.einsum("jl,i->ijl", eye, a)
    )
    _assert_moment(np.einsum("bij,bl->bijl", gram, score), cross, "E G_ij s_l")


def test_frame_maps_match_dense_matrices():
    """Frame: H Σ^1/2 Δ = α e1; whitened = H Σ^1/2; rows = S Σ^1/2 H; penalty = H Σ⁻¹ H; dual = H Σ^-1/2."""
    rng = np.random.default_rng(0)
    eigs = np.sort(rng.uniform(0.1, 2.0, 6))[::-1]
    delta, w, s = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((3, 6))
    frame = Frame.of(jnp.asarray(eigs), jnp.asarray(delta))
    u = np.asarray(frame.u)
    h = np.eye(6) - 2 * np.outer(u, u)
    root = np.diag(np.sqrt(eigs))
    np.testing.assert_allclose(h @ root @ delta, [frame.alpha, 0, 0, 0, 0, 0], atol=1e-13)
    np.testing.assert_allclose(frame.whitened(w), h @ root @ w, rtol=1e-13)
    np.testing.assert_allclose(frame.rows(s), s @ root @ h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(frame.penalty(), h @ np.diag(1 / eigs) @ h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(frame.dual(w), h @ np.linalg.inv(root) @ w, rtol=1e-12, atol=1e-13)
