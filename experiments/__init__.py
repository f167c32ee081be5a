"""The paper's claims as runnable experiments: ``strongcollapse run NAME``.

Each module defines one :class:`strongcollapse.runner.Experiment` (a default config, ``--quick``
overrides and a thin ``run`` that composes theory, simulation, CSV and figure). Shipped in the
wheel, so the CLI works from any directory after ``pip install .``.
"""

from __future__ import annotations

from strongcollapse.runner import Experiment

from experiments import collapse_gap, pareto, scaling, scaling_width, strong_collapse, width

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        strong_collapse.EXPERIMENT,
        width.EXPERIMENT,
        collapse_gap.EXPERIMENT,
        pareto.EXPERIMENT,
        scaling.EXPERIMENT,
        scaling_width.EXPERIMENT,
    )
}

__all__ = ["EXPERIMENTS"]
