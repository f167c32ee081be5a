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

__all__ = ["GROUP", "experiment", "experiments", "names", "register_experiment"]

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


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The group's entry points by name, not yet loaded. The same one can be seen twice (an
    installed wheel and the checkout's ``.egg-info`` both on ``sys.path``): the first one wins, as
    Python's own import would."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=GROUP):
        found.setdefault(entry.name, entry)
    return found


def names() -> list[str]:
    """The names of all registered experiments, sorted (nothing is imported)."""
    known = sorted(set(_entry_points()) | set(_REGISTERED))
    if not known:
        raise ParameterError(
            f"no experiments are registered (entry-point group {GROUP!r}): install the package "
            "with `pip install .` (or `pip install -e .`) so that its entry points exist"
        )
    return known


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; only its own module is imported.

    Raises:
        ParameterError: no such experiment (the message lists the known ones), or its plugin fails
            to import or is not an :class:`Experiment`.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    entries = _entry_points()
    if name not in entries:
        raise ParameterError(f"unknown experiment {name!r}; choose one of {', '.join(names())}")
    return _load(entries[name])


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name (entry points, then ``register_experiment`` calls)."""
    return {name: experiment(name) for name in names()}
