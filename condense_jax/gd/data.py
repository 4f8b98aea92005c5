"""The training data: the paper's tanh regression, separable classes, Fig. 3's matrix targets
(completion and sensing), synthetic images, and the user's image and sensing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.datafiles import check_real_finite, check_samples, read_npz
from ..errors import ConfigError

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










def load_images(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images from an .npz with `x` (n, H, W) or (n, H, W, C) and labels `y` (n,), checked; a 3-D x
    gets one channel. Values are used as stored (scale them to [0, 1] beforehand)."""
    path = Path(path)
    x, y = read_npz(path, ("x", "y"), "image file")
    if x.ndim == 3:
        x = x[..., None]
    check_samples(x, y, f"image file {str(path)!r}", 4, "(n, H, W[, C])", "images")
    return x.astype(np.float64), y


def synthetic_images(n: int = 100, size: int = 8, channels: int = 1, classes: int = 2, seed: int = 0):
    """A seeded synthetic image set (for tests and smoke runs): class k is a bar at angle πk/classes
    through the centre, with a random brightness, a random shift of up to one pixel and noise,
    clipped to [0, 1]. Returns x (n, size, size, channels) float64 and integer labels y (n,)."""
    n, size = _positive_int("n", n, 1), _positive_int("size", size, 3)
    channels, classes = _positive_int("channels", channels, 1), _positive_int("classes", classes, 1)
    rng = np.random.default_rng(_positive_int("seed", seed, 0))
    y = rng.integers(0, classes, n)
    u, v = np.meshgrid(np.arange(size) - (size - 1) / 2, np.arange(size) - (size - 1) / 2, indexing="ij")
    angle = np.pi * y / classes
    shift = rng.integers(-1, 2, (n, 2))
    dist = np.abs((u[None] - shift[:, 0, None, None]) * np.sin(angle)[:, None, None]
                  - (v[None] - shift[:, 1, None, None]) * np.cos(angle)[:, None, None])
    bar = (dist < 0.8) * rng.uniform(0.6, 1.0, (n, 1, 1))
    x = np.clip(bar[..., None] + 0.1 * rng.standard_normal((n, size, size, channels)), 0.0, 1.0)
    return x, y.astype(np.int64)


def _positive_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def separable_classes(n: int = 200, d: int = 2, margin: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two linearly separable classes for the two-layer ReLU phase diagram (Luo et al. 2021).

    x_i ~ N(0, I_d) and a unit normal w* (both seeded); labels y_i = sign(w*·x_i) ∈ {−1, +1}.
    Points inside the band |w*·x| < margin are pushed along w* onto its edge (w*·x = ±margin,
    keeping their side; w*·x = 0 goes to +), so the data is separable through the origin with
    geometric margin ≥ `margin` and n stays n. If every point fell on one side, the point closest
    to the hyperplane is reflected across it, so both classes are non-empty.
    Returns x (n, d), y (n,), float64.
    """
    n, d, seed = _positive_int("n", n, 2), _positive_int("d", d, 1), _positive_int("seed", seed, 0)
    try:
        margin = float(margin)
    except (TypeError, ValueError):
        raise ConfigError(f"margin must be a number, got {margin!r}") from None
    if not np.isfinite(margin) or margin < 0:
        raise ConfigError(f"margin must be finite and ≥ 0, got {margin!r}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    x = rng.standard_normal((n, d))
    s = x @ w
    if np.all(s >= 0) or np.all(s < 0):  # both classes: reflect the point nearest the hyperplane
        i = int(np.argmin(np.abs(s)))
        x[i] -= 2.0 * s[i] * w
        if s[i] == 0:
            x[i] -= w
        s = x @ w
    side = np.where(s >= 0, 1.0, -1.0)
    inside = np.abs(s) < margin
    x[inside] += ((side * margin - s)[inside])[:, None] * w
    return x, side


# ---------------------------------------------------------------------------
# Deep matrix factorisation (Appendix A, Fig. 3)

FIG3_KINDS = ("full", "random")


def fig3_target(m: int = 100) -> np.ndarray:
    """The matrix of Fig. 3: W* = diag(1, −1, 0, …, 0) ∈ R^{m×m} (section 4.1)."""
    m = _positive_int("m", m, 2)
    w = np.zeros((m, m))
    w[0, 0], w[1, 1] = 1.0, -1.0
    return w


def fig3_completion(m: int = 100, seed: int = 0, kind: str = "full", fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 3's matrix completion as (mask, target): mask (m, m) 0/1 float64 of the observed
    entries, target W* = diag(1, −1, 0, …) (fig3_target).

    The paper says only "matrix completion" of W* (section 4.1, Fig. 3); it does not say which
    entries are observed. kind "full" observes all m² (R_S = ‖W − W*‖²_F / 2m², the default);
    "random" observes round(fraction·m²) entries drawn with `seed`, always including the two
    non-zero diagonal entries (else V (A.6) misses them). In both, V = (1/n) Σ y_i X_i is
    diag(1, −1, 0, …)/n: symmetric, as (A.7) assumes. Use with deep_linear.completion_loss.
    """
    if kind not in FIG3_KINDS:
        raise ConfigError(f"fig3 kind must be one of {FIG3_KINDS}, got {kind!r}")
    target, seed = fig3_target(m), _positive_int("seed", seed, 0)
    if kind == "full":
        return np.ones((m, m)), target
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ConfigError(f"fraction must be a number, got {fraction!r}") from None
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction!r}")
    n_obs = max(2, int(round(fraction * m * m)))
    rest = np.setdiff1d(np.arange(m * m), [0, m + 1])  # flat indices other than (0, 0), (1, 1)
    chosen = np.random.default_rng(seed).choice(rest, size=n_obs - 2, replace=False)
    mask = np.zeros(m * m)
    mask[[0, m + 1]] = 1.0
    mask[chosen] = 1.0
    return mask.reshape(m, m), target


MAX_SENSING_ELEMENTS = 2**24  # n·m² floats of explicit measurement matrices (128 MiB in float64)


def fig3_sensing(m: int = 100, seed: int = 0, kind: str = "full", fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 3's completion as explicit sensing data (A.2): xs (n, m, m) with X_i = e_j e_kᵀ per
    observed entry (row-major order) and ys (n,) = W*_jk; see fig3_completion for kind/fraction.

    Full observation holds m⁴ floats (10⁸ at the paper's m = 100), so beyond
    MAX_SENSING_ELEMENTS this is a ConfigError: use fig3_completion with completion_loss.
    """
    mask, target = fig3_completion(m, seed, kind, fraction)
    idx = np.argwhere(mask > 0)
    if len(idx) * m * m > MAX_SENSING_ELEMENTS:
        raise ConfigError(
            f"fig3 sensing data for m = {m} would hold {len(idx) * m * m} floats (> {MAX_SENSING_ELEMENTS}); "
            "use fig3_completion (mask, target) with deep_linear.completion_loss")
    xs = np.zeros((len(idx), m, m))
    xs[np.arange(len(idx)), idx[:, 0], idx[:, 1]] = 1.0
    return xs, target[idx[:, 0], idx[:, 1]]


def load_sensing(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Matrix-sensing data (A.2) from an .npz with `x` (n, m, m) measurement matrices, `y` (n,)."""
    path = Path(path)
    xs, ys = read_npz(path, ("x", "y"), "data file")
    what = f"data file {str(path)!r}"
    if xs.ndim != 3 or ys.ndim != 1 or xs.shape[1] != xs.shape[2]:
        raise ConfigError(f"{what} arrays must be x (n, m, m) and y (n,); got shapes {xs.shape}, {ys.shape}")
    if len(xs) == 0 or xs.shape[1] == 0:
        raise ConfigError(f"{what} has no measurements (x has shape {xs.shape})")
    if len(xs) != len(ys):
        raise ConfigError(f"{what} x has {len(xs)} measurements but y has {len(ys)}")
    check_real_finite(what, x=xs, y=ys)
    return xs.astype(np.float64), ys.astype(np.float64)
