"""``strongcollapse plot RUN_DIR``: redraw a run's figure from its CSVs, computing nothing.

The run's ``meta.json`` names the experiment and holds its resolved config; the experiment's
``draw`` function gets ``results.csv`` and ``curves.csv`` back as tables, exactly as at the end of
the run (:func:`strongcollapse.orchestration.runner.draw_figure`), so the redrawn figure is the
same. Edit ``draw`` (or the CSV) and rerun ``plot`` to restyle a figure without the simulation.
"""

from __future__ import annotations

import json
import pathlib

from strongcollapse.orchestration.plotting import save
from strongcollapse.orchestration.registry import experiment
from strongcollapse.orchestration.runner import draw_figure
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["replot"]


def replot(run_dir: str | pathlib.Path) -> list[pathlib.Path]:
    """Redraws the figure of the run in ``run_dir``; returns the paths written (PNG, PDF).

    Raises:
        ParameterError: ``run_dir`` is not a run folder (no readable meta.json naming a registered
            experiment) or has no results.csv.
    """
    folder = pathlib.Path(run_dir)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise ParameterError(f"RUN_DIR must be a folder written by `strongcollapse run` (with meta.json), got {str(folder)!r}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        name, config = meta["experiment"], meta["config"]
    except (ValueError, KeyError, TypeError):
        raise ParameterError(f"{meta_path} is not a strongcollapse meta.json (no experiment and config)") from None
    exp = experiment(name)
    files = save(draw_figure(exp, config, folder), folder, exp.name)
    return [folder / file for file in files]
