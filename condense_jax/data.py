"""Inputs from the user's files. For now: explicit starts of the effective ODE from an .npz file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .config import ConfigError


def _read_npz(path: str | Path, keys: tuple[str, ...], what: str) -> list[np.ndarray]:
    """The named arrays of an .npz file; a ConfigError naming the file for anything unreadable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise ConfigError(f"{what} {str(path)!r} lacks array(s) {missing}; it has {sorted(f.files)}")
            return [np.asarray(f[k]) for k in keys]
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(f"{what} {str(path)!r} is not a readable .npz file ({type(e).__name__})") from None


def load_effective_init(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read starts of (3.10) from an .npz with arrays `a` (B, m), `b` (B, m, m), `c` (B, m).

    A single unbatched start (a (m,), b (m, m), c (m,)) is accepted as B = 1. Shapes, dtypes and
    finiteness are checked; any problem is a ConfigError naming the array and the bad value.
    """
    a, b, c = _read_npz(path, ("a", "b", "c"), "--init")
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


# ---------------------------------------------------------------------------
# Regression data for gradient-descent training (issue #3)


def tanh_regression(n: int = 100, grid: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's data (section 4.1): n samples of y = tanh(x) on [−π, π], uniform random (seeded)
    or an even grid. Returns x (n, 1), y (n,)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    x = np.linspace(-np.pi, np.pi, n) if grid else np.random.default_rng(seed).uniform(-np.pi, np.pi, n)
    return x[:, None], np.tanh(x)


def with_bias(x: np.ndarray) -> np.ndarray:
    """Append a constant 1 to every input (an input bias as an extra weight column)."""
    return np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)


def target_direction(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """v = Σ y_i x_i / ‖Σ y_i x_i‖ (3.7)."""
    s = y @ x
    norm = np.linalg.norm(s)
    if norm == 0:
        raise ConfigError("Σ y_i x_i = 0: the data has no target direction v (3.7)")
    return s / norm


def effective_rate(x: np.ndarray, y: np.ndarray, slope0: float) -> float:
    """κ = σ'(0)² ‖Σ y_i x_i‖ / n, the rate of the time rescaling t̄ = ε κ t below (3.5)."""
    return float(slope0**2 * np.linalg.norm(y @ x) / len(y))


def load_xy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """User regression data from an .npz with `x` (n, d) (or (n,)) and `y` (n,); checked."""
    path = Path(path)
    x, y = _read_npz(path, ("x", "y"), "data file")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or y.ndim != 1:
        raise ConfigError(f"data arrays must be x (n, d) and y (n,); got shapes {x.shape}, {y.shape}")
    if len(x) == 0:
        raise ConfigError(f"data file {str(path)!r} has n = 0 samples")
    if len(x) != len(y):
        raise ConfigError(f"data x has {len(x)} samples but y has {len(y)}")
    for name, v in (("x", x), ("y", y)):
        if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
            raise ConfigError(f"data array {name} has non-numeric or non-finite values")
    return x.astype(np.float64), y.astype(np.float64)
