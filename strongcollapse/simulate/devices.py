"""Devices and hosts: the mesh a sweep's tasks are sharded over, with JAX's own machinery only.

One axis, ``tasks``: the (cell, trial) tasks of a chunk are independent, so a chunk is split evenly
over a one-dimensional :class:`jax.sharding.Mesh` and the jitted, vmapped batch function is
partitioned by XLA (GSPMD); nothing else changes. Keys depend only on (seed, cell, trial), so the
numbers do not depend on the device count (tested to 1e-12: a different per-device batch shape
may round a product differently).

Several hosts: every process runs the same program after :func:`initialize_distributed`; the mesh
then spans all processes' devices. Each process builds the chunk's global arrays from its own copy
of the task table (:func:`jax.make_array_from_callback` picks the slices its devices hold), results
are gathered to every process, and only process 0 writes files (:func:`is_writer`).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from strongcollapse.vocabulary.validation import ParameterError

__all__ = [
    "initialize_distributed",
    "device_mesh",
    "shard_tasks",
    "gather",
    "is_writer",
    "broadcast_from_writer",
    "default_memory_budget",
]

AXIS = "tasks"
CPU_MEMORY_BUDGET = 2 << 30  # bytes per device for one chunk's working set on CPU
GPU_MEMORY_FRACTION = 0.8  # of a device's free memory


def initialize_distributed() -> None:
    """Joins a multi-process run: ``jax.distributed.initialize`` from the environment.

    With ``JAX_COORDINATOR_ADDRESS`` (host:port), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` set,
    those are used; otherwise JAX detects the cluster itself (SLURM, Open MPI, ...). CPU devices
    exchange data through gloo.
    """
    # Only CPU collectives are affected; asking for the backend here would start it too early.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        try:
            count, index = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
        except (KeyError, ValueError):
            raise ParameterError(
                "with JAX_COORDINATOR_ADDRESS set, JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers"
            ) from None
        jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=index)
    else:
        jax.distributed.initialize()


def device_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh over all devices (of all processes), or the first ``devices`` of them."""
    available = jax.devices()
    if devices is None:
        chosen = available
    else:
        if not isinstance(devices, (int, np.integer)) or not 1 <= devices <= len(available):
            raise ParameterError(
                f"devices must be an integer in [1, {len(available)}] (devices JAX sees), got {devices!r}"
            )
        if jax.process_count() > 1 and devices != len(available):
            raise ParameterError(
                "devices cannot be restricted in a multi-process run (every process must take part)"
            )
        chosen = available[:devices]
    return Mesh(np.array(chosen), (AXIS,))


def shard_tasks(tasks: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Places a chunk's task arrays (length a multiple of the mesh size) split along the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    return {
        k: jax.make_array_from_callback(v.shape, sharding, lambda index, v=v: v[index])
        for k, v in tasks.items()
    }


def gather(result: jax.Array) -> np.ndarray:
    """The full result on this process (an all-gather across processes when there are several)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(result, tiled=True))
    return np.asarray(result)


def is_writer() -> bool:
    """Whether this process writes outputs (process 0; always true in a single-process run)."""
    return jax.process_index() == 0


def broadcast_from_writer(value: Any) -> Any:
    """Process 0's value on every process (identity in a single-process run)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return multihost_utils.broadcast_one_to_all(value)


def default_memory_budget() -> int:
    """Bytes one chunk may use per device: 2 GiB on CPU, 80% of the free memory of an accelerator."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(GPU_MEMORY_FRACTION * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    return CPU_MEMORY_BUDGET
