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


def split_batch(fn: Callable, batched: Sequence[bool], unit: int | None = None) -> Callable:
    """`fn(*args)` over the leading axis of every argument flagged in `batched` (a pytree each),
    that axis cut into units and the units spread over the local devices, each unit its own call
    of the same jitted function; the other arguments go whole to every call. Every output must
    have that leading axis too; the outputs come back as NumPy arrays, in order.

    Units: `unit` runs each (in_groups: a cache-sized group), or one equal share per device
    (`shares`). The batch is padded (repeating its first entry) to whole units; unit i runs on
    device i mod D, placed there with its arguments, so units on different devices run at the
    same time (JAX dispatches asynchronously) and the outputs are gathered on the host with the
    padding dropped. XLA compiles the function once per device used: the first call traces and
    compiles it for device 0, the other devices compile in threads meanwhile. No program spans two
    devices: no collective, no rendezvous, so no run of a sweep ever waits for another.

    The returned function has `.lower(*args)` (the first unit, for --dry-run).
    """
    import jax
    import numpy as np

    jitted = jax.jit(fn)
    batched = tuple(batched)
    tree_map = jax.tree_util.tree_map

    def lead(args) -> int:
        return next(len(jax.tree_util.tree_leaves(a)[0]) for a, b in zip(args, batched) if b)

    def units(args):
        """Per unit: its device and its arguments placed there."""
        devices = jax.local_devices()
        n = lead(args)
        per = unit or shares(n, len(devices))[1]
        count = -(-n // per)
        extra = count * per - n
        pad = lambda v: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[:1], extra, 0)]) if extra else v
        args = [tree_map(pad, a) if b else a for a, b in zip(args, batched)]
        out = []
        for i in range(count):
            dev = devices[i % len(devices)]
            cut = lambda v, i=i: v[i * per : (i + 1) * per]
            out.append((dev, [jax.device_put(tree_map(cut, a) if b else a, dev) for a, b in zip(args, batched)]))
        return n, out

    def run(*args):
        if unit is None and len(jax.local_devices()) == 1:
            return tree_map(np.asarray, jitted(*args))
        n, calls = units(args)
        outs = [None] * len(calls)
        outs[0] = jitted(*calls[0][1])  # traces and compiles for device 0; the call itself is asynchronous
        firsts = [i for i, (dev, _) in enumerate(calls) if i > 0 and dev not in {d for d, _ in calls[:i]}]
        if firsts:  # the other devices' first calls compile in parallel
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(firsts)) as pool:
                for i, out in zip(firsts, pool.map(lambda i: jitted(*calls[i][1]), firsts)):
                    outs[i] = out
        for i, (_, c) in enumerate(calls):
            if outs[i] is None:
                outs[i] = jitted(*c)
        return tree_map(lambda *v: np.concatenate([np.asarray(x) for x in v])[:n], *outs)

    def lower(*args):
        if unit is None and len(jax.local_devices()) == 1:
            return jitted.lower(*args)
        return jitted.lower(*units(args)[1][0][1])

    run.lower = lower
    run.jitted = jitted
    return run


def split_seeds(grid: Callable, n_shared: int) -> Callable:
    """`grid(keys, *shared)` with the seeds (the leading axis of `keys`, a pytree, and of every
    output) split over the local devices (`split_batch`, one share per device); the `n_shared`
    other arguments go whole to every device."""
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
    outputs with leading axes (S, E), computed in groups of min(`size`, S·E) runs.

    The S·E runs (seed-major) are cut into groups of that width (the last padded by repeating the
    first run); each group is one vmapped call, and the groups are spread over the local devices
    (`split_batch` with `unit` = the width). The groups are formed before they are spread, so a
    run is computed in the same lane of the same program whatever the device count: one device
    and many give bitwise the same numbers, and a chunk of any size reuses the compiled group.
    On a CPU a group sized to the cache is also the fast layout (train.group_size).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    group = jax.vmap(one, in_axes=(0, 0) + (None,) * n_shared)

    def flat(keys, scales):
        n_seeds, n_scales = keys.shape[0], scales.shape[0]
        scales = np.asarray(scales)  # (E,) or (E, k): e.g. ε and per-layer multipliers (train.split_scale)
        run_keys = np.repeat(np.asarray(keys), n_scales, axis=0)  # run r = (seed r // E, scale r % E)
        run_scales = np.tile(scales, (n_seeds,) + (1,) * (scales.ndim - 1))
        unpack = lambda v: v.reshape(n_seeds, n_scales, *v.shape[1:])
        return run_keys, run_scales, unpack, min(size, n_seeds * n_scales)

    calls = {}

    def runner(width):
        if width not in calls:
            calls[width] = split_batch(group, (True, True) + (False,) * n_shared, unit=width)
        return calls[width]

    def run(keys, scales, *shared):
        run_keys, run_scales, unpack, width = flat(keys, scales)
        return jax.tree_util.tree_map(unpack, runner(width)(run_keys, run_scales, *shared))

    def lower(keys, scales, *shared):  # for --dry-run
        run_keys, run_scales, _, width = flat(keys, scales)
        return runner(width).lower(run_keys, run_scales, *shared)

    run.lower = lower
    return run


def enable_dtype(dtype: str) -> None:
    """float64 runs need JAX's 64-bit mode (the effective ODE switches it on too); without it JAX
    silently computes a float64 request in float32. Call before tracing."""
    import jax

    if str(dtype) == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
