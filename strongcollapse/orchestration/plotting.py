"""Figure helpers shared by the experiments (matplotlib, no pyplot state, headless-safe).

Conventions (DESIGN.md §5): theory as lines, simulation as markers with error bars whose meaning
is stated in the legend, log-log axes for scaling, a dashed line at the interpolation threshold.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["new_figure", "theory_and_simulation", "threshold", "legend_keys", "save", "colors"]


def colors(count: int) -> list[Any]:
    """Distinguishable colours for ``count`` curves (viridis without its pale end)."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, max(count, 1))]


def new_figure(rows: int, cols: int, *, width: float = 5.2, height: float = 4.0) -> tuple[Figure, np.ndarray]:
    """A figure with a rows×cols grid of axes (always a 2-D array)."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def theory_and_simulation(
    ax: Any,
    x_theory: np.ndarray,
    theory: np.ndarray,
    x_sim: np.ndarray,
    mean: np.ndarray,
    sem: np.ndarray,
    *,
    color: Any,
    label: str,
    z: float = 2.0,
) -> None:
    """Theory line and simulation markers with ±z·s.e. error bars, in one colour."""
    ax.plot(x_theory, theory, color=color, lw=1.6, label=label)
    lower = np.minimum(z * sem, mean * (1 - 1e-9))  # keep the bar inside a log axis
    ax.errorbar(
        x_sim,
        mean,
        yerr=[lower, z * sem],
        fmt="o",
        ms=4,
        color=color,
        mfc="white",
        mew=1.2,
        elinewidth=1.0,
        capsize=2,
    )


def threshold(ax: Any, x: float, label: str = "interpolation threshold") -> None:
    """Dashed vertical line at an interpolation threshold."""
    ax.axvline(x, color="0.35", ls="--", lw=1.0, label=label)


def legend_keys(z: float, trials: int, plateau: str | None = None) -> list[Line2D]:
    """Legend entries explaining lines, markers and (optionally) plateau lines."""
    keys = [
        Line2D([], [], color="0.2", lw=1.6, label="theory (deterministic equivalent)"),
        Line2D(
            [],
            [],
            color="0.2",
            marker="o",
            mfc="white",
            ls="none",
            label=f"simulation: mean ± {z:g} s.e. ({trials} trials)",
        ),
    ]
    if plateau:
        keys.append(Line2D([], [], color="0.2", ls=":", lw=1.2, label=plateau))
    return keys


def save(
    fig: Figure, folder: pathlib.Path, name: str, *, formats: Sequence[str] = ("png", "pdf")
) -> list[str]:
    """Saves the figure as ``folder/name.{png,pdf}``; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, metadata={"Creator": "strongcollapse"} if fmt == "png" else None)
        files.append(path.name)
        # The constrained layout (in inches, so the same for every format) is solved by the first
        # save; keeping it for the others saves a third of the time of a many-panel figure.
        fig.set_layout_engine("none")
    return files
