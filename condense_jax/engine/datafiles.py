"""Data from outside the package, checked: the user's (x, y) .npz files (one ConfigError line naming
the file), scikit-learn's bundled digits, and the seeded subsample every family draws with."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError


def read_npz(path: str | Path, keys: tuple[str, ...], what: str) -> list[np.ndarray]:
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


def check_real_finite(what: str, **arrays) -> None:
    for name, v in arrays.items():
        real = np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
        if not real or not np.all(np.isfinite(v)):
            raise ConfigError(f"{what} array {name} has non-numeric or non-finite values")


def check_samples(x, y, what: str, ndim: int, shape: str, unit: str) -> None:
    """x has `ndim` dims (described by `shape`), y is (n,), n ≥ 1 and equal, all real and finite."""
    if x.ndim != ndim or y.ndim != 1:
        raise ConfigError(f"{what} arrays must be x {shape} and y (n,); got shapes {x.shape}, {y.shape}")
    if len(x) == 0:
        raise ConfigError(f"{what} has n = 0 {unit}")
    if len(x) != len(y):
        raise ConfigError(f"{what} x has {len(x)} {unit} but y has {len(y)}")
    check_real_finite(what, x=x, y=y)


def check_xy(x, y, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 copies of regression/classification data: x (n, d) (or (n,)), y (n,), n ≥ 1,
    real and finite; anything else is a ConfigError whose one line starts with `what`."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 1:
        x = x[:, None]
    check_samples(x, y, what, 2, "(n, d)", "samples")
    return x.astype(np.float64), y.astype(np.float64)


def load_xy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """User regression data from an .npz with `x` (n, d) (or (n,)) and `y` (n,); checked (check_xy)."""
    path = Path(path)
    x, y = read_npz(path, ("x", "y"), "data file")
    return check_xy(x, y, f"data file {str(path)!r}")


# ---------------------------------------------------------------------------
# Packaged images, and the seeded pick every family uses


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (no network): x (1797, 8, 8, 1) = pixel / 16 in [0, 1],
    y (1797,) the digit 0…9."""
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    return np.asarray(d.images, np.float64)[..., None] / 16.0, np.asarray(d.target, np.int64)


def subsample(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images drawn without replacement by np.random.default_rng(seed), kept in their original
    order (the paper trains on 500). The same pick as the train sweep's `n`/`data_seed`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(x):
        raise ConfigError(f"n must be an integer from 1 to the {len(x)} images of the data set, got {n!r}")
    if len(y) != len(x):
        raise ConfigError(f"subsample: x has {len(x)} images but y has {len(y)} labels")
    pick = np.sort(np.random.default_rng(seed).choice(len(x), int(n), replace=False))
    return x[pick], y[pick]
