"""The shared vocabulary of a mixed real/synthetic regression problem.

A :class:`Problem` holds what does not change along a sweep: Σ's eigenvalues and the two teachers,
in Σ's eigenbasis. The swept scalars (n, p, λ, σ1, σ2, and later m) are passed separately, so
they can be broadcast and vmapped (DESIGN.md §2).

Synthetic fraction convention (used by theory and simulation alike): of n training samples exactly
``synthetic_count(n, p) = rint(p·n)`` are synthetic (round half to even, as ``numpy.rint`` and
``jax.numpy.rint``), so the realised fraction is rint(p·n)/n.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from strongcollapse.vocabulary.spectra import Spectrum, make_spectrum
from strongcollapse.vocabulary.teachers import sigma_inner, source_teacher, synthetic_shift
from strongcollapse.vocabulary.validation import ParameterError, check_eigenvalues, check_vector

__all__ = ["Problem", "synthetic_count"]


def synthetic_count(n: Any, p: Any) -> np.ndarray:
    """Number of synthetic samples among n: rint(p·n) (round half to even)."""
    return np.rint(np.asarray(p, dtype=np.float64) * np.asarray(n, dtype=np.float64))


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """Σ's eigenvalues and the teachers w1, Δ = w2 − w1 (all (d,), in Σ's eigenbasis).

    Build one from a spectrum and teacher parameters with :meth:`build`, or from a config dict with
    :meth:`from_config`. Arrays are validated on construction.
    """

    eigs: np.ndarray
    w1: np.ndarray
    delta: np.ndarray

    def __post_init__(self) -> None:
        eigs = check_eigenvalues("eigs", self.eigs)
        object.__setattr__(self, "eigs", eigs)
        object.__setattr__(self, "w1", check_vector("w1", self.w1, eigs.shape[0]))
        object.__setattr__(self, "delta", check_vector("delta", self.delta, eigs.shape[0]))

    @classmethod
    def build(
        cls,
        spectrum: Spectrum | dict[str, Any],
        d: int,
        *,
        source: float = 0.0,
        signal: float = 1.0,
        c2: float = 1.0,
        corr: float = 0.0,
    ) -> "Problem":
        """Spectrum + source-exponent teacher + shift of quality c² and correlation ρ."""
        eigs = make_spectrum(spectrum).eigenvalues(d)
        w1 = source_teacher(eigs, source=source, signal=signal)
        return cls(eigs, w1, synthetic_shift(eigs, w1, c2=c2, corr=corr))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Problem":
        """From ``{"spectrum": {...}, "d": int, "source", "signal", "c2", "corr"}``."""
        known = {"spectrum", "d", "source", "signal", "c2", "corr"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ParameterError(f"problem config takes keys {sorted(known)}, got unknown {unknown}")
        if "spectrum" not in config or "d" not in config:
            raise ParameterError("problem config needs 'spectrum' and 'd'")
        rest = {k: config[k] for k in ("source", "signal", "c2", "corr") if k in config}
        return cls.build(config["spectrum"], config["d"], **rest)

    @property
    def d(self) -> int:
        """Dimension."""
        return int(self.eigs.shape[0])

    @property
    def w2(self) -> np.ndarray:
        """Synthetic teacher w2 = w1 + Δ."""
        return self.w1 + self.delta

    @property
    def c2(self) -> float:
        """Quality c² = ⟨Δ, ΣΔ⟩."""
        return sigma_inner(self.eigs, self.delta, self.delta)

    @property
    def signal(self) -> float:
        """Signal power ‖w1‖²_Σ."""
        return sigma_inner(self.eigs, self.w1, self.w1)

    @property
    def corr(self) -> float:
        """Σ-cosine between w1 and Δ (0 when either vanishes)."""
        den = np.sqrt(self.signal * self.c2)
        return float(sigma_inner(self.eigs, self.w1, self.delta) / den) if den > 0 else 0.0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(eigs, w1, delta), the positional arguments of the theory and simulation entry points."""
        return self.eigs, self.w1, self.delta
