"""Device set-up that must happen before JAX initialises its backends (no JAX import here)."""

from __future__ import annotations

import os


def use_all_cpu_cores() -> int:
    """Expose every usable CPU core to XLA as a host device; returns the count asked for.

    XLA runs a small computation on one thread, so on a CPU the blow-up solver splits each chunk
    across these devices (blowup._segment_solver). Must run before JAX initialises its backends
    (the `condense` CLI calls it first thing); a user's own XLA_FLAGS device count is left alone.
    On a GPU machine it only adds host devices, which the GPU default backend does not use.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return -1
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={max(1, n)}".strip()
    return n


def split_seeds(grid, n_shared: int):
    """jit of `grid(keys, *shared)` with the seeds (the leading axis of `keys`, which may be a tuple
    of arrays, and of every output) split over the local devices by shard_map, each device running
    its share with no communication; the `n_shared` other arguments are replicated. The seeds are
    padded to a multiple of the device count (repeating the first) and the padding dropped. One
    device: jit."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    devices = jax.local_devices()
    if len(devices) == 1:
        return jax.jit(grid)
    sharded = jax.jit(
        jax.shard_map(
            grid,
            mesh=Mesh(np.array(devices), ("seeds",)),
            in_specs=(PartitionSpec("seeds"),) + (PartitionSpec(),) * n_shared,
            out_specs=PartitionSpec("seeds"),
            check_vma=False,
        )
    )

    lead = lambda keys: jax.tree_util.tree_leaves(keys)[0].shape[0]

    def pad(keys):
        extra = -lead(keys) % len(devices)
        return jax.tree_util.tree_map(lambda k: jnp.concatenate([k, jnp.repeat(k[:1], extra, 0)]), keys) if extra else keys

    def run(keys, *shared):
        out = sharded(pad(keys), *(jnp.asarray(v) for v in shared))
        return jax.tree_util.tree_map(lambda v: v[: lead(keys)], out)

    run.lower = lambda keys, *shared: sharded.lower(pad(keys), *(jnp.asarray(v) for v in shared))  # for --dry-run
    return run


def enable_dtype(dtype: str) -> None:
    """float64 runs need JAX's 64-bit mode (the effective ODE switches it on too); without it JAX
    silently computes a float64 request in float32. Call before tracing."""
    import jax

    if str(dtype) == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
