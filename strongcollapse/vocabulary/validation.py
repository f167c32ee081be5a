"""Input validation shared by every public entry point.

Each checker converts its input to a float64 NumPy array (validation happens on concrete values,
before anything is traced by JAX) and raises ``ValueError`` whose message names the parameter, the
allowed range and the offending value, e.g. ``p must be in [0, 1], got 1.5``. The CLI turns these
messages into one line on stderr and exit code 2.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = [
    "ParameterError",
    "as_array",
    "check_in_range",
    "check_nonnegative",
    "check_positive",
    "check_count",
    "check_vector",
    "check_eigenvalues",
    "broadcast_named",
    "require_x64",
    "check_covariance",
]


class ParameterError(ValueError):
    """Out-of-range or malformed input, with a message naming the parameter and its allowed range.

    A ValueError, so callers may catch either; the CLI reports exactly these (and its own usage
    errors) as one line with exit code 2, while any other exception is a bug and keeps its traceback.
    """


def _describe(value: np.ndarray) -> str:
    """Shows the first offending entry of an array, or the scalar itself."""
    flat = np.ravel(value)
    return repr(float(flat[0])) if flat.size == 1 else f"an array containing {float(flat[0])!r}"


def as_array(name: str, value: Any) -> np.ndarray:
    """Converts ``value`` to a finite float64 array or raises ``ValueError`` naming ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ParameterError(f"{name} must be a number or an array of numbers, got {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if arr.size == 0:
        raise ParameterError(f"{name} must not be empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(f"{name} must be finite, got {_describe(arr[bad])}")
    return arr


def check_in_range(name: str, value: Any, lo: float, hi: float) -> np.ndarray:
    """Finite values in the closed interval [lo, hi]."""
    arr = as_array(name, value)
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        raise ParameterError(f"{name} must be in [{lo:g}, {hi:g}], got {_describe(arr[bad])}")
    return arr


def check_nonnegative(name: str, value: Any) -> np.ndarray:
    """Finite values >= 0."""
    arr = as_array(name, value)
    if (arr < 0).any():
        raise ParameterError(f"{name} must be >= 0 (finite), got {_describe(arr[arr < 0])}")
    return arr


def check_positive(name: str, value: Any) -> np.ndarray:
    """Finite values > 0."""
    arr = as_array(name, value)
    if (arr <= 0).any():
        raise ParameterError(f"{name} must be > 0 (finite), got {_describe(arr[arr <= 0])}")
    return arr


def check_count(name: str, value: Any, minimum: int = 1) -> np.ndarray:
    """Whole numbers >= ``minimum`` (sample sizes, trial counts), returned as int64."""
    arr = as_array(name, value)
    bad = (arr < minimum) | (arr != np.round(arr))
    if bad.any():
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {_describe(arr[bad])}")
    return arr.astype(np.int64)


def check_vector(name: str, value: Any, d: int | None = None) -> np.ndarray:
    """A finite 1-D float64 vector, of length ``d`` when given."""
    arr = as_array(name, value)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if d is not None and arr.shape[0] != d:
        raise ParameterError(
            f"{name} must have length d = {d} (one coordinate per eigenvalue), got length {arr.shape[0]}"
        )
    return arr


def check_eigenvalues(name: str, value: Any) -> np.ndarray:
    """Positive finite eigenvalues in non-increasing order, shape (d,)."""
    arr = check_vector(name, value)
    if (arr <= 0).any():
        raise ParameterError(f"{name} must be > 0 (finite), got {_describe(arr[arr <= 0])}")
    if (np.diff(arr) > 0).any():
        raise ParameterError(f"{name} must be sorted in non-increasing order (descending)")
    return arr


def broadcast_named(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcasts named arrays together; a mismatch names the parameters and their shapes."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise ParameterError(f"parameters must broadcast to a common shape, got {shapes}") from None


def require_x64() -> None:
    """Refuses to compute in float32 by accident (DESIGN.md §3).

    strongcollapse verifies theory against simulation to a fraction of a percent, which float32
    cannot support near interpolation thresholds. x64 is switched on at program entry (the CLI,
    the test ``conftest``) or by the user, never as a side effect of ``import``.
    """
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "strongcollapse computes in float64: call strongcollapse.enable_x64() "
            "(or jax.config.update('jax_enable_x64', True)) at program start"
        )


def check_covariance(name: str, value: Any, d: int) -> np.ndarray:
    """Σ2 in Σ1's eigenbasis: a (d,) positive vector or a (d, d) symmetric positive definite matrix.

    Raises:
        ParameterError: wrong shape, non-finite, non-positive, non-symmetric or not positive definite.
    """
    arr = as_array(name, value)
    if arr.ndim == 1:
        if arr.shape[0] != d:
            raise ParameterError(f"{name} must have length d = {d} (or shape ({d}, {d})), got {arr.shape[0]}")
        if (arr <= 0).any():
            bad = float(arr[arr <= 0][0])
            raise ParameterError(f"{name} must be > 0 (Σ2 positive definite), got {bad!r}")
        return arr
    if arr.ndim != 2 or arr.shape != (d, d):
        raise ParameterError(f"{name} must have shape ({d},) or ({d}, {d}), got {arr.shape}")
    scale = float(np.max(np.abs(arr)))
    if np.max(np.abs(arr - arr.T)) > 1e-12 * scale:
        raise ParameterError(f"{name} must be symmetric (|Σ2 − Σ2ᵀ| <= 1e-12 max|Σ2|)")
    arr = 0.5 * (arr + arr.T)
    smallest = float(np.linalg.eigvalsh(arr)[0])
    if not smallest > 1e-14 * scale:
        raise ParameterError(
            f"{name} must be positive definite (smallest eigenvalue > 0), "
            f"got smallest eigenvalue {smallest!r}"
        )
    return arr
