"""Compile once: JAX's persistent compilation cache, on by default for every program entry.

A process otherwise recompiles every jitted sweep from scratch (the Model A simulator's first call
costs seconds, a steady call a fraction of that). With the cache, XLA executables are written to
disk keyed by the computation, the shapes, the JAX/XLA versions and the flags, so a second
process (the next CLI run, a test subprocess) loads them instead of compiling.

Where: ``--compile-cache DIR`` on the command line, else ``$STRONGCOLLAPSE_COMPILE_CACHE``, else
``$XDG_CACHE_HOME/strongcollapse/jax`` (``~/.cache/strongcollapse/jax``). ``--no-compile-cache``
or ``STRONGCOLLAPSE_COMPILE_CACHE=off`` turns it off. Deleting the folder is always safe.
"""

from __future__ import annotations

import os
import pathlib

import jax

from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["ENV", "default_cache_dir", "enable_compile_cache"]

ENV = "STRONGCOLLAPSE_COMPILE_CACHE"
_OFF = {"off", "0", "false", "no", "none"}


def default_cache_dir() -> pathlib.Path | None:
    """The cache folder the environment asks for (None: off)."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen.lower() in _OFF:
        return None
    if chosen:
        return pathlib.Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "strongcollapse" / "jax"


def enable_compile_cache(folder: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> pathlib.Path | None:
    """Points JAX's persistent compilation cache at ``folder`` (default: :func:`default_cache_dir`).

    Every executable is cached, however fast it compiled: the sweeps here compile in 0.1-5 s each
    and a run has dozens, so JAX's default threshold (1 s) would leave most of the time on the table.

    Returns:
        The folder in use, or None when the cache is off.

    Raises:
        ParameterError: the folder exists as a file or cannot be created.
    """
    path = pathlib.Path(folder).expanduser() if folder is not None else default_cache_dir()
    if not enabled or path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ParameterError(f"--compile-cache must be a folder that can be created, got {str(path)!r}: {err.strerror}") from None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
