"""One solve over several hosts: ``jax.distributed``, one process per host.

Every process runs the same program; each reads only its own block of rows:

    import jax, admmnn
    from admmnn import distributed

    distributed.initialize("host0:1234", num_processes=2, process_id=i)   # before any other JAX call
    mesh = distributed.data_mesh()                 # all devices of all processes, axis "data"
    start, stop, block = distributed.row_block(n, jax.process_index(), jax.process_count(),
                                               jax.local_device_count())
    X = distributed.global_rows(mesh, load_X(start, stop), block)   # (block * processes, d), zero-padded
    Y = distributed.global_rows(mesh, load_Y(start, stop), block)
    D = distributed.global_rows(mesh, (load_X(start, stop) @ H >= 0) * 1.0, block)  # gates H from a seed
    res = admmnn.solve(X, Y, D, beta, solver="pcg-nystrom", mesh=mesh)

The rows past n are zero rows, which change neither the optimum nor the
certificate (see ``admmnn.sharding``); here the returned state keeps them (its
first n rows are the real ones). Draw the gates H from a seed on every process
(``numpy.random.default_rng(seed).standard_normal((d, P))``), so that D does not
depend on how the rows are split. ``benchmarks/distributed_localhost.py`` runs
two processes with two CPU devices each on one machine.
"""
from __future__ import annotations

import math

import numpy as np

from . import sharding


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_count: int | None = None,
               cpu_collectives: str | None = "gloo", **kwargs) -> None:
    """``jax.distributed.initialize`` with the settings CPU processes need.

    ``local_device_count``: CPU devices this process simulates (``jax_num_cpu_devices``;
    for tests on one machine). ``cpu_collectives``: the library that carries CPU
    collectives between processes ("gloo", "mpi" or None to keep JAX's setting;
    GPUs use NCCL regardless). Other arguments go to ``jax.distributed.initialize``
    (on a cluster with auto-detection, call it with none)."""
    import jax

    if local_device_count is not None:
        jax.config.update("jax_num_cpu_devices", int(local_device_count))
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def data_mesh(devices=None):
    """A one-axis mesh named "data" over ``devices`` (default: every device of every process,
    in process order)."""
    import jax
    from jax.sharding import Mesh

    return Mesh(np.asarray(jax.devices() if devices is None else devices), (sharding.AXIS,))


def row_block(n: int, process_index: int, process_count: int, local_devices: int = 1) -> tuple[int, int, int]:
    """The rows ``[start, stop)`` of an n-row data set that process ``process_index`` of
    ``process_count`` loads, and ``block``, the rows every process holds (a multiple of
    ``local_devices``; the last blocks are completed with zero rows)."""
    for name, value in (("n", n), ("process_count", process_count), ("local_devices", local_devices)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must lie in [0, {process_count}), got {process_index!r}")
    block = math.ceil(n / (process_count * local_devices)) * local_devices
    start = min(process_index * block, n)
    return start, min(start + block, n), block


def global_rows(mesh, local, block: int):
    """The global row-sharded array whose rows on this process are ``local`` (k, ...)
    followed by ``block - k`` zero rows (``row_block``): every process calls it with
    its own rows; ``mesh`` must list the devices in process order (``data_mesh``)."""
    import jax

    local = np.asarray(local)
    if local.shape[0] > block:
        raise ValueError(f"local has {local.shape[0]} rows, more than the block of {block}")
    if local.ndim == 1:
        local = local[:, None]
    padded = np.zeros((block,) + local.shape[1:], dtype=local.dtype)
    padded[: local.shape[0]] = local
    shape = (block * jax.process_count(),) + local.shape[1:]
    rows = sharding.row_sharding(mesh)
    starts = {idx[0].start or 0 for idx in rows.addressable_devices_indices_map(shape).values()}
    first = jax.process_index() * block
    if min(starts) != first or max(starts) >= first + block:
        raise ValueError("mesh must list the devices in process order (use admmnn.distributed.data_mesh()), "
                         "so that each process holds one contiguous block of rows")
    return jax.make_array_from_process_local_data(rows, padded, shape)


__all__ = ["initialize", "data_mesh", "row_block", "global_rows"]
