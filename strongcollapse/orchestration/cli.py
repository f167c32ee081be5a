"""Command line: ``strongcollapse [--import CODE] list | run NAME | config NAME | plot RUN_DIR |
reproduce | bench``.

Bad input (an unknown experiment, a malformed option, an out-of-range parameter: a
:class:`~strongcollapse.vocabulary.validation.ParameterError`) prints one line on stderr and exits
with code 2, never a traceback (``--debug`` shows it); any other exception is a bug and is shown
with its traceback. Everything is validated before the first fit. Ctrl-C exits with 130 after
saying where the finished chunks are; rerunning the same command resumes from them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import pathlib
import sys
from typing import Sequence

from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["main"]


class UsageError(Exception):
    """A command-line mistake; reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="strongcollapse", description="Theory and simulation of strong model collapse.")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import your own code first (e.g. a file that registers a spectrum), repeatable",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run (jax.distributed.initialize: JAX_COORDINATOR_ADDRESS, "
        "JAX_NUM_PROCESSES, JAX_PROCESS_ID, or SLURM's environment); process 0 writes",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a bad-input error too")
    parser.add_argument(
        "--compile-cache",
        default=None,
        metavar="DIR",
        help="JAX's persistent compilation cache (default $STRONGCOLLAPSE_COMPILE_CACHE or "
        "~/.cache/strongcollapse/jax): a second process does not recompile",
    )
    parser.add_argument("--no-compile-cache", action="store_true", help="compile from scratch, cache nothing")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the experiments")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="experiment name (see `strongcollapse list`)")
        p.add_argument("--quick", action="store_true", help="small version (under a minute on 2 cores)")
        p.add_argument("--seed", type=int, default=None, help="base random seed (integer >= 0)")
        p.add_argument(
            "--set",
            dest="sets",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config entry, e.g. --set trials=50 --set 'p=[0,0.1]' (repeatable)",
        )

    def engine(p: argparse.ArgumentParser) -> None:
        p.add_argument("--devices", type=int, default=None, help="use the first N devices (default: all)")
        p.add_argument("--chunk-size", type=int, default=None, help="trials per chunk (default: from the budget)")
        p.add_argument(
            "--memory-budget",
            type=float,
            default=None,
            metavar="MIB",
            help="working memory per device per chunk, MiB (default 2048 on CPU, 80%% of free GPU memory)",
        )

    run = sub.add_parser("run", help="run an experiment: CSV, meta.json, figure")
    common(run)
    run.add_argument("--out", default=None, help="output folder (default runs/NAME[-quick])")
    engine(run)
    show = sub.add_parser("config", help="print an experiment's resolved config as JSON")
    common(show)
    plot = sub.add_parser("plot", help="redraw a run's figure from its results.csv/curves.csv (no computing)")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `strongcollapse run`")
    again = sub.add_parser(
        "reproduce", help="run every experiment (finished ones are kept) and write index.html + REPORT.md"
    )
    again.add_argument("--quick", action="store_true", help="the --quick form of every experiment")
    again.add_argument("--out", default=None, help="output folder (default runs/reproduce[-quick])")
    again.add_argument("--only", default=None, metavar="NAME,...", help="comma-separated experiments")
    again.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override a config entry of every selected experiment (repeatable)",
    )
    engine(again)
    bench = sub.add_parser("bench", help="benchmark the Monte Carlo engine against a NumPy loop")
    bench.add_argument("--quick", action="store_true", help="fewer trials")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    bench.add_argument(
        "--random-features",
        action="store_true",
        help="also the ReLU random-feature width sweep (n = d = 500, 30 widths, 100 trials; minutes)",
    )
    bench.add_argument(
        "--devices-table",
        action="store_true",
        help="also time the Model A workload on 1, 2 and 4 forced host devices",
    )
    return parser


def _import_user_code(target: str, debug: bool) -> None:
    """Imports a module by name or a Python file by path (user-defined spectra and experiments
    register on import). A file that fails to load (a syntax error, an exception) is the user's
    input: one line naming the file and the error, the traceback only with ``--debug``."""
    path = pathlib.Path(target)
    if target.endswith(".py") and not path.is_file():
        raise ParameterError(f"--import must name an existing .py file or an importable module, got {target!r}")
    try:
        if target.endswith(".py"):
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            importlib.import_module(target)
    except Exception as err:  # noqa: BLE001 - whatever the user's code raised
        if debug:
            raise
        where = f"line {err.lineno}: " if isinstance(err, SyntaxError) and err.lineno else ""
        message = err.msg if isinstance(err, SyntaxError) else str(err)
        raise ParameterError(
            f"--import {target!r} failed: {where}{type(err).__name__}: {message} (--debug shows the traceback)"
        ) from None


def _engine_options(args: argparse.Namespace) -> dict[str, int | None]:
    """--devices, --chunk-size and --memory-budget, checked; the budget in bytes."""
    if args.devices is not None and args.devices < 1:
        raise ParameterError(f"--devices must be an integer >= 1, got {args.devices}")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ParameterError(f"--chunk-size must be an integer >= 1, got {args.chunk_size}")
    if args.memory_budget is not None and not 0 < args.memory_budget < 2**40:
        raise ParameterError(f"--memory-budget must be a number of MiB in (0, 2**40), got {args.memory_budget:g}")
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    return {"devices": args.devices, "chunk_size": args.chunk_size, "memory_budget": budget}


def _writable_file(option: str, target: str) -> pathlib.Path:
    """A path a file can be written to (checked before the work that produces the file)."""
    path = pathlib.Path(target)
    if path.is_dir():
        raise ParameterError(f"{option} must name a file, got the folder {target!r}")
    if not path.parent.is_dir():
        raise ParameterError(f"{option} must be in an existing folder, got {target!r}")
    return path


def _dispatch(args: argparse.Namespace) -> int:
    import strongcollapse
    from strongcollapse.orchestration.compile_cache import enable_compile_cache

    if args.distributed:  # before anything touches a device
        from strongcollapse.simulate.devices import initialize_distributed

        initialize_distributed()
    strongcollapse.enable_x64()  # program entry: float64 everywhere (DESIGN.md §3)
    enable_compile_cache(args.compile_cache, enabled=not args.no_compile_cache)
    for target in args.imports:
        _import_user_code(target, args.debug)
    if args.command == "list":
        from strongcollapse.orchestration.registry import experiments

        known = experiments()
        width = max(len(n) for n in known)
        for name in sorted(known):
            print(f"{name:<{width}}  {known[name].summary}")
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "plot":
        from strongcollapse.orchestration.replot import replot

        for path in replot(args.run_dir):
            print(path)
        return 0
    if args.command == "reproduce":
        from strongcollapse.orchestration.reproduce import reproduce

        return _interruptible(
            lambda: reproduce(quick=args.quick, out=args.out, only=args.only, sets=args.sets, **_engine_options(args)),
            args.out or f"runs/reproduce{'-quick' if args.quick else ''}/NAME",
        )
    from strongcollapse.orchestration.registry import experiment as registered
    from strongcollapse.orchestration.runner import resolve_config, run_experiment

    experiment = registered(args.name)
    if args.command == "config":
        config = resolve_config(experiment, quick=args.quick, sets=args.sets, seed=args.seed)
        print(json.dumps(config, indent=2))
        return 0
    engine = _engine_options(args)
    return _interruptible(
        lambda: run_experiment(
            experiment, quick=args.quick, out=args.out, seed=args.seed, sets=args.sets, **engine
        ),
        args.out or f"runs/{args.name}{'-quick' if args.quick else ''}",
    )


def _interruptible(work, where: str) -> int:
    """Runs ``work``; Ctrl-C says where the finished chunks are and exits with 130."""
    try:
        work()
    except KeyboardInterrupt:
        print(
            f"strongcollapse: interrupted; finished chunks are saved under {where}/chunks, "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def _bench(args: argparse.Namespace) -> int:
    from strongcollapse.bench.linear import run_benchmark
    from strongcollapse.bench.width import run_width_benchmark
    from strongcollapse.orchestration.results import write_json

    target = _writable_file("--json", args.json) if args.json else None  # before the benchmark runs
    numbers = {
        "linear": run_benchmark(quick=args.quick, seed=args.seed),
        "width_sweep": run_width_benchmark(quick=args.quick, seed=args.seed),
    }
    if args.random_features:
        from strongcollapse.bench.random_features import run_rf_benchmark

        numbers["random_features"] = run_rf_benchmark(quick=args.quick, seed=args.seed)
    if args.devices_table:
        from strongcollapse.bench.linear import device_scaling

        numbers["devices"] = device_scaling(quick=args.quick)
    if target is not None:
        write_json(target, numbers)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``strongcollapse`` command; returns the exit code."""
    args = None
    try:
        args = _parser().parse_args(argv)
        return _dispatch(args)
    except (UsageError, ParameterError, OSError) as err:
        # Bad input only: any other exception is a bug and keeps its traceback.
        if args is not None and args.debug:
            raise
        print(f"strongcollapse: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
