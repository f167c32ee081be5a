"""Command line: ``strongcollapse [--import CODE] list | run NAME | config NAME | bench``.

Bad input (an unknown experiment, a malformed option, an out-of-range parameter: a
:class:`~strongcollapse.vocabulary.validation.ParameterError`) prints one line on stderr and exits with code 2,
never a traceback; any other exception is a bug and is shown with its traceback. Ctrl-C exits
with 130 after saying where the finished chunks are; rerunning the same command resumes from them.
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

    run = sub.add_parser("run", help="run an experiment: CSV, meta.json, figure")
    common(run)
    run.add_argument("--out", default=None, help="output folder (default runs/NAME[-quick])")
    run.add_argument("--devices", type=int, default=None, help="use the first N devices (default: all)")
    run.add_argument(
        "--chunk-size", type=int, default=None, help="trials per chunk (default: from the budget)"
    )
    run.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="MIB",
        help="working memory per device per chunk, MiB (default 2048 on CPU, 80%% of free GPU memory)",
    )
    show = sub.add_parser("config", help="print an experiment's resolved config as JSON")
    common(show)
    bench = sub.add_parser("bench", help="benchmark the Monte Carlo engine against a NumPy loop")
    bench.add_argument("--quick", action="store_true", help="fewer trials")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    bench.add_argument(
        "--devices-table",
        action="store_true",
        help="also time the Model A workload on 1, 2 and 4 forced host devices",
    )
    return parser


def _import_user_code(target: str) -> None:
    """Imports a module by name or a Python file by path (user-defined spectra register on import)."""
    path = pathlib.Path(target)
    if target.endswith(".py"):
        if not path.is_file():
            raise ParameterError(
                f"--import must name an existing .py file or an importable module, got {target!r}"
            )
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return
    try:
        importlib.import_module(target)
    except ImportError as err:
        raise ParameterError(f"--import could not import module {target!r}: {err}") from None


def _dispatch(args: argparse.Namespace) -> int:
    import strongcollapse

    if args.distributed:  # before anything touches a device
        from strongcollapse.simulate.devices import initialize_distributed

        initialize_distributed()
    strongcollapse.enable_x64()  # program entry: float64 everywhere (DESIGN.md §3)
    for target in args.imports:
        _import_user_code(target)
    if args.command == "list":
        from strongcollapse.orchestration.registry import experiments

        known = experiments()
        width = max(len(n) for n in known)
        for name in sorted(known):
            print(f"{name:<{width}}  {known[name].summary}")
        return 0
    if args.command == "bench":
        from strongcollapse.bench.linear import run_benchmark
        from strongcollapse.bench.width import run_width_benchmark
        from strongcollapse.orchestration.results import write_json

        numbers = {
            "linear": run_benchmark(quick=args.quick, seed=args.seed),
            "width_sweep": run_width_benchmark(quick=args.quick, seed=args.seed),
        }
        if args.devices_table:
            from strongcollapse.bench.linear import device_scaling

            numbers["devices"] = device_scaling(quick=args.quick)
        if args.json:
            write_json(pathlib.Path(args.json), numbers)
        return 0
    from strongcollapse.orchestration.registry import experiment as registered
    from strongcollapse.orchestration.runner import resolve_config, run_experiment

    experiment = registered(args.name)
    if args.command == "config":
        config = resolve_config(experiment, quick=args.quick, sets=args.sets, seed=args.seed)
        print(json.dumps(config, indent=2))
        return 0
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ParameterError(f"--chunk-size must be an integer >= 1, got {args.chunk_size}")
    if args.memory_budget is not None and not args.memory_budget > 0:
        raise ParameterError(f"--memory-budget must be > 0 MiB, got {args.memory_budget:g}")
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    try:
        run_experiment(
            experiment,
            quick=args.quick,
            out=args.out,
            seed=args.seed,
            sets=args.sets,
            devices=args.devices,
            chunk_size=args.chunk_size,
            memory_budget=budget,
        )
    except KeyboardInterrupt:
        where = args.out or f"runs/{args.name}{'-quick' if args.quick else ''}"
        print(
            f"strongcollapse: interrupted; finished chunks are saved under {where}/chunks, "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``strongcollapse`` command; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
        return _dispatch(args)
    except (UsageError, ParameterError, OSError) as err:
        # Bad input only: any other exception is a bug and keeps its traceback.
        print(f"strongcollapse: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
