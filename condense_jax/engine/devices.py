"""Devices: XLA host devices on a CPU, and the split of a batch of independent runs over them.

The runs of a chunk are independent, so the split needs no collective: one program (shard_map,
every axis manual) computes each device's share on that device, and the shares are gathered on
the host. No value crosses devices, inside the program or after it (an eager slice of a sharded
output would be an XLA program with an all-reduce, whose cross-device rendezvous aborted a sweep
after 40 s; issue #16). No compiled run calls LAPACK either: jaxlib 0.10's CPU LAPACK kernels fan a
batch out into the thread pool they run on and wait, which deadlocks once every pool thread (one
per busy device) is such a kernel. tests/test_devices.py scans every compiled program of every
kind of sweep for both.

`use_all_cpu_cores` must run before JAX initialises its backends (no JAX import at module level).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .plan import pad_rows


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
    have that leading axis too; the outputs come back as NumPy arrays, in order.

    One device: `jax.jit(fn)`. Several: the batch is padded on the host (repeating its first
    entry) to equal shares (`shares`), and one program, compiled once, runs `fn` on each device's
    share (`shard_map` with every axis manual: each device computes its share alone, no value ever
    crosses devices), and the outputs are gathered on the host, where the padding is dropped.
    Nothing that touches a sharded array runs on the devices afterwards: an eager slice of a
    sharded output is an XLA program with an all-reduce (the abort of issue #16).
    tests/test_devices.py checks every compiled program of every kind of sweep for collectives.

    The returned function has `.lower(*args)` (for --dry-run).
    """
    import jax
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    jitted = jax.jit(fn)
    batched = tuple(batched)
    tree_map = jax.tree_util.tree_map
    programs: dict = {}  # devices used → the sharded program

    def lead(args) -> int:
        return next(len(jax.tree_util.tree_leaves(a)[0]) for a, b in zip(args, batched) if b)

    def program(used: int):
        if used not in programs:
            mesh = Mesh(np.array(jax.local_devices()[:used]), ("runs",))
            specs = tuple(PartitionSpec("runs") if b else PartitionSpec() for b in batched)
            programs[used] = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("runs"),
                                                   check_vma=False))
        return programs[used]

    def padded(args):
        n = lead(args)
        used, per = shares(n, len(jax.local_devices()))
        extra = used * per - n
        pad = lambda v: pad_rows(v, n + extra)
        return n, used, [tree_map(pad, a) if b else a for a, b in zip(args, batched)]

    def run(*args):
        if len(jax.local_devices()) == 1:
            return tree_map(np.asarray, jitted(*args))
        n, used, args = padded(args)
        if used == 1:
            return tree_map(lambda v: np.asarray(v)[:n], jitted(*args))
        out = program(used)(*args)
        return tree_map(lambda v: np.asarray(v)[:n], out)  # each shard copied to the host, then sliced there

    def lower(*args):
        if len(jax.local_devices()) == 1:
            return jitted.lower(*args)
        _, used, args = padded(args)
        return (jitted if used == 1 else program(used)).lower(*args)

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
    outputs with leading axes (S, E), computed in groups of at most `size` runs.

    The S·E runs, scale-major (the seeds of one scale side by side), form ceil(S·E / size) groups
    of equal width (the last padded by repeating the first run). Runs of one scale stop at similar
    steps (a loss threshold, a fast-forward handover), and a vmapped group steps until its last
    run stops: a group of one scale wastes the fewest steps. The groups are dealt to the devices
    in turn (device d: groups d, d + D, …), so every device gets slow and fast scales alike
    (benchmarks/fast_forward.py: contiguous shares put the slowest scales on one core of two and
    made a 2-device sweep with a loss threshold 2x slower). Each group is vmapped, the groups of a
    device are a loop (lax.map). The groups are formed before
    the split, so a run is computed in the same lane of a group of the same width whatever the
    device count: one device and many give bitwise the same numbers. On a CPU a group sized to the
    cache is also the fast layout (train.group_size).
    """
    import jax
    import numpy as np

    group = jax.vmap(one, in_axes=(0, 0) + (None,) * n_shared)
    per_device = split_batch(lambda groups, *shared: jax.lax.map(lambda g: group(*g, *shared), groups),
                             (True,) + (False,) * n_shared)

    def form(keys, scales):
        n_seeds, n_scales = keys.shape[0], scales.shape[0]
        n = n_seeds * n_scales
        n_groups = -(-n // max(1, min(size, n)))
        width = -(-n // n_groups)
        extra = n_groups * width - n
        scales = np.asarray(scales)  # (E,) or (E, k): e.g. ε and per-layer multipliers (train.split_scale)
        keys = np.asarray(keys)
        run_keys = np.tile(keys, (n_scales,) + (1,) * (keys.ndim - 1))  # run r = (seed r % S, scale r // S)
        run_scales = np.repeat(scales, n_seeds, axis=0)
        if extra:
            run_keys, run_scales = pad_rows(run_keys, len(run_keys) + extra), pad_rows(run_scales, len(run_scales) + extra)
        groups = (run_keys.reshape(n_groups, width, *run_keys.shape[1:]),
                  run_scales.reshape(n_groups, width, *scales.shape[1:]))
        # device d's share (split_batch: contiguous) holds groups d, d + used, d + 2·used, …: each device
        # gets groups of every scale (padding: group 0 again, dropped below)
        used, per = shares(n_groups, len(jax.local_devices()))
        order = np.array([i * used + d for d in range(used) for i in range(per)])
        order = np.where(order < n_groups, order, 0)
        where = np.unique(order, return_index=True)[1]  # each group's first position
        groups = tuple(g[order] for g in groups)

        def unpack(v):
            runs = np.asarray(v)[where].reshape(n_groups * width, *v.shape[2:])[:n]
            return np.swapaxes(runs.reshape(n_scales, n_seeds, *v.shape[2:]), 0, 1)

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
