"""Bad input: every public entry point raises ValueError naming the parameter and its range."""

from __future__ import annotations

import numpy as np
import pytest

import strongcollapse.simulate as simulate
from analytic import linear as theory
from strongcollapse import Problem

GOOD = dict(n=100, p=0.1, lam=0.1, sigma1=0.1, sigma2=0.1)

BAD_SCALARS = [
    ("p", 1.5, r"p must be in \[0, 1\], got 1.5"),
    ("p", -0.1, r"p must be in \[0, 1\]"),
    ("lam", -1.0, r"lam must be >= 0"),
    ("n", 0, r"n must be"),
    ("sigma1", -0.2, r"sigma1 must be >= 0"),
    ("sigma2", float("inf"), r"sigma2 must be finite"),
    ("p", float("nan"), r"p must be finite"),
    ("lam", "big", r"lam must be a number"),
    ("n", [100, 200, np.nan], r"n must be finite"),
]


def _call(entry, problem, **overrides):
    args = {**GOOD, **overrides}
    if entry == "theory":
        return theory.test_error(*problem.arrays(), **args)
    if entry == "optimal_lam":
        args.pop("lam")
        return theory.optimal_lam(*problem.arrays(), **args)
    if entry == "plateau":
        return theory.plateau(*problem.arrays(), p=args["p"])
    return simulate.linear(0, *problem.arrays(), trials=2, **args)


@pytest.mark.parametrize("entry", ["theory", "simulate", "optimal_lam"])
@pytest.mark.parametrize("name, value, match", BAD_SCALARS)
def test_out_of_range_parameters(iso_problem, entry, name, value, match):
    if entry == "optimal_lam" and name == "lam":
        pytest.skip("optimal_lam takes no lam")
    with pytest.raises(ValueError, match=match):
        _call(entry, iso_problem, **{name: value})


def test_plateau_rejects_bad_p(iso_problem):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        _call("plateau", iso_problem, p=2.0)


def test_simulation_needs_integer_sizes_and_trials(iso_problem):
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 10.5"):
        _call("simulate", iso_problem, n=10.5)
    with pytest.raises(ValueError, match="trials must be an integer >= 1"):
        simulate.linear(0, *iso_problem.arrays(), trials=0, **GOOD)
    with pytest.raises(ValueError, match="method must be one of"):
        simulate.linear(0, *iso_problem.arrays(), trials=2, method="fast", **GOOD)
    with pytest.raises(ValueError, match="method='sufficient' needs n >= 2 and"):
        simulate.linear(
            0, *iso_problem.arrays(), trials=2, method="sufficient", **{**GOOD, "n": 10, "lam": 0.0}
        )
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        simulate.linear(-3, *iso_problem.arrays(), trials=2, **GOOD)
    with pytest.raises(ValueError, match="dtype must be one of"):
        simulate.linear(0, *iso_problem.arrays(), trials=2, dtype="float16", **GOOD)


@pytest.mark.parametrize("entry", ["theory", "simulate"])
def test_bad_problem_arrays(entry):
    good = Problem.build({"kind": "isotropic"}, 5)
    eigs, w1, dl = good.arrays()
    cases = [
        ((np.array([1.0, 2.0, 0.5, 0.4, 0.3]), w1, dl), "eigs must be sorted in non-increasing order"),
        ((np.array([1.0, 1.0, 1.0, 1.0, 0.0]), w1, dl), "eigs must be > 0"),
        ((np.array([1.0, 1.0, np.nan, 1.0, 1.0]), w1, dl), "eigs must be finite"),
        ((eigs, w1[:4], dl), "w1 must have length d = 5"),
        ((eigs, w1, np.ones((5, 2))), "delta must be a 1-D array"),
    ]
    for arrays, match in cases:
        with pytest.raises(ValueError, match=match):
            if entry == "theory":
                theory.test_error(*arrays, **GOOD)
            else:
                simulate.linear(0, *arrays, trials=2, **GOOD)


@pytest.mark.parametrize("entry", ["theory", "simulate"])
def test_shapes_that_do_not_broadcast(iso_problem, entry):
    with pytest.raises(
        ValueError, match=r"parameters must broadcast to a common shape, got n \(3,\), p \(2,\)"
    ):
        _call(entry, iso_problem, n=[50, 100, 200], p=[0.1, 0.2])


def test_problem_builder_rejects_bad_teacher_parameters():
    with pytest.raises(ValueError, match=r"corr must be in \[-1, 1\]"):
        Problem.build({"kind": "isotropic"}, 5, corr=1.5)
    with pytest.raises(ValueError, match="c2 must be >= 0"):
        Problem.build({"kind": "isotropic"}, 5, c2=-1)
    with pytest.raises(ValueError, match="signal must be > 0"):
        Problem.build({"kind": "isotropic"}, 5, signal=0)
    with pytest.raises(ValueError, match="d must be an integer >= 1"):
        Problem.build({"kind": "isotropic"}, 0)
