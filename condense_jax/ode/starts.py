"""Explicit starts of the effective ODE (3.10) from the user's .npz file (`condense ode --init`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.datafiles import read_npz
from ..errors import ConfigError


def load_effective_init(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read starts of (3.10) from an .npz with arrays `a` (B, m), `b` (B, m, m), `c` (B, m).

    A single unbatched start (a (m,), b (m, m), c (m,)) is accepted as B = 1. Shapes, dtypes and
    finiteness are checked; any problem is a ConfigError naming the array and the bad value.
    """
    a, b, c = read_npz(path, ("a", "b", "c"), "--init")
    for name, v in (("a", a), ("b", b), ("c", c)):
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise ConfigError(f"--init array {name} has dtype {v.dtype}, expected real numbers")
    if a.ndim == 1 and b.ndim == 2 and c.ndim == 1:
        a, b, c = a[None], b[None], c[None]
    if a.ndim != 2 or b.ndim != 3 or c.ndim != 2:
        raise ConfigError(
            f"--init arrays must be a (B, m), b (B, m, m), c (B, m); got shapes {a.shape}, {b.shape}, {c.shape}"
        )
    n, m = a.shape
    if n == 0 or m == 0:
        raise ConfigError(f"--init arrays are empty (a has shape {a.shape})")
    if b.shape != (n, m, m) or c.shape != (n, m):
        raise ConfigError(f"--init shapes disagree: a {a.shape} needs b {(n, m, m)} and c {(n, m)}, got b {b.shape}, c {c.shape}")
    for name, v in (("a", a), ("b", b), ("c", c)):
        bad = ~np.isfinite(v)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise ConfigError(f"--init array {name} has a non-finite value {v[tuple(where)]!r} at index {tuple(int(i) for i in where)}")
    zero = (np.abs(a).sum(1) + np.abs(b).sum((1, 2)) + np.abs(c).sum(1)) == 0
    if zero.any():
        raise ConfigError(f"--init start {int(np.argmax(zero))} is all zeros, a fixed point of (3.10) with no dynamics")
    return a.astype(np.float64), b.astype(np.float64), c.astype(np.float64)
