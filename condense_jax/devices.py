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
