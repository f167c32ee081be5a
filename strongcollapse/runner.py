"""Runs an experiment: resolves its config, prepares the run folder, reports progress, writes meta.

An experiment (see :mod:`experiments`) is declarative: a default config, ``--quick`` overrides and
a ``run(config, ctx)`` function that composes theory, simulation, CSV and figure. Everything common
(folders, hashes, versions, timings, resume store, progress lines) lives here.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Any, Callable

from strongcollapse.config import apply_sets, config_hash, merge
from strongcollapse.results import ChunkStore, environment, write_json
from strongcollapse.validation import ParameterError

__all__ = ["Experiment", "RunContext", "run_experiment"]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A reproducible claim: name, one-line summary, default config, quick overrides, run function."""

    name: str
    summary: str
    config: dict[str, Any]
    quick: dict[str, Any]
    run: Callable[[dict[str, Any], "RunContext"], dict[str, Any]]


@dataclasses.dataclass
class RunContext:
    """What an experiment's run function gets besides its config."""

    name: str
    out: pathlib.Path
    seed: int
    quick: bool
    store: ChunkStore
    log: Callable[[str], None] = print
    min_interval: float = 2.0

    def progress(self, label: str) -> Callable[[int, int, float], None]:
        """A progress callback printing done/total, rate and ETA at most every ``min_interval`` s."""
        last = [0.0]

        def report(done: int, total: int, seconds: float) -> None:
            now = time.perf_counter()
            if done < total and now - last[0] < self.min_interval:
                return
            last[0] = now
            rate = done / seconds if seconds > 0 else float("inf")
            eta = (total - done) / rate if rate > 0 else 0.0
            self.log(
                f"[{self.name}] {label}: {done}/{total} trials ({done / total:.0%}), "
                f"{rate:,.0f} fits/s, ETA {eta:.0f} s"
            )

        return report


def resolve_config(experiment: Experiment, *, quick: bool, sets: list[str], seed: int | None) -> dict[str, Any]:
    """Defaults, then ``--quick`` overrides, then ``--set`` assignments, then ``--seed``."""
    config = merge(experiment.config, experiment.quick) if quick else merge(experiment.config, {})
    config = apply_sets(config, sets)
    if seed is not None:
        if seed < 0:
            raise ParameterError(f"seed must be an integer >= 0, got {seed}")
        config["seed"] = int(seed)
    return config


def run_experiment(
    experiment: Experiment,
    *,
    quick: bool = False,
    out: str | pathlib.Path | None = None,
    seed: int | None = None,
    sets: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs ``experiment`` and returns its meta dict (also written to ``<out>/meta.json``).

    Finished Monte Carlo chunks are stored under ``<out>/chunks`` as they complete; rerunning the
    same command after an interruption recomputes nothing that was finished.
    """
    config = resolve_config(experiment, quick=quick, sets=list(sets or []), seed=seed)
    folder = pathlib.Path(out) if out is not None else pathlib.Path("runs") / (
        experiment.name + ("-quick" if quick else "")
    )
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "experiment": experiment.name,
        "quick": quick,
        "config": config,
        "config_hash": config_hash(config),
        "seed": config.get("seed"),
        "environment": environment(),
        "status": "running",
    }
    write_json(folder / "meta.json", meta)
    ctx = RunContext(experiment.name, folder, int(config.get("seed", 0)), quick, ChunkStore(folder / "chunks"), log)
    log(f"[{experiment.name}] config {meta['config_hash']} -> {folder}")
    started = time.perf_counter()
    summary = experiment.run(config, ctx)
    meta.update(
        status="finished",
        seconds=round(time.perf_counter() - started, 3),
        chunks={"reused": ctx.store.hits, "written": ctx.store.writes},
        **summary,
    )
    write_json(folder / "meta.json", meta)
    log(f"[{experiment.name}] done in {meta['seconds']:.1f} s; outputs in {folder}")
    return meta
