"""Activations σ of random-feature models and their Gaussian-equivalence (GE) constants.

THEORY_RF.md §2 (constants) and §9 (Hermite / Mehler coefficients); Mei & Montanari (2019),
arXiv 1908.05355, §1. For g ~ N(0, 1):

    μ0 = E σ(g),   μ1 = E g σ(g),   μ*² = E σ(g)² − μ0² − μ1²,   μ2 = E σ(g)(g² − 1),   ζ² = μ1²/μ*².

GE replaces a feature σ(⟨w, x⟩/√d) by μ0 + μ1⟨w, x⟩/√d + μ* z with z ~ N(0, 1) independent of x.

Built in: ``relu``, ``tanh``, ``erf``, ``linear``. ReLU, erf and linear have closed-form constants
(and closed-form kernels, THEORY_RF §9: arc-cosine, arcsine, the identity); tanh's come from
400-node Gauss–Hermite quadrature, as do any constant a user leaves out of
:func:`register_activation`.

Bottom-layer vocabulary: imports only numpy, jax and ``strongcollapse.vocabulary``; no randomness.

Example:
    >>> round(get_activation("relu").mu1, 6)
    0.5
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _jerf

from strongcollapse.vocabulary.validation import ParameterError, as_array

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "KERNELS",
    "QUADRATURE_NODES",
    "register_activation",
    "get_activation",
    "hermite_coefficients",
    "gaussian_moments",
    "rescaled",
]

QUADRATURE_NODES = 400  # probabilists' Gauss–Hermite nodes (THEORY_RF §2, §9)
KERNELS = ("relu", "erf", "linear")  # activations with a closed-form kernel (THEORY_RF §9)


@dataclasses.dataclass(frozen=True)
class Activation:
    """An elementwise activation with its GE constants (THEORY_RF §2).

    Attributes:
        name: registry name.
        fn: elementwise σ written with jax.numpy (accepts NumPy and JAX arrays).
        mu0, mu1, mu_star, mu2: E σ(g), E gσ(g), sqrt(Eσ² − μ0² − μ1²) >= 0, E σ(g)(g² − 1).
        kernel: "relu", "erf" or "linear" when the kernel E_w σ(⟨w,x⟩)σ(⟨w,x'⟩) has a closed form
            (THEORY_RF §9); None means "use the Mehler series of :func:`hermite_coefficients`".
    """

    name: str
    fn: Callable
    mu0: float
    mu1: float
    mu_star: float
    mu2: float
    kernel: str | None = None

    @property
    def mu_star2(self) -> float:
        """μ*², the power of the nonlinear part (0 for a linear σ)."""
        return self.mu_star**2

    @property
    def zeta2(self) -> float:
        """ζ² = μ1²/μ*² (Mei–Montanari's ζ²); +inf when μ* = 0."""
        return math.inf if self.mu_star == 0 else self.mu1**2 / self.mu_star**2

    @property
    def second_moment(self) -> float:
        """E σ(g)² = μ0² + μ1² + μ*²."""
        return self.mu0**2 + self.mu1**2 + self.mu_star**2


def relu(x: Any) -> Any:
    """max(x, 0)."""
    return jnp.maximum(x, 0.0)


def tanh(x: Any) -> Any:
    """tanh(x)."""
    return jnp.tanh(x)


def erf(x: Any) -> Any:
    """erf(x) = (2/√π)∫_0^x e^{−t²} dt."""
    return _jerf(x)


def linear(x: Any) -> Any:
    """σ(x) = x (Model B of THEORY.md §3)."""
    return jnp.asarray(x) * 1.0


def _nodes() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E over g ~ N(0, 1) (weights summing to 1), 400 nodes.

    NumPy's ``hermegauss(400)`` returns accurate nodes but NaN weights at the 134 outermost nodes
    (its 1/He_{n-1}(x)² underflows; NumPy 2.4). The weights are recomputed here in log space from
    w_i = 1/(n h_{n-1}(x_i)²), h_k = He_k/sqrt(k!) orthonormal for N(0, 1), with the three-term
    recurrence rescaled to avoid overflow; the outermost ones (|x| ≈ 39, w ~ e^{-760}) then
    underflow to exactly 0, which is their value in double precision.
    """
    n = QUADRATURE_NODES
    with np.errstate(all="ignore"):
        x, _ = np.polynomial.hermite_e.hermegauss(n)
    h_prev, h, log_scale = np.zeros_like(x), np.ones_like(x), np.zeros_like(x)
    for k in range(n - 1):
        h_prev, h = h, (x * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
        scale = np.where(np.abs(h) > 1e100, np.abs(h), 1.0)
        h, h_prev, log_scale = h / scale, h_prev / scale, log_scale + np.log(scale)
    log_w = -math.log(n) - 2.0 * (np.log(np.abs(h)) + log_scale)
    with np.errstate(under="ignore"):
        w = np.exp(log_w)
    if not (np.all(np.isfinite(x)) and abs(w.sum() - 1.0) < 1e-10):  # pragma: no cover (NumPy regression)
        raise RuntimeError("Gauss–Hermite quadrature failed")
    return x, w / w.sum()


_X, _W = _nodes()


def _evaluate(name: str, fn: Callable, x: np.ndarray) -> np.ndarray:
    """fn(x) as float64 NumPy; jnp would silently compute in float32 unless x64 is on, so switch
    it on for this call only (never as a side effect of import, DESIGN.md §3)."""
    try:
        # Overflow to inf is reported below as "not finite", with the node, rather than as a warning.
        with jax.enable_x64(True), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = np.asarray(fn(x), dtype=np.float64)
    except Exception as err:  # noqa: BLE001 (any failure of a user's fn on arrays: say which one)
        raise ParameterError(f"activation {name!r}: fn must be elementwise on arrays ({err})") from None
    if out.shape != x.shape:
        raise ParameterError(
            f"activation {name!r}: fn must be elementwise, got shape {out.shape} for {x.shape}"
        )
    if not np.all(np.isfinite(out)):
        bad = float(x[~np.isfinite(out)].ravel()[0])
        raise ParameterError(
            f"activation {name!r}: fn must be finite on the Gauss–Hermite nodes, not at {bad!r}"
        )
    return out


def gaussian_moments(fn: Callable, name: str = "fn") -> tuple[float, float, float, float]:
    """(μ0, μ1, Eσ², μ2) of σ = fn by 400-node Gauss–Hermite quadrature (THEORY_RF §2)."""
    s = _evaluate(name, fn, _X)
    return (
        float(_W @ s),
        float(_W @ (_X * s)),
        float(_W @ s**2),
        float(_W @ ((_X**2 - 1.0) * s)),
    )


ACTIVATIONS: dict[str, Activation] = {}


def register_activation(
    name: str,
    fn: Callable,
    *,
    mu0: float | None = None,
    mu1: float | None = None,
    mu_star: float | None = None,
    mu2: float | None = None,
    kernel: str | None = None,
    overwrite: bool = False,
) -> Activation:
    """Registers an activation; constants not given are computed by Gauss–Hermite quadrature.

    Args:
        name: registry name (a non-empty string).
        fn: elementwise σ written with jax.numpy; must be finite on the 400 quadrature nodes
            (|g| up to about 40), which is checked.
        mu0, mu1, mu_star, mu2: GE constants (THEORY_RF §2); None computes them. A missing μ* is
            sqrt(Eσ² − μ0² − μ1²) with the μ0, μ1 in use.
        kernel: "relu", "erf", "linear" (closed-form kernel, THEORY_RF §9) or None (Mehler series).
        overwrite: allow replacing an existing entry of the same name.

    Returns:
        The registered :class:`Activation`.

    Raises:
        ParameterError: empty name, a name already taken, an unknown kernel, fn not finite on the
            nodes, non-finite constants, μ* < 0, or Eσ² < μ0² + μ1² beyond rounding.
    """
    if not isinstance(name, str) or not name:
        raise ParameterError(f"activation name must be a non-empty string, got {name!r}")
    if name in ACTIVATIONS and not overwrite:
        raise ParameterError(f"activation {name!r} is already registered (pass overwrite=True to replace it)")
    if not callable(fn):
        raise ParameterError(f"activation {name!r}: fn must be callable, got {fn!r}")
    if kernel is not None and kernel not in KERNELS:
        raise ParameterError(f"kernel must be one of {KERNELS} or None, got {kernel!r}")
    q0, q1, second, q2 = gaussian_moments(fn, name)  # also validates fn on the nodes
    given = {"mu0": mu0, "mu1": mu1, "mu_star": mu_star, "mu2": mu2}
    for key, value in given.items():
        if value is not None:
            float(as_array(key, value))  # finite number, named in the message
    mu0 = q0 if mu0 is None else float(mu0)
    mu1 = q1 if mu1 is None else float(mu1)
    mu2 = q2 if mu2 is None else float(mu2)
    if mu_star is None:
        rest = second - mu0**2 - mu1**2
        if rest < -1e-10 * max(second, 1.0):
            raise ParameterError(
                f"activation {name!r}: E σ² = {second:.6g} < μ0² + μ1² = {mu0**2 + mu1**2:.6g}; "
                "the given μ0, μ1 are not those of fn"
            )
        mu_star = math.sqrt(max(rest, 0.0))  # rounding of a linear σ gives ±1e-17
    mu_star = float(mu_star)
    if mu_star < 0:
        raise ParameterError(f"mu_star must be >= 0, got {mu_star!r}")
    act = Activation(name, fn, mu0, mu1, mu_star, mu2, kernel)
    ACTIVATIONS[name] = act
    return act


def get_activation(activation: str | Activation) -> Activation:
    """The :class:`Activation` of a registry name (or the activation itself).

    Raises:
        ParameterError: an unknown name (the message lists the known ones) or a wrong type.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    known = ", ".join(sorted(ACTIVATIONS))
    raise ParameterError(f"activation must be one of {known} (or an Activation), got {activation!r}")


def _normalised_hermite(x: np.ndarray, k_max: int) -> np.ndarray:
    """He_k(x)/sqrt(k!) for k = 0..k_max, shape (k_max+1,) + x.shape, by the stable recurrence
    h_{k+1} = (x h_k − sqrt(k) h_{k−1})/sqrt(k+1) (no factorials, no overflow at |x| ≈ 40)."""
    h = np.empty((k_max + 1,) + x.shape)
    h[0] = 1.0
    if k_max >= 1:
        h[1] = x
    for k in range(1, k_max):
        h[k + 1] = (x * h[k] - math.sqrt(k) * h[k - 1]) / math.sqrt(k + 1)
    return h


def hermite_coefficients(activation: str | Activation, r: Any, k_max: int = 40) -> np.ndarray:
    """ĉ_k(r) = E[σ(r g) He_k(g)]/sqrt(k!), g ~ N(0, 1), for k = 0..k_max (THEORY_RF §9).

    Mehler's formula then gives E σ(r_i g_i)σ(r_j g_j) = Σ_k ρ^k ĉ_k(r_i) ĉ_k(r_j) for standard
    Gaussians g_i, g_j of correlation ρ, and Stein's lemma E σ'(r g) = ĉ_1(r)/r.
    400-node Gauss–Hermite quadrature.

    Args:
        activation: a registry name or an :class:`Activation`.
        r: scales (any shape, finite, >= 0).
        k_max: highest degree (integer >= 0).

    Returns:
        float64 array of shape r.shape + (k_max + 1,).

    Raises:
        ParameterError: unknown activation, negative or non-finite r, bad k_max.
    """
    act = get_activation(activation)
    r = as_array("r", r)
    if (r < 0).any():
        raise ParameterError(f"r must be >= 0, got {float(r[r < 0].ravel()[0])!r}")
    if isinstance(k_max, bool) or int(k_max) != k_max or k_max < 0:
        raise ParameterError(f"k_max must be an integer >= 0, got {k_max!r}")
    k_max = int(k_max)
    values = _evaluate(act.name, act.fn, r[..., None] * _X)  # r.shape + (nodes,)
    basis = _normalised_hermite(_X, k_max) * _W  # (k_max+1, nodes), weights folded in
    return values @ basis.T


def rescaled(activation: str | Activation, variance: float) -> Activation:
    """σ_v(t) = σ(sqrt(v)·t) with its GE constants: the activation seen by unit-variance inputs.

    Used when the pre-activations ⟨w, x⟩/√d have variance v = tr Σ/d ≠ 1: then
    σ(⟨w, x⟩/√d) = σ_v(⟨w, x̃⟩/√d) exactly, with x̃ = x/√v (tr Σ̃/d = 1). Closed forms for ReLU
    and linear (homogeneous: every constant times √v) and erf (μ1 = √v(2/√π)/√(1+2v),
    Eσ_v² = (2/π)arcsin(2v/(1+2v))); otherwise 400-node Gauss–Hermite (μ0 = ĉ0, μ1 = ĉ1,
    μ2 = √2 ĉ2 of :func:`hermite_coefficients` at r = √v). v = 1 returns the activation itself.

    Raises:
        ParameterError: unknown activation or v not finite and > 0.
    """
    act = get_activation(activation)
    v = float(as_array("variance", variance))
    if not v > 0:
        raise ParameterError(f"variance must be > 0 (finite), got {v!r}")
    if v == 1.0:
        return act
    root = math.sqrt(v)
    name = f"{act.name}(sqrt({v:.6g})*t)"
    fn = _Scaled(act.fn, root)
    if act.kernel in ("relu", "linear"):
        return Activation(name, fn, root * act.mu0, root * act.mu1, root * act.mu_star, root * act.mu2, None)
    if act.kernel == "erf":
        mu1 = root * 2.0 / math.sqrt(math.pi * (1.0 + 2.0 * v))
        second = 2.0 / math.pi * math.asin(2.0 * v / (1.0 + 2.0 * v))
        return Activation(name, fn, 0.0, mu1, math.sqrt(max(second - mu1**2, 0.0)), 0.0, None)
    c = hermite_coefficients(act, root, 2)
    second = float(_W @ _evaluate(act.name, act.fn, root * _X) ** 2)
    mu0, mu1, mu2 = float(c[0]), float(c[1]), math.sqrt(2.0) * float(c[2])
    return Activation(name, fn, mu0, mu1, math.sqrt(max(second - mu0**2 - mu1**2, 0.0)), mu2, None)


@dataclasses.dataclass(frozen=True)
class _Scaled:
    """t ↦ fn(scale·t) as a named, comparable callable (a lambda would defeat equality)."""

    fn: Callable
    scale: float

    def __call__(self, x: Any) -> Any:
        return self.fn(self.scale * x)


# Built-ins, registered without calling their jax.numpy fn: evaluating it here would initialise
# the JAX backend at import time (a global side effect; the backend and its flags are the user's
# choice at program start). tanh's quadrature runs on np.tanh, the same function.
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_T = np.tanh(_X)
_T1, _T2 = float(_W @ (_X * _T)), float(_W @ _T**2)
_ERF2 = 2 / math.pi * math.asin(2 / 3)  # E erf(g)², the arcsine kernel at x = x'
for _act in (
    Activation("relu", relu, 1 / _SQRT_2PI, 0.5, math.sqrt(0.25 - 1 / (2 * math.pi)), 1 / _SQRT_2PI, "relu"),
    Activation("tanh", tanh, 0.0, _T1, math.sqrt(_T2 - _T1**2), 0.0, None),  # odd: μ0 = μ2 = 0
    Activation("erf", erf, 0.0, 2 / math.sqrt(3 * math.pi), math.sqrt(_ERF2 - 4 / (3 * math.pi)), 0.0, "erf"),
    Activation("linear", linear, 0.0, 1.0, 0.0, 0.0, "linear"),
):
    ACTIVATIONS[_act.name] = _act
del _act, _T, _T1, _T2, _ERF2
