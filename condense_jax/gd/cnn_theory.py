"""The linearised initial dynamics of a two-layer CNN (CNN paper, section 4): the matrix Z of
(9)–(10), its SVD (11), the spectral gap of Assumption 4 and the time bound (13). NumPy only.

With small init, σ(0) = 0 and σ'(0) = 1, the residual is e_i ≈ −y_i and the output channel β's
parameters θ_β = (vec W_{·,·,·,β}, b_β) and a_β = vec(a_{·,·,β}) follow dθ_β/dt = Zᵀ a_β,
da_β/dt = Z θ_β (9)–(10), where, with z_{s,t,α} = (1/n) Σ_i y_i x_{s,t,α}(i) and ȳ = (1/n) Σ_i y_i,

    Z[(u, v), (p, q, α)] = z_{u+p, v+q, α},   Z[(u, v), bias] = ȳ          ((35), (70))

rows over the W₁H₁ valid output positions, columns over the kernel entries then the bias. The
kernels grow fastest along v₁, the top right singular vector, at rate λ₁ (the heuristic of (13)).
"""

from __future__ import annotations

import numpy as np


def z_matrix(x, y, m: int) -> np.ndarray:
    """Z (W₁H₁, C·m² + 1) from images x (n, H, W, C) or (n, H, W) and targets y (n,)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    y = np.asarray(y, dtype=np.float64).reshape(len(x))
    n, h, w, c = x.shape
    z = np.tensordot(y, x, axes=(0, 0)) / n  # z_{s,t,α} (H, W, C)
    h1, w1 = h - m + 1, w - m + 1
    # row (u, v), column (p, q, α): z[u+p, v+q, α], from m² shifted windows
    cols = np.stack([z[p:p + h1, q:q + w1, :] for p in range(m) for q in range(m)], axis=2)  # (h1, w1, m², C)
    kernel = cols.reshape(h1 * w1, m * m * c)
    return np.concatenate([kernel, np.full((h1 * w1, 1), y.mean())], 1)


def spectrum(z: np.ndarray) -> dict:
    """Singular values λ₁ ≥ λ₂ ≥ …, the gap Δλ = λ₁ − λ₂ (Assumption 4) and v₁ (unit, sign chosen
    so that its kernel part sums to ≥ 0)."""
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    v1 = vt[0] * (1.0 if vt[0, :-1].sum() >= 0 else -1.0)
    return dict(singular_values=s, eigenvalues_ztz=s**2, gap=float(s[0] - (s[1] if len(s) > 1 else 0.0)), v1=v1)


def cos_with_ones(v1: np.ndarray, channels: int = 1) -> np.ndarray:
    """|cos| of each channel's part of v₁'s kernel entries with 𝟙 (the paper's v₁ ≈ 𝟙), per channel."""
    kernel = np.asarray(v1)[:-1].reshape(-1, channels)  # columns ordered (p, q, α)
    return np.abs(kernel.sum(0)) / (np.linalg.norm(kernel, axis=0) * np.sqrt(kernel.shape[0]))


def t_eff_bound(lambda1: float, gamma: float, channels: int, eta0: float | None = None) -> float:
    """(13): T_eff > (1/λ₁)[log(1/4) + ((γ − 1)/4 − η₀) log M] for η₀ > (γ − 1)/100, M = C₁.
    Default η₀: just above (γ − 1)/100. NaN for γ ≤ 1 (Assumption 3 needs γ > 1)."""
    if gamma <= 1:
        return float("nan")
    eta0 = (gamma - 1) / 100 * (1 + 1e-9) if eta0 is None else eta0
    if eta0 <= (gamma - 1) / 100:
        raise ValueError(f"(13) needs η₀ > (γ − 1)/100 = {(gamma - 1) / 100:g}, got {eta0!r}")
    return (np.log(0.25) + ((gamma - 1) / 4 - eta0) * np.log(channels)) / lambda1


def v1_share(thetas: np.ndarray, v1: np.ndarray) -> float:
    """‖θ_{W,v₁}‖ / ‖θ_W‖ (15): the share of the kernels' norm along v₁; θ rows (M, C·m² + 1)."""
    thetas = np.asarray(thetas, dtype=np.float64)
    return float(np.linalg.norm(thetas @ v1) / np.linalg.norm(thetas))
