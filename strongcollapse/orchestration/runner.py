"""Runs an experiment: resolves its config, prepares the run folder, reports progress, writes meta.

An experiment (see :mod:`experiments`) is declarative: a default config, ``--quick`` overrides, a
``run(config, ctx)`` function that composes theory and simulation into CSV rows, and a
``draw(config, results, curves)`` function that turns those rows into a figure. Everything common
(folders, hashes, versions, timings, resume store, progress lines) lives here.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Any, Callable

from strongcollapse.orchestration.config import apply_sets, check_like, check_seed, config_hash, merge
from strongcollapse.orchestration.results import ChunkStore, environment, write_json
from strongcollapse.orchestration.tables import Table
from strongcollapse.simulate.devices import is_writer
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["Experiment", "RunContext", "run_experiment", "draw_figure"]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A reproducible claim.

    Attributes:
        name: the CLI name (``strongcollapse run NAME``), also the figure's file stem.
        summary: one line for ``strongcollapse list``.
        config: the default config (JSON values); ``quick``: overrides for ``--quick``.
        run: ``run(config, ctx) -> summary``; fills a :class:`~strongcollapse.orchestration.report.Report`
            and ends with ``report.finish(ctx)``.
        draw: ``draw(config, results, curves) -> Figure`` from the run's two CSV tables alone
            (``strongcollapse plot`` calls it without recomputing).
        paper: the paper it reproduces, as cited on the report page.
        claim: the claim the figure checks, one or two sentences for the report page.
        validate: ``validate(config)`` checks the whole resolved config (every panel, every
            spectrum file) and raises ParameterError before anything is computed; the runner and
            ``reproduce`` call it first.
    """

    name: str
    summary: str
    config: dict[str, Any]
    quick: dict[str, Any]
    run: Callable[[dict[str, Any], "RunContext"], dict[str, Any]]
    draw: Callable[[dict[str, Any], Table, Table], Any]
    paper: str = ""
    claim: str = ""
    validate: Callable[[dict[str, Any]], Any] | None = None


def draw_figure(experiment: Experiment, config: dict[str, Any], folder: pathlib.Path) -> Any:
    """The experiment's figure, drawn from ``folder/results.csv`` and ``folder/curves.csv``."""
    results = Table.read_csv(folder / "results.csv")
    if not len(results):
        raise ParameterError(f"{folder / 'results.csv'} is missing or empty: nothing to draw")
    return experiment.draw(config, results, Table.read_csv(folder / "curves.csv"))


class Progress:
    """Progress of one simulation: the plan first, then done/total, rate and ETA per chunk."""

    def __init__(self, ctx: "RunContext", label: str) -> None:
        self.ctx, self.label, self.last = ctx, label, 0.0

    def plan(self, plan: Any) -> None:
        self.ctx.log(f"[{self.ctx.name}] {self.label}: plan: {plan.describe()}")

    def __call__(self, done: int, total: int, seconds: float) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < self.ctx.min_interval:
            return
        self.last = now
        rate = done / seconds if seconds > 0 else float("inf")
        eta = (total - done) / rate if rate > 0 else 0.0
        self.ctx.log(
            f"[{self.ctx.name}] {self.label}: {done}/{total} trials ({done / total:.0%}), "
            f"{rate:,.0f} fits/s, ETA {eta:.0f} s"
        )


@dataclasses.dataclass
class RunContext:
    """What an experiment's run function gets besides its config (which it also holds)."""

    experiment: Experiment
    config: dict[str, Any]
    out: pathlib.Path
    seed: int
    quick: bool
    store: ChunkStore
    log: Callable[[str], None] = print
    min_interval: float = 2.0
    devices: int | None = None
    chunk_size: int | None = None
    memory_budget: int | None = None

    @property
    def name(self) -> str:
        """The experiment's name (log prefix)."""
        return self.experiment.name

    def progress(self, label: str) -> Progress:
        """A progress callback: the plan, then done/total, rate and ETA at most every ``min_interval`` s."""
        return Progress(self, label)

    def simulation(self, label: str) -> dict[str, Any]:
        """Keyword arguments for a ``strongcollapse.simulate`` call: resume store, progress and the
        engine options of the command line (devices, chunk size, memory budget)."""
        return {
            "store": self.store,
            "progress": self.progress(label),
            "devices": self.devices,
            "chunk_size": self.chunk_size,
            "memory_budget": self.memory_budget,
        }


def resolve_config(
    experiment: Experiment, *, quick: bool, sets: list[str], seed: int | None
) -> dict[str, Any]:
    """Defaults, then ``--quick`` overrides, then ``--set`` assignments, then ``--seed``."""
    config = merge(experiment.config, experiment.quick) if quick else merge(experiment.config, {})
    config = apply_sets(config, sets)
    if seed is not None:
        config["seed"] = seed
    if "seed" in config:
        config["seed"] = check_seed(config["seed"])
    check_like(experiment.config, config)
    if experiment.validate is not None:
        experiment.validate(config)
    return config


def run_experiment(
    experiment: Experiment,
    *,
    quick: bool = False,
    out: str | pathlib.Path | None = None,
    seed: int | None = None,
    sets: list[str] | None = None,
    log: Callable[[str], None] = print,
    devices: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """Runs ``experiment`` and returns its meta dict (also written to ``<out>/meta.json``).

    Finished Monte Carlo chunks are stored under ``<out>/chunks`` as they complete; rerunning the
    same command after an interruption recomputes nothing that was finished. In a multi-process
    run every process computes, and only process 0 logs and writes.
    """
    config = resolve_config(experiment, quick=quick, sets=list(sets or []), seed=seed)
    folder = (
        pathlib.Path(out)
        if out is not None
        else pathlib.Path("runs") / (experiment.name + ("-quick" if quick else ""))
    )
    writer = is_writer()
    if not writer:
        log = _silent
    meta: dict[str, Any] = {
        "experiment": experiment.name,
        "quick": quick,
        "config": config,
        "config_hash": config_hash(config),
        "seed": config.get("seed"),
        "environment": environment(),
        "engine": {"devices": devices, "chunk_size": chunk_size, "memory_budget": memory_budget},
        "status": "running",
    }
    if writer:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "meta.json", meta)
    ctx = RunContext(
        experiment,
        config,
        folder,
        int(config.get("seed", 0)),
        quick,
        ChunkStore(folder / "chunks", read_only=not writer),
        log,
        devices=devices,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    log(f"[{experiment.name}] config {meta['config_hash']} -> {folder}")
    started = time.perf_counter()
    summary = experiment.run(config, ctx)
    meta.update(
        status="finished",
        seconds=round(time.perf_counter() - started, 3),
        chunks={"reused": ctx.store.hits, "written": ctx.store.writes},
        **summary,
    )
    if writer:
        write_json(folder / "meta.json", meta)
    log(f"[{experiment.name}] done in {meta['seconds']:.1f} s; outputs in {folder}")
    return meta


def _silent(_: str) -> None:
    """Non-writing processes of a multi-process run stay quiet (process 0 speaks for all)."""
