"""Two-class data for the four phases of a two-layer ReLU classifier (issue #8; Wang & Ma 2023,
Min, Mallada & Vidal 2024): seeded generators and a linear-separability check.

Labels are ±1. Every generator returns x (n, d) float64 and y (n,) float64, with both classes
present. `check_separable` decides separability through the origin (the bias-free classifier's
setting) exactly, by a linear program: find w with yᵢ w·xᵢ ≥ 1 for all i.
"""

from __future__ import annotations

import numpy as np

from ..engine.datafiles import load_digits, subsample
from ..errors import ConfigError


def _int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _labels(n: int, rng, positive_fraction: float = 0.5) -> np.ndarray:
    y = np.where(rng.random(n) < positive_fraction, 1.0, -1.0)
    y[0], y[-1] = 1.0, -1.0  # both classes present
    return y


def angled_classes(n: int = 100, d: int = 2, delta: float = 120.0, spread: float = 15.0, seed: int = 0,
                   positive_fraction: float = 0.5, negative_norm: float = 1.0):
    """Two classes around unit centres x₊ = e₁ and x₋ at angle Δ (degrees) from it in the (e₁, e₂)
    plane; each point is its centre rotated in that plane by a uniform angle in [−spread, spread]
    degrees (plus, for d > 2, a small seeded component out of the plane), with a norm in [0.5, 1.5]
    (times `negative_norm` for the negative class). Each label is +1 with probability
    `positive_fraction` (both classes always present); unequal classes (in size or norm) pull the
    two groups of neurons at different rates, which is what makes a plateau (issue #8).
    Δ ∈ (0, 180] and spread < Δ/2, so the two arcs of directions do not overlap and each is under
    180°: such data is always separable through the origin (check_separable certifies it)."""
    n, d, seed = _int("n", n, 2), _int("d", d, 2), _int("seed", seed, 0)
    delta, spread = float(delta), float(spread)
    p, scale = float(positive_fraction), float(negative_norm)
    if not (np.isfinite(p) and 0 < p < 1):
        raise ConfigError(f"positive_fraction must lie in (0, 1), got {positive_fraction!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ConfigError(f"negative_norm must be positive and finite, got {negative_norm!r}")
    if not (np.isfinite(delta) and 0 < delta <= 180):
        raise ConfigError(f"the angle Δ between the class centres must lie in (0, 180] degrees, got {delta!r}")
    if not (np.isfinite(spread) and 0 <= spread < delta / 2):
        raise ConfigError(f"the angular spread must lie in [0, Δ/2) = [0, {delta / 2:g}) degrees, got {spread!r}")
    rng = np.random.default_rng(seed)
    y = _labels(n, rng, p)
    angle = np.where(y > 0, 0.0, np.deg2rad(delta)) + np.deg2rad(rng.uniform(-spread, spread, n))
    radius = rng.uniform(0.5, 1.5, n) * np.where(y > 0, 1.0, scale)
    x = np.zeros((n, d))
    x[:, 0], x[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
    if d > 2:
        x[:, 2:] = 0.05 * rng.standard_normal((n, d - 2))
    return x, y


def orthogonal_classes(n: int = 20, d: int | None = None, seed: int = 0):
    """Orthogonal data: n points along distinct coordinate axes e_i (d ≥ n, default d = n) with
    norms in [0.5, 1.5] and random labels, so xᵢ·xⱼ = 0 for i ≠ j (always separable)."""
    n, seed = _int("n", n, 2), _int("seed", seed, 0)
    d = n if d is None else _int("d", d, n)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d))
    x[np.arange(n), rng.permutation(d)[:n]] = rng.uniform(0.5, 1.5, n)
    return x, _labels(n, rng)


def digit_pair(a: int = 0, b: int = 1, n: int | None = None, seed: int = 0):
    """Two digits of scikit-learn's bundled 8×8 set as a binary task (a → +1, b → −1), flattened to
    d = 64 and scaled to [0, 1]; n of them sampled with the seed (default: all)."""
    a, b = _int("digit a", a, 0), _int("digit b", b, 0)
    if a > 9 or b > 9 or a == b:
        raise ConfigError(f"a digit pair needs two different digits in 0…9, got {a} and {b}")
    images, digits = load_digits()
    keep = (digits == a) | (digits == b)
    x, y = images[keep].reshape(int(keep.sum()), -1), np.where(digits[keep] == a, 1.0, -1.0)
    if n is not None:
        n = _int("n", n, 2)
        if n > len(x):
            raise ConfigError(f"n = {n} asked for, the pair ({a}, {b}) has {len(x)} images")
        x, y = subsample(x, y, n, _int("seed", seed, 0))
    return x, y


def separating_direction(x, y):
    """A w with yᵢ w·xᵢ ≥ 1 for all i (linear program, SciPy HiGHS), or None when none exists."""
    from scipy.optimize import linprog

    x, y = np.asarray(x, float), np.asarray(y, float)
    d = x.shape[1]
    res = linprog(np.zeros(d), A_ub=-(y[:, None] * x), b_ub=-np.ones(len(y)), bounds=[(None, None)] * d, method="highs")
    return res.x if res.status == 0 else None


def check_separable(x, y, what: str = "data", allow: bool = False) -> np.ndarray | None:
    """Refuse (ConfigError, one line) data that no hyperplane through the origin separates, unless
    `allow`; returns a separating direction (or None when allowed and there is none)."""
    y = np.asarray(y, float)
    if not set(np.unique(y)) <= {-1.0, 1.0} or len(np.unique(y)) < 2:
        raise ConfigError(f"{what} labels must be ±1 with both classes present, got values {sorted(set(np.unique(y)))[:5]}")
    w = separating_direction(x, y)
    if w is None and not allow:
        raise ConfigError(f"{what} is not linearly separable through the origin (no w with yᵢ w·xᵢ > 0 for all i); "
                          "set allow_nonseparable (--allow-nonseparable) to train on it anyway")
    return w
