"""The common tail of every experiment: collect comparisons, write CSVs and figure, summarise.

An experiment's ``run`` adds each theory-vs-simulation block to a :class:`Report` (with its
finite-size allowance and the theory's solver report), a row per grid cell (``rows`` →
``results.csv``) and the dense theory lines its figure needs (``curves`` → ``curves.csv``);
``finish`` then writes both CSVs, reads them back and hands them to the experiment's ``draw``
function, saves the figure, logs the agreement line, and returns the summary that the runner
stores in ``meta.json``. Because the figure is always drawn from the CSVs,
``strongcollapse plot RUN_DIR`` redraws exactly the same figure without recomputing anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from strongcollapse.analysis.compare import summarise
from strongcollapse.orchestration.plotting import save
from strongcollapse.orchestration.results import write_csv
from strongcollapse.orchestration.runner import RunContext, draw_figure
from strongcollapse.simulate.devices import is_writer

__all__ = ["Report"]


@dataclasses.dataclass
class Report:
    """Accumulates theory-vs-simulation blocks, CSV rows and solver convergence of one run."""

    r_text: str
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    curves: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    _blocks: list[tuple[np.ndarray, ...]] = dataclasses.field(default_factory=list)
    convergence: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"all_converged": True, "max_iterations": 0, "max_residual": 0.0}
    )

    def compare(self, mean: Any, sem: Any, theory: Any, allowance: Any) -> None:
        """Adds a block of cells to the agreement summary (arrays broadcast together)."""
        arrays = np.broadcast_arrays(
            *(np.asarray(a, dtype=np.float64) for a in (mean, sem, theory, allowance))
        )
        self._blocks.append(tuple(np.ravel(a) for a in arrays))

    def solver(self, result: Any) -> None:
        """Records a theory result's fixed-point report (converged, iterations, residual)."""
        c = self.convergence
        c["all_converged"] &= bool(np.all(result.converged))
        c["max_iterations"] = max(c["max_iterations"], int(np.max(result.iterations)))
        c["max_residual"] = max(c["max_residual"], float(np.max(result.residual)))

    def finish(self, ctx: RunContext, **extra: Any) -> dict[str, Any]:
        """Writes the CSVs and the figure drawn from them (PNG + PDF), logs the summary, returns
        what goes into meta.json."""
        name = ctx.experiment.name
        files = [f"{name}.png", f"{name}.pdf"]
        tables = ["results.csv"] + (["curves.csv"] if self.curves else [])
        if is_writer():  # process 0 writes for a multi-process run
            write_csv(ctx.out / "results.csv", self.rows)
            if self.curves:
                write_csv(ctx.out / "curves.csv", self.curves)
            files = save(draw_figure(ctx.experiment, ctx.config, ctx.out), ctx.out, name)
        mean, sem, theory, allowance = (np.concatenate(parts) for parts in zip(*self._blocks))
        agreement = summarise(mean, sem, theory, allowance, r_text=self.r_text)
        ctx.log(f"[{ctx.name}] {agreement.line()}")
        for line in self.notes:
            ctx.log(f"    {line}")
        if not self.convergence["all_converged"]:
            ctx.log(f"[{ctx.name}] WARNING: a fixed-point solve did not converge (see meta.json)")
        return {
            "agreement": agreement.__dict__ | {"ok": agreement.ok},
            "convergence": self.convergence,
            "notes": self.notes,
            "files": files + tables + ["meta.json"],
            **extra,
        }
