"""Chunked execution of independent Monte Carlo tasks (one task = one trial of one grid cell).

A sweep is flattened into a list of tasks, each described by a few scalars (cell id, trial index,
sample sizes, λ, noise levels). Tasks run in fixed-size chunks through one jit-compiled, vmapped
function, so memory is bounded by the chunk size and compilation happens once per chunk shape.
The last chunk is padded by repeating its last task, and every chunk is a whole multiple of the
device count; padded results are dropped, so padding cannot bias anything. With a device mesh each
chunk is split over the devices (and hosts) by XLA (:mod:`strongcollapse.simulate.devices`).

Finished chunks can be handed to a *store* (any object with ``get(key)`` and ``put(key, values)``;
see :class:`strongcollapse.orchestration.results.ChunkStore`), keyed by a hash of everything that determines
the chunk's numbers. A rerun then skips finished chunks: an interrupted sweep resumes, and the
resumed result equals an uninterrupted one because each task's key depends only on its own cell
and trial.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
from typing import Any, Callable, Protocol

import numpy as np

from strongcollapse.simulate.devices import (
    broadcast_from_writer,
    default_memory_budget,
    gather,
    is_writer,
    shard_tasks,
)
from strongcollapse.vocabulary.validation import ParameterError, check_count

__all__ = ["ChunkStoreLike", "Plan", "plan_chunks", "run_tasks"]

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
    """How a group of tasks is executed: chunks of ``chunk_size`` tasks split over ``devices``."""

    tasks: int
    chunk_size: int
    chunks: int
    bytes_per_task: int
    devices: int = 1
    memory_budget: int = 0  # bytes per device

    @property
    def peak_bytes(self) -> int:
        """Estimated working memory of one chunk on one device."""
        return -(-self.chunk_size // self.devices) * self.bytes_per_task

    def describe(self) -> str:
        """One line for the log: tasks, chunks, devices and the memory estimate against the budget."""
        return (
            f"{self.tasks} trials in {self.chunks} chunk(s) of {self.chunk_size} over {self.devices} "
            f"device(s); est. peak {self.peak_bytes / 2**20:,.0f} MiB per device "
            f"(budget {self.memory_budget / 2**20:,.0f} MiB)"
        )


def plan_chunks(
    tasks: int,
    bytes_per_task: int,
    *,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    devices: int = 1,
) -> Plan:
    """Chooses a chunk size that keeps one chunk's working memory per device under the budget.

    Args:
        tasks: number of tasks (trials of cells).
        bytes_per_task: working-memory estimate of one task.
        chunk_size: tasks per chunk (rounded up to a multiple of ``devices``); default: the largest
            that fits the budget, capped for CPU cache efficiency, balanced across chunks.
        memory_budget: bytes per device (default :func:`devices.default_memory_budget`).
        devices: devices the chunk is split over.

    Raises:
        ParameterError: a single task, or the requested chunk, does not fit the budget (the message
            suggests what does).
    """
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)
    if bytes_per_task > budget:
        raise ParameterError(
            f"one trial needs about {bytes_per_task / 2**20:,.0f} MiB, more than the memory budget of "
            f"{budget / 2**20:,.0f} MiB per device: raise memory_budget or shrink d, n or m"
        )
    fits = budget // max(1, bytes_per_task)  # tasks per device
    if chunk_size is None:
        per_device = max(1, min(MAX_CHUNK, fits, max(8, CACHE_BYTES // max(1, bytes_per_task))))
        cap = per_device * devices
        # Balance the chunks: 900 tasks at a cap of 830 run as 2 x 450, not 830 + 70 padded to 830.
        chunk_size = -(-tasks // -(-tasks // cap))
    else:
        chunk_size = int(check_count("chunk_size", chunk_size, minimum=1))
    chunk_size = int(min(chunk_size, tasks))
    chunk_size = -(-chunk_size // devices) * devices  # every device gets the same share
    if -(-chunk_size // devices) > fits:
        raise ParameterError(
            f"chunk_size {chunk_size} needs about {chunk_size // devices * bytes_per_task / 2**20:,.0f} MiB per "
            f"device, over the budget of {budget / 2**20:,.0f} MiB: use chunk_size <= {fits * devices}"
        )
    return Plan(tasks, chunk_size, -(-tasks // chunk_size), int(bytes_per_task), devices, budget)


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
    mesh: Any = None,
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
        progress: called as progress(tasks_done, tasks_total, seconds_elapsed) after each chunk;
            if it has a ``plan`` attribute, that is called with the plan first.
        result_shape: shape of one task's result (``()`` for a scalar).
        mesh: optional :class:`jax.sharding.Mesh`; each chunk's tasks are split over its devices
            (and hosts), and only process 0 writes to the store.

    Returns:
        float64 array of per-task results, shape (tasks,) + result_shape.
    """
    total = plan.tasks
    out = np.empty((total,) + tuple(result_shape), dtype=np.float64)
    announce = getattr(progress, "plan", None)
    if announce is not None:
        announce(plan)
    writer = is_writer()
    start = time.perf_counter()
    # Up to IN_FLIGHT chunks are dispatched before the oldest is waited for: JAX dispatches
    # asynchronously, so the next chunk computes while the previous one is stored and reported.
    pending: collections.deque = collections.deque()

    def finish_oldest() -> None:
        lo, hi, key, result = pending.popleft()
        values = gather(result)[: hi - lo]
        out[lo:hi] = values
        if store is not None and writer:
            store.put(key, values)
        if progress is not None:
            progress(hi, total, time.perf_counter() - start)

    for c in range(plan.chunks):
        lo, hi = c * plan.chunk_size, min((c + 1) * plan.chunk_size, total)
        chunk = {k: v[lo:hi] for k, v in tasks.items()}
        key = _chunk_key(tag, chunk) if store is not None else ""
        cached = store.get(key) if store is not None and writer else None
        if cached is not None and cached.shape != out[lo:hi].shape:
            cached = None
        # Every process must take the same branch (the computation is collective): process 0,
        # which owns the store, decides and shares its stored values.
        if bool(broadcast_from_writer(np.array(cached is not None))):
            out[lo:hi] = broadcast_from_writer(cached if cached is not None else np.zeros(out[lo:hi].shape))
            if progress is not None and not pending:
                progress(hi, total, time.perf_counter() - start)
            continue
        pad = plan.chunk_size - (hi - lo)
        padded = {k: np.concatenate([v, np.repeat(v[-1:], pad)]) if pad else v for k, v in chunk.items()}
        pending.append((lo, hi, key, batch_fn(padded if mesh is None else shard_tasks(padded, mesh))))
        if len(pending) >= IN_FLIGHT:
            finish_oldest()
    while pending:
        finish_oldest()
    return out
