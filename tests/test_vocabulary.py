"""Spectra, teachers and problems: the shared vocabulary of theory and simulation."""

from __future__ import annotations

import numpy as np
import pytest

from strongcollapse import SPECTRA, FromEigenvalues, Problem, make_spectrum, source_teacher, synthetic_shift
from strongcollapse.vocabulary.problem import synthetic_count

REGISTRY_EXAMPLES = {
    "isotropic": {"kind": "isotropic", "scale": 2.0},
    "power_law": {"kind": "power_law", "beta": 1.5},
    "from_eigenvalues": {"kind": "from_eigenvalues", "eigs": [3.0, 1.0, 2.0, 0.5]},
}


def test_every_registered_spectrum_has_an_example():
    assert set(SPECTRA) <= set(REGISTRY_EXAMPLES), "add an example for the new spectrum kind"


@pytest.mark.parametrize("kind", sorted(REGISTRY_EXAMPLES))
def test_spectrum_eigenvalues_are_descending_positive_and_round_trip(kind):
    spectrum = make_spectrum(REGISTRY_EXAMPLES[kind])
    eigs = spectrum.eigenvalues(4)
    assert eigs.shape == (4,) and np.all(eigs > 0) and np.all(np.diff(eigs) <= 0)
    again = make_spectrum(spectrum.to_config())
    np.testing.assert_array_equal(again.eigenvalues(4), eigs)


def test_power_law_normalisation():
    np.testing.assert_allclose(
        make_spectrum({"kind": "power_law", "beta": 2}).eigenvalues(3), [1, 1 / 4, 1 / 9]
    )


def test_from_eigenvalues_loads_npy(tmp_path):
    path = tmp_path / "eigs.npy"
    np.save(path, np.array([0.5, 2.0, 1.0]))
    spectrum = FromEigenvalues(path=str(path))
    np.testing.assert_array_equal(spectrum.eigenvalues(3), [2.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="d must equal"):
        spectrum.eigenvalues(4)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"kind": "nope"}, "spectrum kind must be one of"),
        ({"kind": "power_law", "beta": -1}, "beta must be > 0"),
        ({"kind": "power_law", "alpha": 1}, "unknown"),
        ({"kind": "from_eigenvalues", "eigs": [1.0, -1.0]}, "eigs must be > 0"),
        ({"kind": "from_eigenvalues", "path": "/no/such/file.npy"}, "path must name an existing"),
        ({"kind": "from_eigenvalues"}, "exactly one of eigs and path"),
    ],
)
def test_bad_spectra_are_rejected(config, match):
    with pytest.raises(ValueError, match=match):
        make_spectrum(config).eigenvalues(2)


@pytest.mark.parametrize("corr", [-0.7, 0.0, 0.4, 1.0])
def test_teacher_has_requested_signal_quality_and_correlation(corr):
    problem = Problem.build({"kind": "power_law", "beta": 1.2}, 50, source=0.8, signal=2.0, c2=0.3, corr=corr)
    assert problem.signal == pytest.approx(2.0, rel=1e-12)
    assert problem.c2 == pytest.approx(0.3, rel=1e-12)
    assert problem.corr == pytest.approx(corr, abs=1e-12)


def test_source_exponent():
    eigs = np.ones(10)
    w = source_teacher(eigs, source=2.0)
    np.testing.assert_allclose(w[1:] ** 2 / w[0] ** 2, np.arange(2, 11) ** -2.0)


def test_shift_rejects_a_direction_parallel_to_w1():
    eigs = np.ones(4)
    w1 = source_teacher(eigs)
    with pytest.raises(ValueError, match="direction must not be parallel"):
        synthetic_shift(eigs, w1, c2=1.0, corr=0.0, direction=2 * w1)


def test_problem_validates_shapes():
    with pytest.raises(ValueError, match="w1 must have length d = 3"):
        Problem(np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="eigs must be sorted"):
        Problem(np.array([1.0, 2.0]), np.ones(2), np.ones(2))


def test_synthetic_count_rounds_half_to_even():
    np.testing.assert_array_equal(synthetic_count([10, 30, 50], 0.05), [0, 2, 2])
