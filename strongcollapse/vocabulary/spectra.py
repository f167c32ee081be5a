"""Covariance spectra Σ = diag(e_1 ≥ … ≥ e_d > 0), named in configs through a registry.

Gaussian ridge risk is rotation invariant, so a spectrum (the eigenvalues of Σ) is all the
package ever needs of a covariance: every vector lives in Σ's eigenbasis (THEORY.md §0).

A new spectrum is one small class plus ``@register_spectrum("name")``; configs then say
``{"kind": "name", ...}`` and the registry-parametrised tests pick it up. A spectrum defined
outside the package works the same way (see the README, "Adding a spectrum").

Example:
    >>> PowerLaw(beta=2.0).eigenvalues(3)
    array([1.        , 0.25      , 0.11111111])
"""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from typing import Any, Callable, ClassVar

import numpy as np

from strongcollapse.vocabulary.validation import ParameterError, check_count, check_eigenvalues, check_positive

__all__ = [
    "Spectrum",
    "Isotropic",
    "PowerLaw",
    "FromEigenvalues",
    "SPECTRA",
    "register_spectrum",
    "make_spectrum",
]

SPECTRA: dict[str, type["Spectrum"]] = {}


def register_spectrum(name: str) -> Callable[[type["Spectrum"]], type["Spectrum"]]:
    """Class decorator: makes a spectrum constructible from ``{"kind": name, **fields}``."""

    def decorate(cls: type[Spectrum]) -> type[Spectrum]:
        if name in SPECTRA and SPECTRA[name] is not cls:
            raise ParameterError(f"spectrum kind {name!r} is already registered")
        cls.kind = name
        SPECTRA[name] = cls
        return cls

    return decorate


class Spectrum(abc.ABC):
    """Eigenvalues of a covariance, for any dimension d."""

    kind: ClassVar[str] = ""

    def eigenvalues(self, d: int) -> np.ndarray:
        """Returns the d eigenvalues, float64, descending and positive (validated)."""
        d = int(check_count("d", d, minimum=1))
        return check_eigenvalues(f"eigenvalues of {type(self).__name__}", self._eigenvalues(d))

    @abc.abstractmethod
    def _eigenvalues(self, d: int) -> np.ndarray:
        """Unvalidated eigenvalues for dimension d."""

    def to_config(self) -> dict[str, Any]:
        """The registry form, ``{"kind": ..., **fields}``, that :func:`make_spectrum` inverts."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"kind": self.kind, **fields}


@register_spectrum("isotropic")
@dataclasses.dataclass(frozen=True)
class Isotropic(Spectrum):
    """Σ = scale · I. Here c² = scale · ‖Δ‖² (THEORY.md §2, isotropic closed forms)."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        check_positive("scale", self.scale)

    def _eigenvalues(self, d: int) -> np.ndarray:
        return np.full(d, float(self.scale))


@register_spectrum("power_law")
@dataclasses.dataclass(frozen=True)
class PowerLaw(Spectrum):
    """e_k = k^-β, k = 1..d (so e_1 = 1 and tr Σ stays bounded as d → ∞ for β > 1; THEORY.md §4)."""

    beta: float = 1.5

    def __post_init__(self) -> None:
        check_positive("beta", self.beta)

    def _eigenvalues(self, d: int) -> np.ndarray:
        return np.arange(1, d + 1, dtype=np.float64) ** (-float(self.beta))


@register_spectrum("from_eigenvalues")
@dataclasses.dataclass(frozen=True)
class FromEigenvalues(Spectrum):
    """Given eigenvalues (e.g. measured), inline or from a ``.npy`` file.

    Exactly one of ``eigs`` and ``path`` is given. Values are sorted into descending order; the
    requested d must equal their number (no silent truncation or padding).
    """

    eigs: tuple[float, ...] | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.eigs is None) == (self.path is None):
            raise ParameterError("FromEigenvalues needs exactly one of eigs and path")
        if self.eigs is not None:
            values = np.sort(np.asarray(self.eigs, dtype=np.float64).ravel())[::-1]
            check_positive("eigs", values)
            object.__setattr__(self, "eigs", tuple(float(v) for v in values))

    def values(self) -> np.ndarray:
        """All eigenvalues, descending."""
        if self.eigs is not None:
            return np.asarray(self.eigs)
        file = pathlib.Path(self.path).expanduser()  # type: ignore[arg-type]
        if not file.is_file():
            raise ParameterError(f"path must name an existing .npy file of eigenvalues, got {self.path!r}")
        # Only the .npy format of np.save: np.load would also open a .npz archive (a dict-like of
        # arrays) or try a text file as a pickle, each with an obscure error.
        with file.open("rb") as handle:
            magic = handle.read(6)
        if magic != b"\x93NUMPY":
            raise ParameterError(
                f"path must name a .npy file written by numpy.save (one array of eigenvalues), got {self.path!r}"
                + (" (a .npz archive: save the one array with numpy.save)" if magic[:2] == b"PK" else "")
            )
        try:
            loaded = np.load(file, allow_pickle=False)
        except ValueError as err:
            raise ParameterError(f"path {self.path!r} is not a readable .npy array: {err}") from None
        if loaded.dtype.kind not in "iuf":
            raise ParameterError(f"path {self.path!r} must hold real numbers, got dtype {loaded.dtype}")
        values = np.sort(np.asarray(loaded, dtype=np.float64).ravel())[::-1]
        return check_positive(f"eigenvalues in {self.path}", values)

    @property
    def dimension(self) -> int:
        """The number of eigenvalues given."""
        return int(self.values().shape[0])

    def _eigenvalues(self, d: int) -> np.ndarray:
        values = self.values()
        if values.shape[0] != d:
            raise ParameterError(f"d must equal the number of given eigenvalues ({values.shape[0]}), got {d}")
        return values


def make_spectrum(config: dict[str, Any] | Spectrum) -> Spectrum:
    """Builds a spectrum from its registry form, e.g. ``{"kind": "power_law", "beta": 1.5}``."""
    if isinstance(config, Spectrum):
        return config
    if not isinstance(config, dict) or "kind" not in config:
        raise ParameterError(f"spectrum must be a dict with a 'kind' key, got {config!r}")
    fields = dict(config)
    kind = fields.pop("kind")
    if kind not in SPECTRA:
        raise ParameterError(f"spectrum kind must be one of {sorted(SPECTRA)}, got {kind!r}")
    cls = SPECTRA[kind]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ParameterError(f"spectrum {kind!r} takes fields {sorted(names)}, got unknown {unknown}")
    if "eigs" in fields and fields["eigs"] is not None:
        fields["eigs"] = tuple(np.asarray(fields["eigs"], dtype=np.float64).ravel())
    return cls(**fields)
