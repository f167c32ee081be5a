"""The experiment registry: entry points of the group ``strongcollapse.experiments``, plus code
loaded with ``--import``.

Experiments sit on top of the house and everything below must not import them, so the CLI finds
them the way pytest finds plugins: through Python entry points. This package declares its own in
``pyproject.toml``; any installed distribution can add more::

    [project.entry-points."strongcollapse.experiments"]
    my-figure = "my_package.my_module:EXPERIMENT"

and ``strongcollapse list/run/reproduce`` then show them. A file or module given to ``--import``
can call :func:`register_experiment` instead (no packaging needed).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from strongcollapse.orchestration.runner import Experiment
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["GROUP", "experiments", "register_experiment"]

GROUP = "strongcollapse.experiments"

# Experiments registered at run time (``--import`` code); entry points are read on every call, so a
# distribution installed after import time is still seen.
_REGISTERED: dict[str, Experiment] = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Adds an experiment for this process (e.g. from a file given to ``--import``); returns it."""
    if not isinstance(experiment, Experiment):
        raise ParameterError(f"register_experiment needs an Experiment, got {type(experiment).__name__}")
    _REGISTERED[experiment.name] = experiment
    return experiment


def _load(entry: importlib.metadata.EntryPoint) -> Experiment:
    try:
        loaded: Any = entry.load()
    except Exception as err:  # a broken plugin is the user's input, reported in one line
        raise ParameterError(
            f"experiment plugin {entry.name!r} ({entry.value}) failed to load: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(loaded, Experiment):
        raise ParameterError(
            f"experiment plugin {entry.name!r} ({entry.value}) is a {type(loaded).__name__}, "
            "not a strongcollapse Experiment"
        )
    if loaded.name != entry.name:
        raise ParameterError(
            f"experiment plugin {entry.name!r} ({entry.value}) is named {loaded.name!r}: "
            "the entry-point name must be the experiment's name"
        )
    return loaded


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name: entry points first, then ``register_experiment`` calls.

    The same entry point can be seen twice (an installed wheel and the checkout's ``.egg-info``
    both on ``sys.path``); the first one wins, as Python's own import would.

    Raises:
        ParameterError: a plugin fails to import or is not an :class:`Experiment`; or none is
            registered at all (the package is not installed).
    """
    found: dict[str, Experiment] = {}
    for entry in importlib.metadata.entry_points(group=GROUP):
        if entry.name not in found:
            found[entry.name] = _load(entry)
    found.update(_REGISTERED)
    if not found:
        raise ParameterError(
            f"no experiments are registered (entry-point group {GROUP!r}): install the package "
            "with `pip install .` (or `pip install -e .`) so that its entry points exist"
        )
    return found


def experiment(name: str) -> Experiment:
    """The experiment called ``name``.

    Raises:
        ParameterError: no such experiment (the message lists the known ones).
    """
    known = experiments()
    if name not in known:
        raise ParameterError(f"unknown experiment {name!r}; choose one of {', '.join(sorted(known))}")
    return known[name]
