"""Devices: XLA host devices on a CPU, and the split of a batch of independent runs over them.

The runs of a chunk are independent, so the split needs no collective and no rendezvous: each
device's share is its own single-device call of one jitted function (dispatched asynchronously),
and the shares are gathered on the host. No program ever spans two devices, so a device that is
slow, busy or stuck in a library call (LAPACK inside `eigvalsh` or `svd`) can delay only its own
share, never make another device wait for it (a multi-device `shard_map` program could: with XLA
host devices it hung on `eigvalsh` and aborted on an all-gather that XLA inserted).

`use_all_cpu_cores` must run before JAX initialises its backends (no JAX import at module level).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence


def use_all_cpu_cores() -> int:
    """Expose every usable CPU core to XLA as a host device; returns the count asked for.

    XLA runs a small computation on one thread, so on a CPU each chunk is split across these
    devices (`split_batch`). Must run before JAX initialises its backends (the `condense` CLI calls
    it first thing); a user's own XLA_FLAGS device count is left alone. On a GPU machine it only
    adds host devices, which the GPU default backend does not use.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return -1
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={max(1, n)}".strip()
    return n


def shares(n: int, n_devices: int) -> tuple[int, int]:
    """(devices used, runs per device) for n runs: equal shares (one compiled shape), as few
    devices as that takes (n = 3 on 4 devices uses 3, one run each)."""
    n_devices = max(1, min(n_devices, n))
    per = -(-n // n_devices)
    return -(-n // per), per


def split_batch(fn: Callable, batched: Sequence[bool]) -> Callable:
    """`fn(*args)` with the leading axis of every argument flagged in `batched` (a pytree each)
    split over the local devices; the other arguments go whole to every device. Every output must
    have that leading axis too; they come back as NumPy arrays, in order.

    One device: `jax.jit(fn)`. Several: the batch is padded (repeating its first entry) to equal
    shares, each share is placed on its device and run as its own call of the same jitted function
    (XLA compiles it once per device; the first call traces it, the other devices compile in
    threads, overlapping the first device's run), and the outputs are gathered on the host with
    the padding dropped. No program spans two devices: no collective, no rendezvous, so one run of
    a sweep never waits for another.

    The returned function has `.lower(*args)` (device 0's share, for --dry-run).
    """
    import jax
    import numpy as np

    jitted = jax.jit(fn)
    batched = tuple(batched)
    tree_map = jax.tree_util.tree_map

    def lead(args) -> int:
        return next(len(jax.tree_util.tree_leaves(a)[0]) for a, b in zip(args, batched) if b)

    def pieces(args):
        """Per device used: its arguments, placed on it."""
        devices = jax.local_devices()
        n = lead(args)
        used, per = shares(n, len(devices))
        extra = used * per - n
        pad = lambda v: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[:1], extra, 0)]) if extra else v
        args = [tree_map(pad, a) if b else a for a, b in zip(args, batched)]
        out = []
        for i, dev in enumerate(devices[:used]):
            share = lambda v, i=i: v[i * per : (i + 1) * per]
            out.append([jax.device_put(tree_map(share, a) if b else a, dev) for a, b in zip(args, batched)])
        return n, out

    def run(*args):
        if len(jax.local_devices()) == 1:
            return tree_map(np.asarray, jitted(*args))
        n, calls = pieces(args)
        first = jitted(*calls[0])  # traces and compiles once; the call itself is asynchronous
        rest = []
        if len(calls) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(calls) - 1) as pool:  # the other devices' compiles, in parallel
                rest = list(pool.map(lambda c: jitted(*c), calls[1:]))
        outs = [first, *rest]
        return tree_map(lambda *v: np.concatenate([np.asarray(x) for x in v])[:n], *outs)

    def lower(*args):
        if len(jax.local_devices()) == 1:
            return jitted.lower(*args)
        return jitted.lower(*pieces(args)[1][0])

    run.lower = lower
    run.jitted = jitted
    return run


def split_seeds(grid: Callable, n_shared: int) -> Callable:
    """`grid(keys, *shared)` with the seeds (the leading axis of `keys`, a pytree, and of every
    output) split over the local devices (`split_batch`); the `n_shared` other arguments go whole
    to every device."""
    return split_batch(grid, (True,) + (False,) * n_shared)


def l2_bytes() -> int:
    """One core's L2 cache (Linux sysfs), or 1 MiB where it cannot be read."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as fh:
            text = fh.read().strip().upper()
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return 1 << 20


def cache_group_size(bytes_per_run: int) -> int:
    """Runs per group (`in_groups`) whose working set fits in a quarter of a core's L2 cache on a
    CPU (benchmarks/gd_vs_torch.py: 4x that budget was slower again); off the CPU (a GPU wants
    wide batches) every run goes in one group."""
    import jax

    if jax.default_backend() != "cpu":
        return 1 << 30
    return max(1, (l2_bytes() // 4) // max(1, int(bytes_per_run)))


def in_groups(one: Callable, size: int, n_shared: int = 0) -> Callable:
    """`run(keys (S, …), scales (E, …), *shared)` → `one(key, scale, *shared)` over seeds × scales,
    outputs with leading axes (S, E), computed in groups of `size` runs.

    The S·E runs (seed-major) form ceil(S·E / size) groups of equal width (the last padded by
    repeating the first run); each group is vmapped, the groups are a loop (lax.map), and the
    groups are split over the local devices (`split_batch`). Groups are formed before the split,
    so a run is computed in the same lane of a group of the same width whatever the device count:
    one device and many give bitwise the same numbers. On a CPU a group sized to the cache is
    also the fast layout (train.group_size).
    """
    import jax
    import jax.numpy as jnp

    per_device = split_batch(lambda groups, *shared: jax.lax.map(lambda g: jax.vmap(one, in_axes=(0, 0) + (None,) * n_shared)(*g, *shared), groups),
                             (True,) + (False,) * n_shared)

    def form(keys, scales):
        n_seeds, n_scales = keys.shape[0], scales.shape[0]
        n = n_seeds * n_scales
        n_groups = -(-n // max(1, min(size, n)))
        width = -(-n // n_groups)
        extra = n_groups * width - n
        scales = jnp.asarray(scales)  # (E,) or (E, k): e.g. ε and per-layer multipliers (train.split_scale)
        run_keys = jnp.repeat(keys, n_scales, axis=0)  # run r = (seed r // E, scale r % E)
        run_scales = jnp.tile(scales, (n_seeds,) + (1,) * (scales.ndim - 1))
        if extra:
            run_keys = jnp.concatenate([run_keys, jnp.repeat(run_keys[:1], extra, 0)])
            run_scales = jnp.concatenate([run_scales, jnp.repeat(run_scales[:1], extra, 0)])
        groups = (run_keys.reshape(n_groups, width, *keys.shape[1:]), run_scales.reshape(n_groups, width, *scales.shape[1:]))
        unpack = lambda v: v.reshape(n_groups * width, *v.shape[2:])[:n].reshape(n_seeds, n_scales, *v.shape[2:])
        return groups, unpack

    def run(keys, scales, *shared):
        groups, unpack = form(keys, scales)
        return jax.tree_util.tree_map(unpack, per_device(groups, *shared))

    run.lower = lambda keys, scales, *shared: per_device.lower(form(keys, scales)[0], *shared)  # for --dry-run
    return run


def enable_dtype(dtype: str) -> None:
    """float64 runs need JAX's 64-bit mode (the effective ODE switches it on too); without it JAX
    silently computes a float64 request in float32. Call before tracing."""
    import jax

    if str(dtype) == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
