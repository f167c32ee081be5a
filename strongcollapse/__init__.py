"""strongcollapse: theory and simulation of strong model collapse.

Importing the package only defines the shared vocabulary (spectra, teachers, problems); the
simulation engine lives in :mod:`strongcollapse.simulate`, the theory in the sibling package
:mod:`analytic`. Nothing here changes JAX's global configuration: call :func:`enable_x64` at
program start (the CLI and the test-suite do).
"""

from __future__ import annotations

import os

# XLA's C++ runtime logs a warning for every executable it loads from the persistent compilation
# cache ("Assume version compatibility ..."), which would bury the CLI's one-line messages. C++
# warnings stay off unless the user chose a level (it must be set before jax loads its runtime).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

from strongcollapse.vocabulary.problem import Problem, synthetic_count
from strongcollapse.vocabulary.spectra import (
    SPECTRA,
    FromEigenvalues,
    Isotropic,
    PowerLaw,
    Spectrum,
    make_spectrum,
    register_spectrum,
)
from strongcollapse.vocabulary.teachers import source_teacher, synthetic_shift
from strongcollapse.vocabulary.validation import ParameterError

__version__ = "0.1.0"

__all__ = [
    "Problem",
    "synthetic_count",
    "SPECTRA",
    "Spectrum",
    "Isotropic",
    "PowerLaw",
    "FromEigenvalues",
    "make_spectrum",
    "register_spectrum",
    "source_teacher",
    "synthetic_shift",
    "enable_x64",
    "ParameterError",
    "__version__",
]


def enable_x64() -> None:
    """Switches JAX to float64 for the whole program (strongcollapse refuses float32 by accident)."""
    jax.config.update("jax_enable_x64", True)
