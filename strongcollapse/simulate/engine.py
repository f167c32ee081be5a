"""Chunked execution of independent Monte Carlo tasks (one task = one trial of one grid cell).

A sweep is flattened into a list of tasks, each described by a few scalars (cell id, trial index,
sample sizes, λ, noise levels). Tasks run in fixed-size chunks through one jit-compiled, vmapped
function, so memory is bounded by the chunk size and compilation happens once per chunk shape.
The last chunk is padded by repeating its last task; padded results are dropped, so padding
cannot bias anything.

Finished chunks can be handed to a *store* (any object with ``get(key)`` and ``put(key, values)``;
see :class:`strongcollapse.results.ChunkStore`), keyed by a hash of everything that determines
the chunk's numbers. A rerun then skips finished chunks: an interrupted sweep resumes, and the
resumed result equals an uninterrupted one because each task's key depends only on its own cell
and trial.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
from typing import Callable, Protocol

import numpy as np
from strongcollapse.validation import ParameterError

__all__ = ["ChunkStoreLike", "Plan", "plan_chunks", "run_tasks"]

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of working memory per chunk on CPU
MAX_CHUNK = 4096  # beyond this, larger batches stop paying on a few CPU cores
# Batches whose working set stays near the CPU caches run faster: at d = 128 (1.3 MB per trial)
# the benchmark's 256 fits took 64 ms in chunks of 16-32 against 123-130 ms in chunks of 128-256.
CACHE_BYTES = 32 << 20
IN_FLIGHT = 2


class ChunkStoreLike(Protocol):
    def get(self, key: str) -> np.ndarray | None: ...

    def put(self, key: str, values: np.ndarray) -> None: ...


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a group of tasks is executed."""

    tasks: int
    chunk_size: int
    chunks: int
    bytes_per_task: int

    @property
    def peak_bytes(self) -> int:
        """Estimated working memory of one chunk."""
        return self.chunk_size * self.bytes_per_task


def plan_chunks(
    tasks: int, bytes_per_task: int, *, chunk_size: int | None = None, memory_budget: int | None = None
) -> Plan:
    """Chooses a chunk size that keeps one chunk's working memory under ``memory_budget``."""
    if chunk_size is None:
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
        cap = max(1, min(MAX_CHUNK, budget // max(1, bytes_per_task), max(8, CACHE_BYTES // bytes_per_task)))
        # Balance the chunks: 900 tasks at a cap of 830 run as 2 x 450, not 830 + 70 padded to 830.
        chunk_size = -(-tasks // -(-tasks // cap))
    elif chunk_size < 1:
        raise ParameterError(f"chunk_size must be an integer >= 1, got {chunk_size}")
    chunk_size = int(min(chunk_size, tasks))
    return Plan(tasks, chunk_size, -(-tasks // chunk_size), int(bytes_per_task))


def _chunk_key(tag: bytes, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(tag)
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()[:32]


def run_tasks(
    batch_fn: Callable[[dict[str, np.ndarray]], np.ndarray],
    tasks: dict[str, np.ndarray],
    plan: Plan,
    *,
    tag: bytes = b"",
    store: ChunkStoreLike | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    result_shape: tuple[int, ...] = (),
) -> np.ndarray:
    """Runs ``batch_fn`` over ``tasks`` (a dict of equal-length 1-D arrays) chunk by chunk.

    Args:
        batch_fn: maps a dict of arrays of length ``plan.chunk_size`` to results of shape
            (chunk_size,) + result_shape (one result per task, e.g. one risk per model width).
        tasks: per-task scalars.
        plan: from :func:`plan_chunks`.
        tag: bytes identifying everything else the results depend on (problem, method, dtype,
            base key); part of each chunk's store key.
        store: optional chunk store for resuming.
        progress: called as progress(tasks_done, tasks_total, seconds_elapsed) after each chunk.
        result_shape: shape of one task's result (``()`` for a scalar).

    Returns:
        float64 array of per-task results, shape (tasks,) + result_shape.
    """
    total = plan.tasks
    out = np.empty((total,) + tuple(result_shape), dtype=np.float64)
    start = time.perf_counter()
    # Up to IN_FLIGHT chunks are dispatched before the oldest is waited for: JAX dispatches
    # asynchronously, so the next chunk computes while the previous one is stored and reported
    # (and two chunks can use the two cores where one batched LAPACK call would use one).
    pending: collections.deque = collections.deque()

    def finish_oldest() -> None:
        lo, hi, key, result = pending.popleft()
        values = np.asarray(result, dtype=np.float64)[: hi - lo]
        out[lo:hi] = values
        if store is not None:
            store.put(key, values)
        if progress is not None:
            progress(hi, total, time.perf_counter() - start)

    for c in range(plan.chunks):
        lo, hi = c * plan.chunk_size, min((c + 1) * plan.chunk_size, total)
        chunk = {k: v[lo:hi] for k, v in tasks.items()}
        key = _chunk_key(tag, chunk) if store is not None else ""
        cached = store.get(key) if store is not None else None
        if cached is not None and cached.shape == out[lo:hi].shape:
            out[lo:hi] = cached
            if progress is not None and not pending:
                progress(hi, total, time.perf_counter() - start)
            continue
        pad = plan.chunk_size - (hi - lo)
        padded = {k: np.concatenate([v, np.repeat(v[-1:], pad)]) if pad else v for k, v in chunk.items()}
        pending.append((lo, hi, key, batch_fn(padded)))
        if len(pending) >= IN_FLIGHT:
            finish_oldest()
    while pending:
        finish_oldest()
    return out
