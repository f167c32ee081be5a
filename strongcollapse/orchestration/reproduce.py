"""``strongcollapse reproduce``: every registered experiment, then one report page.

Each experiment runs into ``OUT/NAME`` exactly as ``strongcollapse run NAME --out OUT/NAME`` would.
An experiment whose ``meta.json`` already says *finished* for the same resolved config (same hash)
is not run again; one that was interrupted resumes from its finished chunks. Every config is
resolved and validated before the first experiment starts, so a bad ``--set`` or spectrum file in
the last experiment fails at once rather than after the others have run.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Callable

from strongcollapse.orchestration.config import config_hash
from strongcollapse.orchestration.registry import experiment, names
from strongcollapse.orchestration.report_page import write_report
from strongcollapse.orchestration.runner import resolve_config, run_experiment
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["reproduce", "select"]


def select(only: str | None) -> list[str]:
    """The experiments to run: all registered, or the comma-separated ``only`` list (validated)."""
    known = names()
    if only is None:
        return known
    chosen = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if not chosen or unknown:
        raise ParameterError(
            f"--only must be a comma-separated list of experiments from {', '.join(known)}; "
            f"got {only!r}"
        )
    return list(dict.fromkeys(chosen))


def _finished(folder: pathlib.Path, digest: str) -> dict[str, Any] | None:
    """The meta of a finished run of this very config in ``folder``, if there is one."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("status") == "finished" and meta.get("config_hash") == digest:
        return meta
    return None


def reproduce(
    *,
    quick: bool = False,
    out: str | pathlib.Path | None = None,
    only: str | None = None,
    sets: list[str] | None = None,
    log: Callable[[str], None] = print,
    **engine: Any,
) -> pathlib.Path:
    """Runs the selected experiments (skipping finished ones) and writes the report page.

    Args:
        quick: the ``--quick`` form of every experiment.
        out: the folder (default ``runs/reproduce[-quick]``); each experiment gets ``out/NAME``.
        only: comma-separated experiment names (default: every registered experiment).
        sets: ``--set`` assignments applied to every selected experiment (each key must exist in
            every one of them).
        engine: ``devices``, ``chunk_size``, ``memory_budget`` as for ``run``.

    Returns:
        The path of ``index.html``.
    """
    folder = pathlib.Path(out) if out is not None else pathlib.Path("runs") / ("reproduce" + ("-quick" if quick else ""))
    selected = [experiment(name) for name in select(only)]
    configs = {e.name: resolve_config(e, quick=quick, sets=list(sets or []), seed=None) for e in selected}
    started = time.perf_counter()
    for position, exp in enumerate(selected, 1):
        target = folder / exp.name
        done = _finished(target, config_hash(configs[exp.name]))
        if done is not None:
            log(f"[reproduce] {position}/{len(selected)} {exp.name}: finished earlier ({done.get('seconds', 0):.1f} s), kept")
            continue
        log(f"[reproduce] {position}/{len(selected)} {exp.name}")
        run_experiment(exp, quick=quick, out=target, sets=list(sets or []), log=log, **engine)
    page = write_report(folder, [e.name for e in selected], quick=quick)
    log(f"[reproduce] {len(selected)} experiment(s) in {time.perf_counter() - started:.1f} s; report: {page}")
    return page
